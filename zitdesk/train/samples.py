"""Sample images during training, rendered by the Generate tab's own code, and a contact sheet.

Each sample is a :class:`~zitdesk.engine.requests.GenerateRequest` (prompt, seed, size, 8 steps,
shift 3, guidance 0 by default) rendered by :func:`zitdesk.engine.generate.render_image` with the
cached prompt embedding, so a sample is exactly what the user will get from the trained LoRA at
strength 1 with the training adapter removed (the caller switches adapters around this).

Files: ``<output>/samples/<step:09d>/<i>_<seed>.png`` (with zitdesk/A1111 parameters) and
``<output>/samples/contact_sheet.png``, a grid with one row per sampled step (newest at the
bottom, last :data:`MAX_ROWS` rows) and one column per prompt, rebuilt from the files on disk so
it is complete after a resume too.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from zitdesk import __version__
from zitdesk.engine.requests import GenerateRequest
from zitdesk.io import atomic_save
from zitdesk.train.config import TrainConfig
from zitdesk.train.dataset import apply_trigger

MAX_ROWS = 12
THUMB = 256
_STEP_DIR = re.compile(r"^\d{9}$")
_FILE = re.compile(r"^(\d+)_(\d+)\.png$")


def sample_prompts(cfg: TrainConfig) -> list[tuple[str, int]]:
    """``(prompt, seed)`` per sample, trigger applied, seeds cycled."""
    seeds = cfg.sample.seeds or (42,)
    return [
        (apply_trigger(p, cfg.data.trigger), int(seeds[i % len(seeds)]))
        for i, p in enumerate(cfg.sample.prompts)
    ]


def sample_request(cfg: TrainConfig, prompt: str, seed: int) -> GenerateRequest:
    w, h = cfg.sample_size()
    s = cfg.sample
    return GenerateRequest(
        prompt=prompt,
        width=w,
        height=h,
        steps=s.steps,
        guidance=s.guidance,
        shift=s.shift,
        seed=seed,
        count=1,
        vae_tiling=s.vae_tiling,
        preview_every=0,
        job_id="train-sample",
    ).validate()


def render_samples(
    pipe: Any,
    cfg: TrainConfig,
    step: int,
    embeds: dict[str, Any],
    empty: Any,
    out_dir: Path,
    lora_name: str,
) -> list[Path]:
    """Render every sample prompt; returns the PNG paths. ``embeds`` maps prompt → (L, D)."""
    from zitdesk.engine.generate import render_image
    from zitdesk.imagemeta import ImageMeta, LoraUse, write_png

    folder = out_dir / f"{step:09d}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    dev = pipe._execution_device
    dtype = pipe.transformer.dtype
    for i, (prompt, seed) in enumerate(sample_prompts(cfg)):
        req = sample_request(cfg, prompt, seed)
        pos = [embeds[prompt].to(dev, dtype)]
        neg = [empty.to(dev, dtype)] if req.guidance > 0 else None
        image = render_image(pipe, req, 0, pos, neg)
        meta = replace(
            ImageMeta.from_request(
                req,
                seed=seed,
                model_name=cfg.model.variant,
                version=f"zitdesk {__version__}",
                extra={"Training step": step},
            ),
            loras=(LoraUse(name=lora_name, weight=1.0),),
        )
        paths.append(write_png(image, folder / f"{i}_{seed}.png", meta))
    return paths


def contact_sheet(samples_dir: Path, max_rows: int = MAX_ROWS, thumb: int = THUMB) -> Path | None:
    """(Re)build ``samples/contact_sheet.png`` from the sample folders; None if there are none."""
    from PIL import Image, ImageDraw

    rows = (
        sorted(p for p in samples_dir.iterdir() if p.is_dir() and _STEP_DIR.match(p.name))
        if samples_dir.is_dir()
        else []
    )
    rows = rows[-max_rows:]
    grid: list[tuple[int, list[Path]]] = []
    for r in rows:
        files = sorted((int(m.group(1)), f) for f in r.iterdir() if (m := _FILE.match(f.name)))
        if files:
            grid.append((int(r.name), [f for _, f in files]))
    if not grid:
        return None
    cols = max(len(fs) for _, fs in grid)
    label_w = 96
    sheet = Image.new("RGB", (label_w + cols * thumb, len(grid) * thumb), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for y, (step, row_files) in enumerate(grid):
        draw.text((8, y * thumb + thumb // 2 - 6), f"step {step}", fill=(230, 230, 230))
        for x, f in enumerate(row_files):
            try:
                with Image.open(f) as opened:
                    im = opened.convert("RGB")
                    im.thumbnail((thumb, thumb))
                    ox = label_w + x * thumb + (thumb - im.width) // 2
                    oy = y * thumb + (thumb - im.height) // 2
                    sheet.paste(im, (ox, oy))
            except OSError:
                continue
    path = samples_dir / "contact_sheet.png"
    atomic_save(path, lambda tmp: sheet.save(tmp, format="PNG"))
    return path
