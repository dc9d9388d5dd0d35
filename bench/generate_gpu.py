"""GPU benchmark: 1024² generation with the full-size Z-Image Turbo architecture (random weights).

Speed and memory do not depend on weight values, so random weights give the real figures
(docs/benchmarks.md). The script

1. builds the full-size DiT, Qwen3-4B and Flux VAE on the GPU with random weights and writes them
   in the ComfyUI single-file layout (fused qkv, ``model.``-prefixed Qwen3, LDM VAE names), which
   also proves zitdesk's single-file loader at full size;
2. times ``cat`` of the files and ``load_pipeline`` of the same files (load vs read speed);
3. measures plain diffusers (``ZImagePipeline`` built from the same parts, everything on the GPU),
   eager and with ``transformer.compile_repeated_blocks(fullgraph=True)`` (diffusers' one knob);
4. measures zitdesk's engine loading those files, per speed setting (``off`` eager, ``auto`` the
   default, ``fp8`` compute) and memory mode, with the image drift of each against ``off``;
5. restarts: a second process with the same app cache times its first image (compile caches);
6. micro figures: PNG encode + fsync, a GPU preview, VAE decode, one fp8 vs bf16 linear;

and prints markdown tables last (also written to $OUT/generate_gpu.json when $OUT is set). Every
variant runs in try/except so one failure keeps the table.

Run on a CUDA machine:  python bench/generate_gpu.py [--out /tmp/zit-full] [--runs 3]
Check the script on a CPU with the tiny model:  python bench/generate_gpu.py --tiny
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("ZITDESK_HOME", tempfile.mkdtemp(prefix="zithome-"))

from zitdesk.offline import enforce_offline  # noqa: E402

enforce_offline()

import torch  # noqa: E402

from bench import benchkit  # noqa: E402

ROWS: list[dict] = []
MICRO: dict[str, float] = {}
T0 = time.perf_counter()
PROMPT = (
    "- scene: a lighthouse on a cliff at dusk, waves below\n"
    "- a girl -- short brown hair -- red coat -- on the left\n- style: 35mm photo, soft light"
)


def gib(b: float) -> str:
    return f"{b / 2**30:.2f}"


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak():
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak() -> int:
    return torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0


def build_full(device: str, tiny: bool):
    from zitdesk.models import tiny as tinymod

    if tiny:
        comps = tinymod.make_tiny_components()
        return comps["transformer"], comps["text_encoder"], comps["vae"], comps["tokenizer"]
    tr, te, vae = benchkit.full_size_parts(device)
    from zitdesk.models.tokenizer import default_tokenizer

    return tr, te, vae, default_tokenizer()


def write_comfy(out: Path, tr, te, vae) -> None:
    from safetensors.torch import save_file

    from zitdesk.models.tiny import comfy_dit_state_dict, ldm_vae_state_dict

    out.mkdir(parents=True, exist_ok=True)
    save_file(
        {
            k: v.detach().contiguous().cpu()
            for k, v in comfy_dit_state_dict(tr.state_dict()).items()
        },
        str(out / "z_image_turbo_bf16.safetensors"),
    )
    save_file(
        {f"model.{k}": v.detach().contiguous().cpu() for k, v in te.state_dict().items()},
        str(out / "qwen_3_4b.safetensors"),
    )
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in ldm_vae_state_dict(vae.state_dict()).items()},
        str(out / "ae.safetensors"),
    )


def timed(fn, reps: int = 10) -> float:
    """Median seconds of ``fn`` (synchronised)."""
    out = []
    for _ in range(reps + 2):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t)
    out = sorted(out[2:])
    return out[len(out) // 2]


def bench_plain(parts, device, size, steps, runs, compiled: bool):
    tr, te, vae, tok = parts
    pipe = benchkit.plain_pipeline(tr, vae, te, tok)
    pipe.to(device)
    if compiled:
        tr.compile_repeated_blocks(fullgraph=True)
    times = []
    first = 0.0
    reset_peak()
    for i in range(runs + 1):
        g = torch.Generator("cpu").manual_seed(i)
        sync()
        t = time.perf_counter()
        pipe(
            PROMPT,
            height=size,
            width=size,
            num_inference_steps=steps,
            guidance_scale=0.0,
            generator=g,
        )
        sync()
        if i:
            times.append(time.perf_counter() - t)
        else:
            first = time.perf_counter() - t
    label = "plain diffusers" + (
        " + `compile_repeated_blocks(fullgraph=True)`" if compiled else ", eager"
    )
    ROWS.append(
        dict(
            variant=label + " (encodes the prompt every call, writes no file)",
            s=min(times),
            peak=peak(),
            note=f"first call {first:.1f} s",
            key="plain_compiled" if compiled else "plain",
        )
    )
    if compiled:
        from zitdesk.engine.speed import uncompile

        uncompile(tr)
    return pipe


def micro(pipe, device, size) -> None:
    """PNG save, GPU preview, VAE decode (default / channels_last), fp8 vs bf16 linear."""
    import numpy as np
    from PIL import Image

    from zitdesk.engine.preview import fit_latent_rgb
    from zitdesk.engine.speed import AsyncPreview, fp8_capable, fp8_linear_class, to_fp8_linears
    from zitdesk.imagemeta import write_png

    vae = pipe.vae
    lat = torch.randn(1, 16, size // 8, size // 8, device=device, dtype=vae.dtype)
    with torch.inference_mode():
        MICRO["vae decode s"] = timed(lambda: vae.decode(lat, return_dict=False), 3)
        img = vae.decode(lat, return_dict=False)[0]
    arr = ((img[0].float().clamp(-1, 1) + 1) * 127.5).byte().permute(1, 2, 0).cpu().numpy()
    pil = Image.fromarray(arr)
    folder = Path(tempfile.mkdtemp(prefix="zitpng-"))
    k = [0]

    def save():
        k[0] += 1
        write_png(pil, folder / f"x{k[0]}.png", None)

    MICRO["PNG encode + fsync s (VAE output of random latents)"] = timed(save, 3)
    import io

    MICRO["PNG encode only, compress_level 1 s (to memory)"] = timed(
        lambda: pil.save(io.BytesIO(), format="PNG", compress_level=1), 3
    )
    MICRO["PNG encode only, default level s (to memory)"] = timed(
        lambda: pil.save(io.BytesIO(), format="PNG"), 3
    )
    if device == "cuda":
        vae.to(memory_format=torch.channels_last)
        with torch.inference_mode():
            MICRO["vae decode, channels_last s"] = timed(
                lambda: vae.decode(lat.to(memory_format=torch.channels_last), return_dict=False),
                3,
            )
        vae.to(memory_format=torch.contiguous_format)
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.nn.functional import scaled_dot_product_attention as sdpa

        seq = (size // 16) ** 2 + 64
        q, k_, v = (
            torch.randn(1, 30, seq, 128, device=device, dtype=torch.bfloat16) for _ in range(3)
        )
        for name, backend in (
            ("default", None),
            ("flash", SDPBackend.FLASH_ATTENTION),
            ("cudnn", SDPBackend.CUDNN_ATTENTION),
            ("efficient", SDPBackend.EFFICIENT_ATTENTION),
        ):
            try:
                if backend is None:
                    t_ = timed(lambda: sdpa(q, k_, v), 10)
                else:
                    with sdpa_kernel([backend]):
                        t_ = timed(lambda: sdpa(q, k_, v), 10)
                MICRO[f"attention 30x{seq}x128 {name} ms"] = t_ * 1e3
            except Exception as exc:  # noqa: BLE001 - a backend this card lacks
                print(f"attention {name}: {type(exc).__name__}: {exc}"[:200], flush=True)
    coef = fit_latent_rgb(vae, device)
    pv = AsyncPreview(coef)

    def preview():
        out = pv.submit(lat.float())
        if out is None:
            pv.ready(wait=True)

    if device == "cuda":
        t = time.perf_counter()
        for _ in range(20):
            pv.submit(lat.float())
            while pv.ready() is None and pv._pending is not None:
                pass
        MICRO["preview (GPU, async), host time per preview s"] = (time.perf_counter() - t) / 20
    else:
        MICRO["preview (CPU) s"] = timed(preview, 5)
    if device == "cuda" and fp8_capable(device):
        m = 4096 + 64
        x = torch.randn(m, 3840, device=device, dtype=torch.bfloat16)
        lin = torch.nn.Linear(3840, 10240, bias=False, device=device, dtype=torch.bfloat16)
        bf = timed(lambda: lin(x), 20)
        holder = torch.nn.Module()
        holder.layers = torch.nn.ModuleList([torch.nn.Module()])
        holder.layers[0].feed_forward = torch.nn.Module()
        holder.layers[0].feed_forward.w1 = lin
        to_fp8_linears(holder, device)
        assert isinstance(lin, fp8_linear_class())
        f8 = timed(lambda: lin(x), 20)
        flops = 2 * m * 3840 * 10240
        MICRO["linear 4160x3840x10240 bf16 TFLOP/s"] = flops / bf / 1e12
        MICRO["linear same, Fp8Linear eager (incl. activation quantise) TFLOP/s"] = (
            flops / f8 / 1e12
        )
        cf = torch.compile(lin.forward)
        cf(x)
        f8c = timed(lambda: cf(x), 20)
        MICRO["linear same, Fp8Linear compiled TFLOP/s"] = flops / f8c / 1e12
    del np


def bench_engine(model_dir, device, size, steps, runs, mode, label, speed="auto", **extra):
    from zitdesk.engine.cancel import CancelToken
    from zitdesk.engine.events import ImageReady, JobFailed, JobFinished, JobWarning, PhaseChanged
    from zitdesk.engine.generate import GenerationEngine
    from zitdesk.engine.requests import GenerateRequest, MemoryMode

    eng = GenerationEngine(model_path=str(model_dir), device=device)
    out = Path(tempfile.mkdtemp(prefix="zitbench-"))
    times, peaks, first, saves, denoise = [], [], None, [], []
    images: dict[int, str] = {}
    notes: list[str] = []
    detail = ""
    for i in range(runs + 1):
        ev = []
        stamps = []

        def emit(e, ev=ev, stamps=stamps):
            ev.append(e)
            stamps.append(time.perf_counter())

        req = GenerateRequest(
            prompt=PROMPT,
            width=size,
            height=size,
            steps=steps,
            seed=i,
            memory_mode=MemoryMode(mode),
            output_dir=str(out),
            preview_every=1,
            speed=speed,
            **extra,
        )
        reset_peak()
        sync()
        t = time.perf_counter()
        eng.run(req, emit, CancelToken())
        sync()
        total = time.perf_counter() - t
        dt = total / req.count  # per image
        last = ev[-1]
        if isinstance(last, JobFailed):
            raise RuntimeError(last.message + "\n" + last.traceback[-1500:])
        assert isinstance(last, JobFinished)
        ph: dict[str, float] = {}  # the first time each phase began (image 0)
        for e, s in zip(ev, stamps, strict=True):
            if isinstance(e, PhaseChanged):
                ph.setdefault(e.phase, s)
        ready = next(s for e, s in zip(ev, stamps, strict=True) if isinstance(e, ImageReady))
        for e in ev:
            if isinstance(e, ImageReady):
                images[i] = e.path
            if isinstance(e, JobWarning):
                notes.append(e.message)
            if isinstance(e, PhaseChanged) and e.phase == "loaded":
                detail = e.detail
        if i == 0:
            first = total
            first_image = ready - ph.get("encoding", t)
        else:
            times.append(dt)
            peaks.append(peak())
            saves.append(ready - ph["saving"])
            denoise.append(ph["saving"] - ph["denoising"])
    ROWS.append(
        dict(
            variant=f"zitdesk engine, {label}",
            s=min(times),
            peak=max(peaks),
            note=(
                f"first call {first:.1f} s (image after load {first_image:.1f} s); "
                f"denoise+decode {min(denoise):.3f}, PNG {min(saves):.3f}; {detail}"
                + (f"; notes: {' '.join(sorted(set(notes)))}" if notes else "")
            ),
            key=f"{mode}/{speed}"
            + ("+" + "+".join(extra) if extra else "")
            + (
                f"@{os.environ['ZITDESK_ATTENTION']}" if os.environ.get("ZITDESK_ATTENTION") else ""
            ),
            image=images.get(1, ""),
        )
    )
    eng.shutdown()
    del eng


def restart_child(model_dir: str, device: str, size: int, steps: int) -> None:
    """In a fresh process: first image (load excluded) and a warm one, default speed."""
    from zitdesk.engine.cancel import CancelToken
    from zitdesk.engine.events import ImageReady, JobFinished, PhaseChanged
    from zitdesk.engine.generate import GenerationEngine
    from zitdesk.engine.requests import GenerateRequest

    eng = GenerationEngine(model_path=model_dir, device=device)
    res = {}
    for i in range(3):
        ev = []

        def emit(e, ev=ev):
            ev.append((e, time.perf_counter()))

        sync()
        t = time.perf_counter()
        req = GenerateRequest(prompt=PROMPT, width=size, height=size, steps=steps, seed=i)
        req = req.with_changes(output_dir=tempfile.mkdtemp())
        eng.run(req, emit, CancelToken())
        sync()
        dt = time.perf_counter() - t
        assert isinstance(ev[-1][0], JobFinished), ev[-1][0]
        enc = next(s for e, s in ev if isinstance(e, PhaseChanged) and e.phase == "encoding")
        ready = next(s for e, s in ev if isinstance(e, ImageReady))
        if i == 0:
            res["first_total"] = dt
            res["first_image"] = ready - enc
        else:
            res.setdefault("warm", []).append(dt)
    print("RESTART " + json.dumps(res), flush=True)


def bench_restart(model_dir, device, size, steps) -> None:
    import subprocess

    cmd = [
        sys.executable,
        __file__,
        "--child-restart",
        "--out",
        str(model_dir),
        "--size",
        str(size),
        "--steps",
        str(steps),
    ]
    if device == "cpu":
        cmd.append("--tiny")
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    wall = time.perf_counter() - t
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESTART ")), "")
    if not line:
        print(proc.stdout[-3000:], proc.stderr[-3000:], flush=True)
        raise RuntimeError("restart child failed")
    res = json.loads(line[8:])
    warm = min(res["warm"])
    ROWS.append(
        dict(
            variant="zitdesk default after a restart (new process, same app cache): first image",
            s=res["first_image"],
            peak=0,
            note=(
                f"{res['first_image'] / warm:.2f}× the warm {warm:.3f} s; load excluded "
                f"(first job {res['first_total']:.1f} s, process {wall:.1f} s)"
            ),
            key="restart",
        )
    )


def load_vs_cat(model_dir: Path, device: str) -> None:
    import subprocess

    from zitdesk.models.discovery import resolve_model
    from zitdesk.models.loader import load_pipeline

    files = [model_dir / "z_image_turbo_bf16.safetensors", model_dir / "qwen_3_4b.safetensors"]
    files = [f for f in files if f.exists()] or sorted(model_dir.rglob("*.safetensors"))
    size = sum(f.stat().st_size for f in files)
    t = time.perf_counter()
    subprocess.run(["cat", *map(str, files)], stdout=subprocess.DEVNULL, check=True)
    cat_s = time.perf_counter() - t
    gc.collect()
    t = time.perf_counter()
    pipe = load_pipeline(resolve_model(str(model_dir)), device=device)
    load_s = time.perf_counter() - t
    MICRO["files read (DiT + text encoder) GB"] = size / 1e9
    MICRO["cat GB/s"] = size / cat_s / 1e9
    MICRO["load_pipeline (to RAM, all parts) GB/s"] = size / load_s / 1e9
    MICRO["load / cat"] = cat_s / load_s
    del pipe
    gc.collect()


def drift(a: str, b: str) -> str:
    import numpy as np
    from PIL import Image

    if not a or not b:
        return "n/a"
    x = np.asarray(Image.open(a).convert("RGB"), dtype=np.float64)
    y = np.asarray(Image.open(b).convert("RGB"), dtype=np.float64)
    mse = float(((x - y) ** 2).mean())
    psnr = float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)
    return f"PSNR {psnr:.1f} dB, mean abs diff {np.abs(x - y).mean():.2f}/255"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="CPU check with the tiny model")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "zit-full"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument(
        "--modes",
        default="gpu/off,gpu/auto,gpu/auto@cudnn,gpu/fp8,fp8/auto,gpu/auto+x4",
        help="memory_mode/speed[+unload_te][@cudnn], comma-separated (@cudnn: "
        "ZITDESK_ATTENTION=cudnn for that variant)",
    )
    ap.add_argument(
        "--skip", default="", help="comma list of: plain,plain_compiled,micro,load,restart"
    )
    ap.add_argument("--child-restart", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--deadline", type=float, default=0, help="skip variants after this many seconds"
    )
    args = ap.parse_args()
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    size = 64 if args.tiny else args.size
    out = Path(args.out)
    if args.child_restart:
        restart_child(str(out), device, size, args.steps)
        return
    skip = set(filter(None, args.skip.split(",")))
    info = f"device {device} {torch.cuda.get_device_name(0) if device == 'cuda' else ''}; torch {torch.__version__}"
    if device == "cuda":
        import subprocess

        drv = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        info += f"; driver {drv}"
    import diffusers
    import transformers

    info += f"; diffusers {diffusers.__version__}; transformers {transformers.__version__}"
    print(info, flush=True)
    t = time.perf_counter()
    parts = build_full(device, args.tiny)
    print(f"built parts in {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    if args.tiny:
        from zitdesk.models.tiny import save_tiny_model

        save_tiny_model(out, "comfy")
    else:
        write_comfy(out, *parts[:3])
    print(
        f"wrote ComfyUI single files in {time.perf_counter() - t:.1f} s: "
        + ", ".join(
            f"{f.name} {f.stat().st_size / 1e9:.2f} GB" for f in sorted(out.glob("*.safetensors"))
        ),
        flush=True,
    )

    def guarded(name, fn, *a, **k):
        if name in skip:
            return None
        if args.deadline and time.perf_counter() - T0 > args.deadline:
            ROWS.append(dict(variant=name, s=float("nan"), peak=0, note="skipped (time)", key=name))
            return None
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            ROWS.append(dict(variant=name, s=float("nan"), peak=0, note="FAILED", key=name))
        finally:
            print(
                f"[{time.perf_counter() - T0:.0f} s] {name} took {time.perf_counter() - t:.1f} s",
                flush=True,
            )
        return None

    pipe = guarded("plain", bench_plain, parts, device, size, args.steps, args.runs, False)
    if device == "cuda":
        guarded("plain_compiled", bench_plain, parts, device, size, args.steps, args.runs, True)
    if pipe is not None:
        guarded("micro", micro, pipe, device, size)
    del pipe, parts
    reset_peak()
    guarded("load", load_vs_cat, out, device)
    labels = {
        "gpu/off": "everything on GPU, speed off (eager bf16, as before)",
        "gpu/auto": "**default** (speed auto: compiled blocks, bf16)",
        "gpu/auto@cudnn": "speed auto + cuDNN attention (ZITDESK_ATTENTION=cudnn)",
        "gpu/auto+x4": "default, 4 images per job (s per image: PNGs written during the next)",
        "gpu/fp8": "speed fp8 (fp8 compute, compiled)",
        "fp8/auto": "fp8 memory mode, speed auto (fp8 compute on fp8 cards)",
        "fp8/off": "fp8 weight storage, speed off",
        "group_offload/auto": "block streaming from RAM",
    }
    for m in args.modes.split(","):
        spec, _, attention = m.partition("@")
        mode, _, speed = spec.partition("/")
        speed, *flags = speed.split("+")
        extra: dict = {{"unload_te": "unload_text_encoder"}.get(f, f): True for f in flags}
        for f in [f for f in flags if f.startswith("x") and f[1:].isdigit()]:
            extra.pop(f)
            extra["count"] = int(f[1:])  # gpu/auto+x4: 4 images per job (PNG writer overlap)
        if attention:
            os.environ["ZITDESK_ATTENTION"] = attention
        else:
            os.environ.pop("ZITDESK_ATTENTION", None)
        guarded(
            f"zitdesk {m}",
            bench_engine,
            out,
            device,
            size,
            args.steps,
            args.runs,
            mode,
            labels.get(m, m),
            speed=speed or "auto",
            **extra,
        )
        os.environ.pop("ZITDESK_ATTENTION", None)
        reset_peak()
    guarded("restart", bench_restart, out, device, size, args.steps)
    by_key = {r.get("key"): r for r in ROWS}
    ref = by_key.get("gpu/off", {}).get("image", "")
    for r in ROWS:
        if r.get("image") and r.get("key") != "gpu/off":
            r["note"] += f"; drift vs speed off (seed 1): {drift(ref, r['image'])}"
    base = by_key.get("plain", {}).get("s", float("nan"))
    comp = by_key.get("plain_compiled", {}).get("s", float("nan"))
    lines = [
        f"\n{info}",
        f"\n### {size}x{size}, {args.steps} steps, batch 1, guidance 0, bf16 ({device})\n",
        "| variant | s / image | peak VRAM GiB | vs plain eager | vs plain compiled | note |",
        "|---|---|---|---|---|---|",
    ]
    for r in ROWS:
        a = r["s"] / base if base == base and base > 0 else float("nan")
        b = r["s"] / comp if comp == comp and comp > 0 else float("nan")
        lines.append(
            f"| {r['variant']} | {r['s']:.3f} | {gib(r['peak'])} | {a:.2f}× | {b:.2f}× | {r['note']} |"
        )
    lines += ["", "| micro figure | value |", "|---|---|"]
    lines += [f"| {k} | {v:.4g} |" for k, v in MICRO.items()]
    text = "\n".join(lines)
    print(text, flush=True)
    if os.environ.get("OUT"):
        from zitdesk.io import atomic_write

        atomic_write(Path(os.environ["OUT"], "generate_gpu.md"), text)
        atomic_write(
            Path(os.environ["OUT"], "generate_gpu.json"),
            json.dumps({"info": info, "rows": ROWS, "micro": MICRO}, indent=1, default=str),
        )


if __name__ == "__main__":
    main()
