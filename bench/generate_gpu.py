"""GPU benchmark: 1024² generation with the full-size Z-Image Turbo architecture (random weights).

Speed and memory do not depend on weight values, so random weights give the real figures
(docs/benchmarks.md). The script

1. builds the full-size DiT, Qwen3-4B and Flux VAE on the GPU with random weights and writes them
   in the ComfyUI single-file layout (fused qkv, ``model.``-prefixed Qwen3, LDM VAE names), which
   also proves zitdesk's single-file loader at full size;
2. measures plain diffusers (``ZImagePipeline`` built from the same parts, everything on the GPU);
3. measures zitdesk's engine loading those files from disk, in each memory mode;

and prints a markdown table last. Every variant runs in try/except so one failure keeps the table.

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

ROWS: list[dict] = []
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
    from diffusers import AutoencoderKL, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    from zitdesk.models import tiny as tinymod
    from zitdesk.paths import skeleton_dir

    if tiny:
        comps = tinymod.make_tiny_components()
        return comps["transformer"], comps["text_encoder"], comps["vae"], comps["tokenizer"]
    sk = skeleton_dir()
    tcfg = {
        k: v
        for k, v in json.loads((sk / "transformer/config.json").read_text()).items()
        if not k.startswith("_")
    }
    vcfg = {
        k: v
        for k, v in json.loads((sk / "vae/config.json").read_text()).items()
        if not k.startswith("_")
    }
    qcfg = {
        k: v
        for k, v in json.loads((sk / "text_encoder/config.json").read_text()).items()
        if k not in ("architectures", "torch_dtype")
    }
    torch.manual_seed(0)
    with torch.device(device):
        tr = ZImageTransformer2DModel(**tcfg).to(torch.bfloat16)
        te = Qwen3Model(Qwen3Config(**qcfg)).to(torch.bfloat16).eval()
        vae = AutoencoderKL(**vcfg).to(torch.bfloat16)
    with torch.no_grad():
        # Random init leaves large activations; scale the weights down so bf16 stays finite
        # (values do not change speed, but NaNs would make the images meaningless).
        for _name, p in tr.named_parameters():
            if p.ndim >= 2:
                p.mul_(0.2)
        tr.x_pad_token.normal_(0, 0.5)
        tr.cap_pad_token.normal_(0, 0.5)
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


def bench_plain(parts, device, size, steps, runs):
    from diffusers import FlowMatchEulerDiscreteScheduler, ZImagePipeline

    tr, te, vae, tok = parts
    pipe = ZImagePipeline(
        transformer=tr,
        vae=vae,
        text_encoder=te,
        tokenizer=tok,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=False),
    )
    pipe.set_progress_bar_config(disable=True)
    pipe.to(device)
    times = []
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
    ROWS.append(
        dict(
            variant="plain diffusers, all on GPU (encodes the prompt every call)",
            s=min(times),
            peak=peak(),
            note=f"warm, best of {runs}",
        )
    )
    del pipe


def bench_engine(model_dir, device, size, steps, runs, mode, label, **extra):
    from zitdesk.engine.cancel import CancelToken
    from zitdesk.engine.events import JobFailed, JobFinished
    from zitdesk.engine.generate import GenerationEngine
    from zitdesk.engine.requests import GenerateRequest, MemoryMode

    eng = GenerationEngine(model_path=str(model_dir), device=device)
    out = Path(tempfile.mkdtemp(prefix="zitbench-"))
    times, peaks, first = [], [], None
    for i in range(runs + 1):
        ev = []
        req = GenerateRequest(
            prompt=PROMPT,
            width=size,
            height=size,
            steps=steps,
            seed=i,
            memory_mode=MemoryMode(mode),
            output_dir=str(out),
            preview_every=1,
            **extra,
        )
        reset_peak()
        sync()
        t = time.perf_counter()
        eng.run(req, ev.append, CancelToken())
        sync()
        dt = time.perf_counter() - t
        last = ev[-1]
        if isinstance(last, JobFailed):
            raise RuntimeError(last.message + "\n" + last.traceback[-1500:])
        assert isinstance(last, JobFinished)
        if i == 0:
            first = dt
        else:
            times.append(dt)
            peaks.append(peak())
    ROWS.append(
        dict(
            variant=f"zitdesk engine, {label}",
            s=min(times),
            peak=max(peaks),
            note=f"first call incl. load {first:.1f} s; previews every step; PNG saved",
        )
    )
    eng.shutdown()
    del eng


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="CPU check with the tiny model")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "zit-full"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument(
        "--modes",
        default="gpu,gpu+unload_te,gpu+unload_te+compile,fp8+unload_te,group_offload,model_offload",
    )
    ap.add_argument(
        "--deadline", type=float, default=0, help="skip variants after this many seconds"
    )
    args = ap.parse_args()
    device = "cpu" if args.tiny or not torch.cuda.is_available() else "cuda"
    size = 64 if args.tiny else args.size
    out = Path(args.out)
    print(
        f"device {device} {torch.cuda.get_device_name(0) if device == 'cuda' else ''}; torch {torch.__version__}",
        flush=True,
    )
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
    try:
        bench_plain(parts, device, size, args.steps, args.runs)
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        ROWS.append(dict(variant="plain diffusers", s=float("nan"), peak=0, note="FAILED"))
    del parts
    reset_peak()
    labels = {
        "gpu": "everything on GPU",
        "gpu+unload_te": "GPU, text encoder freed after encoding",
        "gpu+unload_te+compile": "GPU, text encoder freed, DiT blocks compiled",
        "fp8+unload_te": "fp8 weight storage, text encoder freed",
        "fp8": "fp8 weight storage",
        "group_offload": "block streaming from RAM",
        "model_offload": "model CPU offload",
        "sequential": "sequential offload",
    }
    for m in args.modes.split(","):
        if args.deadline and time.perf_counter() - T0 > args.deadline:
            ROWS.append(
                dict(variant=f"zitdesk engine, {m}", s=float("nan"), peak=0, note="skipped (time)")
            )
            continue
        mode, *flags = m.split("+")
        extra = {{"unload_te": "unload_text_encoder"}.get(f, f): True for f in flags}
        try:
            bench_engine(out, device, size, args.steps, args.runs, mode, labels.get(m, m), **extra)
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            ROWS.append(
                dict(
                    variant=f"zitdesk engine, {labels.get(m, m)}",
                    s=float("nan"),
                    peak=0,
                    note="FAILED",
                )
            )
        reset_peak()
    base = ROWS[0]["s"]
    print(f"\n### {size}x{size}, {args.steps} steps, batch 1, guidance 0, bf16 ({device})\n")
    print("| variant | s / image | peak VRAM GiB | vs plain diffusers | note |")
    print("|---|---|---|---|---|")
    for r in ROWS:
        ratio = r["s"] / base if base == base and base > 0 else float("nan")
        print(f"| {r['variant']} | {r['s']:.3f} | {gib(r['peak'])} | {ratio:.2f}× | {r['note']} |")


if __name__ == "__main__":
    main()
