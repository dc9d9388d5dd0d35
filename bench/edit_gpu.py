"""GPU benchmark of the edit modes (issue #16): image-to-image, inpaint, ControlNet, ControlNet
inpaint and a 2048² tiled upscale, with the full-size Z-Image Turbo architecture (random
weights: speed and memory do not depend on weight values) — time and peak VRAM of each.

The DiT, Qwen3-4B and Flux VAE are built on the GPU with random weights (no files: writing 20 GB
would take longer than the runs); a full-size random ControlNet in the Union 2.1 layout
(15 control layers, 2 refiner layers, inpaint input) *is* written as one VideoX-Fun-style
``.safetensors`` file and loaded through zitdesk's loader, so its load time is real. Every job
then goes through zitdesk's own engine (``GenerationEngine.run``: validate, encode, the edit
pipeline over the loaded components, events, PNG with parameters); only the model loading step
is replaced by the pipeline built here. Each variant runs once to warm up, then ``--runs`` times
(fastest shown); peak VRAM is the engine's ``JobFinished.peak_vram_bytes`` (torch's allocator
peak during the job, the resident weights included), ``+act`` the part above the weights.

Run on a CUDA machine:  python bench/edit_gpu.py [--runs 1] [--deadline 170]
Check the script on a CPU with the tiny model:  python bench/edit_gpu.py --tiny
Writes $OUT/edit_gpu.json and $OUT/edit_gpu.log when $OUT is set; prints a markdown table last.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("ZITDESK_HOME", tempfile.mkdtemp(prefix="zithome-"))

from zitdesk.offline import enforce_offline  # noqa: E402

enforce_offline()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from bench import benchkit  # noqa: E402

T0 = time.perf_counter()
ROWS: list[dict] = []
LOG: list[str] = []
PROMPT = "a lighthouse on a cliff at dusk, waves below, 35mm photo, soft light"


def say(text: str) -> None:
    line = f"[{time.perf_counter() - T0:6.1f} s] {text}"
    LOG.append(line)
    print(line, flush=True)


def gib(b: float) -> str:
    return f"{b / 2**30:.2f}"


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def build_parts(device: str, tiny: bool):
    """DiT, Qwen3, VAE, tokenizer and scheduler, random weights (bench/benchkit.py)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from zitdesk.models import tiny as tinymod

    sched = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=False)
    if tiny:
        c = tinymod.make_tiny_components()
        return c["transformer"], c["text_encoder"], c["vae"], c["tokenizer"], sched
    tr, te, vae = benchkit.full_size_parts(device)
    from zitdesk.models.tokenizer import default_tokenizer

    return tr, te, vae, default_tokenizer(), sched


