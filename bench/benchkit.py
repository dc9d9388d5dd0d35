"""Pieces the benchmarks share: the full-size model from the bundled skeleton configs (random
weights), the ``zitdesk`` command-line runner and a small dataset of coloured squares.

Nothing here measures anything; the scripts do. They put the repository root on ``sys.path``
and ``from bench import benchkit`` (``bench`` is a namespace package), which also works when a
test runs a script with ``runpy``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def skeleton_config(part: str) -> dict:
    """``config.json`` of one part of the bundled Z-Image Turbo skeleton (``transformer``,
    ``vae``, ``text_encoder``) as constructor keywords: without diffusers' ``_`` keys and
    transformers' ``architectures``/``torch_dtype``."""
    from zitdesk.paths import skeleton_dir

    raw = json.loads((skeleton_dir() / part / "config.json").read_text())
    return {
        k: v
        for k, v in raw.items()
        if not k.startswith("_") and k not in ("architectures", "torch_dtype")
    }


def full_size_parts(device: str, text_encoder: bool = True):
    """The full-size DiT, Qwen3-4B (``None`` when ``text_encoder`` is false) and Flux VAE in
    bf16 on ``device``, random weights from seed 0.

    Random init leaves large activations, so the DiT's weight matrices are scaled down to keep
    bf16 finite (values do not change speed, but NaNs would make the images meaningless), and
    its pad tokens (``torch.empty`` at init) are filled.
    """
    import torch
    from diffusers import AutoencoderKL, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(0)
    with torch.device(device):
        tr = ZImageTransformer2DModel(**skeleton_config("transformer")).to(torch.bfloat16)
        te = None
        if text_encoder:
            te = Qwen3Model(Qwen3Config(**skeleton_config("text_encoder")))
            te = te.to(torch.bfloat16).eval()
        vae = AutoencoderKL(**skeleton_config("vae")).to(torch.bfloat16)
    with torch.no_grad():
        for _name, p in tr.named_parameters():
            if p.ndim >= 2:
                p.mul_(0.2)
        tr.x_pad_token.normal_(0, 0.5)
        tr.cap_pad_token.normal_(0, 0.5)
    return tr, te, vae


def plain_pipeline(tr, vae, te=None, tok=None):
    """Plain diffusers: a ``ZImagePipeline`` of these parts with Turbo's scheduler (shift 3, no
    dynamic shifting), progress bar off. Without ``te``/``tok`` it takes ``prompt_embeds``."""
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline

    pipe = ZImagePipeline(
        transformer=tr,
        vae=vae,
        text_encoder=te,
        tokenizer=tok,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=False),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def zit(
    *args: str, timeout: int = 900, log: list[str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m zitdesk ARGS`` from the repository root, output captured.

    With ``log``, the command, its exit code and the end of its stderr are appended there;
    without, a failing command's stderr end is printed to stderr.
    """
    res = subprocess.run(
        [sys.executable, "-m", "zitdesk", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if log is not None:
        log.append(f"$ zitdesk {' '.join(args)}\nrc {res.returncode}\n{res.stderr[-4000:]}")
    elif res.returncode != 0:
        print(res.stderr[-3000:], file=sys.stderr)
    return res


def square_dataset(folder: Path, count: int, size: int) -> Path:
    """``count`` images of ``size``² (a coloured square on another colour, seed 0) named
    ``img{i}.png``, each with the caption ``[trigger], a square of colour {i}``."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        arr = np.full((size, size, 3), rng.integers(0, 255, 3), np.uint8)
        arr[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = rng.integers(0, 255, 3)
        Image.fromarray(arr).save(folder / f"img{i}.png")
        (folder / f"img{i}.txt").write_text(f"[trigger], a square of colour {i}")
    return folder