def write_controlnet(path: Path, tr, device: str, tiny: bool) -> float:
    """A random ControlNet in the Union 2.1 layout at the DiT's width, as one file → GB."""
    from diffusers import ZImageControlNetModel

    from zitdesk.io import atomic_save_tensors

    t = tr.config
    n_control = 2 if tiny else 15
    cfg = dict(
        control_layers_places=list(range(0, t.n_layers, max(1, t.n_layers // n_control)))[
            :n_control
        ],
        control_refiner_layers_places=list(range(t.n_refiner_layers)),
        control_in_dim=33,
        add_control_noise_refiner="control_noise_refiner",
        all_patch_size=list(t.all_patch_size),
        all_f_patch_size=list(t.all_f_patch_size),
        dim=t.dim,
        n_refiner_layers=t.n_refiner_layers,
        n_heads=t.n_heads,
        n_kv_heads=t.n_kv_heads,
        norm_eps=t.norm_eps,
        qk_norm=t.qk_norm,
    )
    torch.manual_seed(1)
    with torch.device(device):
        cn = ZImageControlNetModel(**cfg).to(torch.bfloat16)
    with torch.no_grad():
        for name, p in cn.named_parameters():
            if "proj" in name:
                p.normal_(0.0, 0.02)
            elif p.ndim >= 2:
                p.mul_(0.2)
    state = {k: v.detach().contiguous().cpu() for k, v in cn.state_dict().items()}
    del cn
    atomic_save_tensors(path, state)
    return path.stat().st_size / 1e9


def make_inputs(folder: Path, size: int) -> dict[str, str]:
    """A source picture (smooth shapes + texture), a centre mask and a canny-able control image."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    rgb = np.stack([xx * 200 + 30, yy * 180 + 40, (1 - xx) * 150 + 50], -1)
    rgb[((xx - 0.5) ** 2 + (yy - 0.45) ** 2) < 0.06] = (230, 210, 90)
    rgb += rng.normal(0, 8, rgb.shape)
    init = folder / "source.png"
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(init)
    m = np.zeros((size, size), np.uint8)
    m[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    mask = folder / "mask.png"
    Image.fromarray(m).save(mask)
    small = folder / "small.png"
    Image.open(init).resize((size // 2, size // 2), Image.Resampling.LANCZOS).save(small)
    return {"init": str(init), "mask": str(mask), "control": str(init), "small": str(small)}


class Bench:
    def __init__(self, pipe, device: str, out: Path):
        from zitdesk.engine.generate import GenerationEngine, _Loaded
        from zitdesk.engine.requests import MemoryMode

        self.eng = GenerationEngine(model_path="unused", device=device)
        src = SimpleNamespace(label="random full-size Z-Image", files={}, root="/nonexistent")
        self.loaded = _Loaded(
            key=("bench",), pipe=pipe, source=src, device=device, mode=MemoryMode.GPU
        )
        self.eng._ensure_pipeline = lambda *a, **k: self.loaded  # the pipeline built above
        self.device = device
        self.out = out

    def job(self, **kw):
        from zitdesk.engine.cancel import CancelToken
        from zitdesk.engine.events import ImageReady, JobFailed, JobFinished, PhaseChanged
        from zitdesk.engine.requests import GenerateRequest

        req = GenerateRequest(prompt=PROMPT, seed=7, output_dir=str(self.out), **kw)
        events: list = []
        stamps: list[float] = []

        def emit(e):
            events.append(e)
            stamps.append(time.perf_counter())

        gc.collect()
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
        resident = torch.cuda.memory_allocated() if self.device.startswith("cuda") else 0
        sync()
        t = time.perf_counter()
        self.eng.run(req, emit, CancelToken())
        sync()
        dt = time.perf_counter() - t
        last = events[-1]
        if isinstance(last, JobFailed):
            raise RuntimeError(f"{last.message}\n{last.traceback[-2000:]}")
        assert isinstance(last, JobFinished)
        ph = {
            e.phase: s for e, s in zip(events, stamps, strict=True) if isinstance(e, PhaseChanged)
        }
        img = next(e for e in events if isinstance(e, ImageReady))
        return dict(
            s=dt,
            denoise=ph.get("saving", t) - ph.get("denoising", t),
            peak=last.peak_vram_bytes,
            resident=resident,
            size=f"{img.width}×{img.height}",
            steps=events[0].total_steps,
            path=img.path,
        )

    def variant(self, name: str, runs: int, note: str = "", warm: bool = False, **kw) -> None:
        if warm:  # a first call of its own (new kernels, the ControlNet load), not counted
            first = self.job(**kw)
            note = f"first call {first['s']:.1f} s" + (f"; {note}" if note else "")
        best = min((self.job(**kw) for _ in range(max(1, runs))), key=lambda r: r["s"])
        best.update(variant=name, note=note)
        ROWS.append(best)
        say(f"{name}: {best['s']:.2f} s, peak {gib(best['peak'])} GiB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="CPU check with the tiny model")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--deadline", type=float, default=170, help="skip variants after N seconds")
    ap.add_argument("--skip", default="", help="comma list of variant keys to skip")
    args = ap.parse_args()
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    size = 64 if args.tiny else 1024
    big = 2 * size
    tile = 64 if args.tiny else 1024
    overlap = 16 if args.tiny else 128
    out_env = os.environ.get("OUT")
    work = Path(tempfile.mkdtemp(prefix="zit-edit-"))
    import diffusers
    import transformers

    info = f"device {device}"
    if device == "cuda":
        info += f" {torch.cuda.get_device_name(0)}"
    info += f"; torch {torch.__version__}; diffusers {diffusers.__version__}; transformers {transformers.__version__}"
    say(info)
    from diffusers import ZImagePipeline

    tr, te, vae, tok, sched = build_parts(device, args.tiny)
    pipe = ZImagePipeline(scheduler=sched, vae=vae, text_encoder=te, tokenizer=tok, transformer=tr)
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    say("built the DiT, Qwen3 and VAE (random weights)")
    cn_path = work / "Random-Controlnet-Union-2.1.safetensors"
    gb = write_controlnet(cn_path, tr, device, args.tiny)
    say(f"wrote the ControlNet file: {gb:.2f} GB")
    inputs = make_inputs(work, size)
    t = time.perf_counter()
    from zitdesk.engine.edit.images import canny, open_image

    canny(open_image(inputs["control"]))
    canny_s = time.perf_counter() - t
    say(f"canny map of a {size}² picture on the CPU: {canny_s:.2f} s")
    bench = Bench(pipe, device, work / "out")
    t = time.perf_counter()
    from zitdesk.engine.edit.controlnet import check_controlnet, load_controlnet

    info_cn = check_controlnet(cn_path, dict(tr.config))
    cn_model = load_controlnet(info_cn, tr, device)
    sync()
    cn_load = time.perf_counter() - t
    cn_bytes = sum(
        p.numel() * p.element_size() for p in cn_model.parameters() if p.device.type != "meta"
    )
    del cn_model
    say(
        f"ControlNet check + load through zitdesk: {cn_load:.2f} s ({gib(cn_bytes)} GiB own weights)"
    )
    skip = set(filter(None, args.skip.split(",")))
    s = args.steps
    common = dict(width=size, height=size, steps=s)
    plan = [
        ("txt2img", f"text to image {size}², {s} steps (reference)", "", common),
        (
            "img2img",
            f"img2img {size}², strength 0.6",
            "",
            {**common, "init_image": inputs["init"], "strength": 0.6},
        ),
        (
            "inpaint",
            f"inpaint {size}², strength 1.0, centre mask",
            "",
            {**common, "init_image": inputs["init"], "mask_image": inputs["mask"], "strength": 1.0},
        ),
        (
            "controlnet",
            f"ControlNet (Union 2.1 layout, canny) {size}²",
            f"canny {canny_s:.2f} s of it on the CPU",
            {
                **common,
                "controlnet_path": str(cn_path),
                "control_image": inputs["control"],
                "control_scale": 0.75,
            },
        ),
        (
            "controlnet_inpaint",
            f"ControlNet inpaint {size}²",
            "",
            {
                **common,
                "controlnet_path": str(cn_path),
                "control_image": inputs["control"],
                "init_image": inputs["init"],
                "mask_image": inputs["mask"],
            },
        ),
        (
            "upscale",
            f"tiled upscale {size}² → {big}², {tile} px tiles, {overlap} overlap, strength 0.3",
            "",
            dict(
                width=big,
                height=big,
                steps=s,
                init_image=inputs["init"],
                upscale=2.0,
                strength=0.3,
                upscale_tile=tile,
                upscale_overlap=overlap,
            ),
        ),
        (
            "img2img_big",
            f"untiled img2img at {big}², strength 0.3 (what tiling avoids)",
            "",
            dict(width=big, height=big, steps=s, init_image=inputs["init"], strength=0.3),
        ),
    ]
    warm = {"txt2img", "controlnet"}  # the first 1024² job and the ControlNet's first load
    for key, name, note, kw in plan:
        if key in skip:
            continue
        if time.perf_counter() - T0 > args.deadline:
            ROWS.append(
                dict(variant=name, s=float("nan"), peak=0, resident=0, note="skipped (time)")
            )
            continue
        try:
            bench.variant(name, args.runs, note, warm=key in warm, **kw)
        except Exception:  # noqa: BLE001 - one failure keeps the table
            say(f"{name} FAILED\n{traceback.format_exc()[-2500:]}")
            ROWS.append(dict(variant=name, s=float("nan"), peak=0, resident=0, note="FAILED"))
    if (
        device == "cuda"
        and "upscale_stream" not in skip
        and time.perf_counter() - T0 < args.deadline
    ):
        try:  # block streaming (the 8–12 GB tier): weights in RAM, one tile at a time on the GPU
            from zitdesk.engine.memory import apply_memory_mode
            from zitdesk.engine.requests import MemoryMode

            object.__setattr__(pipe, "_zitdesk_controlnet", None)  # not part of this figure
            pipe.to("cpu")
            gc.collect()
            torch.cuda.empty_cache()
            apply_memory_mode(pipe, MemoryMode.GROUP_OFFLOAD, device)
            kw = dict(plan[5][3])
            bench.variant(
                f"tiled upscale {size}² → {big}², block streaming from RAM",
                1,
                "DiT blocks and Qwen3 streamed from RAM (the 12 GB-card setting)",
                **kw,
            )
        except Exception:  # noqa: BLE001
            say(f"upscale with block streaming FAILED\n{traceback.format_exc()[-2500:]}")
    table = [
        "| mode | time s | denoise+decode s | steps | peak VRAM GiB | +act GiB | output | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ROWS:
        act = r.get("peak", 0) - r.get("resident", 0)
        table.append(
            f"| {r['variant']} | {r['s']:.2f} | {r.get('denoise', float('nan')):.2f} | "
            f"{r.get('steps', '')} | {gib(r.get('peak', 0))} | {gib(max(act, 0))} | "
            f"{r.get('size', '')} | {r.get('note', '')} |"
        )
    text = "\n".join(table)
    say(
        f"total {time.perf_counter() - T0:.0f} s; ControlNet load {cn_load:.1f} s ({gb:.2f} GB file)"
    )
    print(text, flush=True)
    if out_env:
        o = Path(out_env)
        o.mkdir(parents=True, exist_ok=True)
        (o / "edit_gpu.json").write_text(
            json.dumps(
                {"info": info, "rows": ROWS, "controlnet_load_s": cn_load, "controlnet_gb": gb},
                default=str,
                indent=1,
            )
        )
        (o / "edit_gpu.log").write_text("\n".join(LOG) + "\n\n" + text + "\n")


if __name__ == "__main__":
    main()
