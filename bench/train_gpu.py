"""GPU benchmark: LoRA training steps at 1024², full-size Z-Image architecture, random weights.

Speed and memory do not depend on weight values, so random weights give the real figures. Every
variant trains the same LoRA — rank 32 on attention + feed-forward of all 34 blocks (the layers
and both refiners), the workload of docs/benchmarks.md / engine notes §12 — on one random latent
(1×16×128×128) and a random 128-token caption embedding (2560 wide), and times ``--steps`` steps
after ``--warmup`` steps:

* ``baseline`` — a plain diffusers + PEFT loop: ``add_adapter``, fp32 LoRA weights, fused
  AdamW, ``torch.autocast(bfloat16)``, diffusers' gradient checkpointing on every block, and
  ``loss.item()`` every step as plain loops log it;
* ``baseline+compile`` — the same with ``transformer.compile_repeated_blocks()``;
* ``24gb`` / ``24gb@24`` / ``16gb`` / ``12gb`` / ``8gb`` — zitdesk's trainer step
  (:func:`zitdesk.train.setup.prepare_transformer` + :class:`zitdesk.train.core.StepRunner` +
  the trainer's sync-free loss reporter) with that VRAM preset. ``24gb`` (the default preset on
  big cards) uses the whole card; ``@N`` variants run under
  ``torch.cuda.set_per_process_memory_fraction`` = N GiB *after* setup (the trainer itself never
  holds the full bf16 model on the GPU while quantising; this script builds it there first).
  ``16gb``/``12gb``/``8gb`` are capped at their tier.

Each variant runs in try/except so one failure keeps the table; the markdown table comes last.

Run on a CUDA machine:  python bench/train_gpu.py [--steps 20] [--warmup 3]
Check the script on a CPU with the tiny model:  python bench/train_gpu.py --tiny
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("ZITDESK_HOME", tempfile.mkdtemp(prefix="zithome-"))
os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")

from zitdesk.offline import enforce_offline  # noqa: E402

enforce_offline()

import torch  # noqa: E402

from bench import benchkit  # noqa: E402

GiB = 1 << 30
ROWS: list[dict] = []
ALL_VARIANTS = "24gb,24gb@24,16gb,12gb,8gb-stream,repeat,baseline,baseline+compile,8gb"
BLOCKS_RE = (
    r"(?:layers|noise_refiner|context_refiner)\.\d+\."
    r"(?:attention\.(?:to_q|to_k|to_v|to_out\.0)|feed_forward\.w[123])"
)


def cuda() -> bool:
    return torch.cuda.is_available()


def sync() -> None:
    if cuda():
        torch.cuda.synchronize()


def clean() -> None:
    gc.collect()
    if cuda():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    with contextlib.suppress(Exception):  # older torch
        torch.compiler.reset()


def peak() -> int:
    return torch.cuda.max_memory_allocated() if cuda() else 0


def add_row(variant: str, s, first: float, note: str, peak_bytes: int | None = None, **more):
    """One row of the table; ``peak`` is the card's peak since the last reset unless given."""
    peak_b = peak() if peak_bytes is None else peak_bytes
    ROWS.append(dict(variant=variant, s=s, peak=peak_b, first=first, note=note, **more))


def build_transformer(device: str, tiny: bool):
    """Full-size DiT from the bundled skeleton config, random weights, built on meta → device."""
    from diffusers import ZImageTransformer2DModel

    if tiny:
        from zitdesk.models.tiny import make_tiny_components

        return make_tiny_components()["transformer"].to(device)
    with torch.device("meta"):
        tr = ZImageTransformer2DModel(**benchkit.skeleton_config("transformer"))
    tr = tr.to(torch.bfloat16).to_empty(device=device)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for name, p in tr.named_parameters():
            if name.endswith("pad_token"):
                p.normal_(0.0, 0.5, generator=g)
            elif p.ndim >= 2:
                p.normal_(0.0, 0.02, generator=g)  # small: keeps bf16 activations finite
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.fill_(1.0)  # norm scales
    return tr


def inputs(device: str, tiny: bool, size: int):
    """CPU tensors, as the trainer holds them: latent (1,16,H/8,W/8), caption (128, hidden)."""
    g = torch.Generator().manual_seed(1)
    lat_side = size // 8
    if tiny:
        lat = torch.randn(1, 16, lat_side, lat_side, generator=g) * 0.5
        cap = torch.randn(128, 16, generator=g)
    else:
        lat = torch.randn(1, 16, lat_side, lat_side, generator=g) * 0.5
        cap = torch.randn(128, 2560, generator=g).to(torch.bfloat16)
    return lat, cap


def timed(step, warmup: int, steps: int) -> tuple[float, float]:
    """Run ``step(i)`` warmup + steps times; returns (s/step of the timed part, first-step s)."""
    sync()
    t = time.perf_counter()
    step(0)
    sync()
    first = time.perf_counter() - t
    for i in range(1, warmup):
        step(i)
    sync()
    t = time.perf_counter()
    for i in range(warmup, warmup + steps):
        step(i)
    sync()
    return (time.perf_counter() - t) / steps, first


# ----------------------------------------------------------------------------------------------
# variants
# ----------------------------------------------------------------------------------------------


def bench_baseline(args, device: str, compile_blocks: bool) -> None:
    from peft import LoraConfig

    label = "plain diffusers+peft, eager" + (" + compile_repeated_blocks" if compile_blocks else "")
    clean()
    tr = build_transformer(device, args.tiny)
    tr.requires_grad_(False)
    tr.add_adapter(
        LoraConfig(r=32, lora_alpha=32, init_lora_weights=True, target_modules=BLOCKS_RE)
    )
    params = [p for n, p in tr.named_parameters() if "lora_" in n]
    for p in params:
        p.data = p.data.float()
        p.requires_grad_(True)
    tr.enable_gradient_checkpointing()
    if compile_blocks:
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        tr.compile_repeated_blocks(fullgraph=False)
    tr.train()
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-4, fused=cuda())
    lat, cap = inputs(device, args.tiny, args.size)
    x0, c = lat.to(device), cap.to(device)
    dt = tr.dtype
    use_autocast = cuda() and dt == torch.bfloat16
    losses = []

    def step(i: int) -> None:
        eps = torch.randn_like(x0)
        s = torch.full((1,), 0.3 + 0.6 * ((i * 7919) % 100) / 100, device=device)
        xt = (1 - s.view(-1, 1, 1, 1)) * x0 + s.view(-1, 1, 1, 1) * eps
        ctx = (
            torch.autocast("cuda", torch.bfloat16)
            if use_autocast
            else torch.autocast("cpu", enabled=False)
        )
        with ctx:
            out = tr([xt[0].unsqueeze(1).to(dt)], 1 - s, [c.to(dt)], return_dict=False)[0][0]
        loss = ((-out.squeeze(1).float() - (eps - x0)[0]) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())

    clean()
    s_step, first = timed(step, args.warmup, args.steps)
    add_row(label, s_step, first, f"{len(params) // 2} LoRA modules, loss {losses[-1]:.3f}")


def bench_preset(args, device: str, name: str) -> None:
    from zitdesk.train.config import TrainConfig
    from zitdesk.train.core import MicroBatch, StepRunner
    from zitdesk.train.presets import PRESETS, apply_preset
    from zitdesk.train.setup import prepare_transformer
    from zitdesk.train.trainer import LossReporter

    preset, _, cap = name.partition("@")
    stream = preset.endswith("-stream")  # the planner with block streaming (candidate 8 GB tier)
    preset = preset.removesuffix("-stream")
    cap_gib = float(cap) if cap else (0.0 if preset == "24gb" else float(PRESETS[preset].vram_gb))
    label = (
        f"zitdesk {preset} preset"
        + (" (fp8 + streaming, planner)" if stream else "")
        + (f", capped at {cap_gib:g} GiB" if cap_gib else ", whole card")
    )
    clean()
    cfg = apply_preset(TrainConfig(), preset).with_changes(
        lora={
            "rank": 32,
            "alpha": 32.0,
            "targets": ("attention", "feed_forward"),
            "include_refiners": True,
        },
        optim={"steps": args.warmup + args.steps, "learning_rate": 1e-4},
    )
    if cap_gib:
        cfg = cfg.with_changes(memory={"vram_budget_gb": cap_gib})
    if stream:
        cfg = cfg.with_changes(
            model={"base_precision": "fp8"},
            memory={"gradient_checkpointing": "auto", "compile": True},
        )
    from zitdesk.train import memplan

    memplan.STREAMING = stream
    if not cuda():  # CPU check: the CUDA-only parts of the presets are swapped for CPU ones
        cfg = cfg.with_changes(
            model={"base_precision": "fp8" if preset != "24gb" else "auto"},
            optim={"optimizer": "adamw"},
            memory={"compile": False},
        )
    tr = build_transformer(device, args.tiny)
    img_tokens = (args.size // 16) ** 2
    prep = prepare_transformer(tr, cfg, device, tokens=(img_tokens, 128))
    clean()
    if cap_gib and cuda():
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap_gib * GiB / total))
    try:
        runner = StepRunner(tr, cfg, device)
        plan = runner.configure(image_tokens=img_tokens, caption_tokens=128)
        reporter = LossReporter(lambda ev: None, "bench", cfg.optim.steps, cuda())
        lat, capt = inputs(device, args.tiny, args.size)

        def step(i: int) -> None:
            g = torch.Generator().manual_seed(i)
            noise = torch.randn(lat.shape, generator=g)
            mb = MicroBatch(lat, noise, [capt], [0.3 + 0.6 * ((i * 7919) % 100) / 100], [1.0])
            reporter.add(i + 1, runner.train_step([mb]), runner.lr)

        s_step, first = timed(step, args.warmup, args.steps)
        reporter.flush()
        note = (
            f"{prep.base_precision}, {cfg.optim.optimizer}, checkpointed "
            f"{plan['checkpointed_blocks']}/{plan['blocks']} blocks"
            + (f", fp8 {plan['fp8_blocks']}" if plan.get("fp8_blocks") else "")
            + (f", {plan['streamed_blocks']} streamed" if plan.get("streamed_blocks") else "")
            + (", compiled" if plan["compiled"] else "")
            + f", loss {reporter.last_loss:.3f}"
        )
        if runner.plan is not None and runner.plan.streamed:
            from zitdesk.train.streaming import MEASURED_H2D

            note += f", H2D {MEASURED_H2D.get(device, 0) / 1e9:.1f} GB/s"
        add_row(
            label,
            s_step,
            first,
            note,
            pred_peak=plan.get("predicted_peak_gib"),
            pred_s=plan.get("predicted_step_s"),
        )
    finally:
        if cuda():
            torch.cuda.set_per_process_memory_fraction(1.0)


def bench_repeat(args) -> None:
    """A new process trains the 24 GiB tier again: its first step loads the compile cache."""
    import subprocess

    cmd = [sys.executable, __file__, "--variants", "24gb@24", "--steps", "2", "--warmup", "1"]
    cmd += ["--size", str(args.size)] + (["--tiny"] if args.tiny else [])
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300).stdout
    wall = time.perf_counter() - t
    line = next((x for x in out.splitlines() if x.startswith("24gb@24:")), "")
    if not line:
        raise RuntimeError("the repeated run printed no result: " + out[-300:])
    first = float(line.split("first step")[1].split("s")[0])
    s_step = float(line.split(":")[1].split("s/step")[0])
    add_row(
        "repeated run of the 24 GiB tier (new process, compile cache warm)",
        s_step,
        first,
        f"first step {first:.1f} s incl. compile-cache load; process {wall:.0f} s",
        peak_bytes=0,
    )


#: The tiers as the bench runs them: variant → (budget GiB or 0 = whole card, optimizer, kw).
PLAN_TIERS = {
    "24gb (whole card)": (0.0, "adamw", {"allow_fp8": True}),
    "24gb@24": (24.0, "adamw", {"allow_fp8": True}),
    "16gb": (16.0, "adamw", {"all_fp8": True}),
    "12gb": (12.0, "adamw8bit", {"all_fp8": True}),
    "8gb-stream": (8.0, "adamw8bit", {"all_fp8": True, "allow_stream": True}),
}


def plan_only(args) -> None:
    """The planner's choices and predictions for the full-size model, no GPU (meta tensors)."""
    from diffusers import ZImageTransformer2DModel

    from zitdesk.train import adapters as ad
    from zitdesk.train import memplan
    from zitdesk.train.streaming import plan_input

    with torch.device("meta"):
        tr = ZImageTransformer2DModel(**benchkit.skeleton_config("transformer"))
    tr = tr.to(torch.bfloat16)
    tr.requires_grad_(False)
    ad.add_user_adapter(tr, 32, 32.0, ("attention", "feed_forward"), True, 0)
    print(f"\n### Planner predictions, {args.size}², LoRA r32, 128-token caption (no GPU)\n")
    print(
        "| tier | budget GiB | fp8 weights save their dequantised copy | plan | s / step | peak GiB |"
    )
    print("|---|---|---|---|---|---|")
    for name, (gib, opt, kw) in PLAN_TIERS.items():
        memplan.STREAMING = bool(kw.get("allow_stream"))
        for dq in (True, False):
            cal = memplan.CALIBRATION.with_(fp8_saves_dequant=dq, h2d_bytes_per_s=args.h2d * 1e9)
            budget = int(gib * GiB) if gib else None
            inp = plan_input(tr, (args.size // 16) ** 2, 128, opt, budget, **kw)
            p = memplan.plan_memory(inp, cal)
            what = p.summary(len(inp.blocks)).rsplit(", predicted peak", 1)[0]
            print(
                f"| {name} | {gib or '—'} | {'yes (plain F.linear)' if dq else 'no (fp8_linear op: default)'} | {what}"
                f"{'' if p.fits else ' (does not fit)'} | {p.step_s:.3f} | {p.peak / GiB:.2f} |"
            )
    memplan.STREAMING = False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--plan-only", action="store_true", help="print the planner's choices (no GPU needed)"
    )
    ap.add_argument("--h2d", type=float, default=25.0, help="--plan-only: host→device GB/s")
    ap.add_argument("--tiny", action="store_true", help="CPU check with the tiny model")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3, help="untimed first steps (compilation)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--variants", default=ALL_VARIANTS)
    ap.add_argument("--deadline", type=float, default=0, help="skip variants after this many s")
    args = ap.parse_args()
    if args.plan_only:
        plan_only(args)
        return
    device = "cuda" if cuda() else "cpu"
    if args.tiny:
        args.size = min(args.size, 128)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if not cuda():
        variants = [v for v in variants if "compile" not in v] or variants
    t_all = time.perf_counter()
    print(
        f"device {device} {torch.cuda.get_device_name(0) if cuda() else ''}; torch "
        f"{torch.__version__}; {'tiny' if args.tiny else 'full-size'} model",
        flush=True,
    )
    for v in variants:
        if args.deadline and time.perf_counter() - t_all > args.deadline:
            add_row(v, None, 0, "skipped (deadline)", peak_bytes=0)
            continue
        t = time.perf_counter()
        try:
            if v == "baseline":
                bench_baseline(args, device, compile_blocks=False)
            elif v == "baseline+compile":
                bench_baseline(args, device, compile_blocks=True)
            elif v == "repeat":
                bench_repeat(args)
            else:
                bench_preset(args, device, v)
            r = ROWS[-1]
            print(
                f"{v}: {r['s']:.3f} s/step, peak {r['peak'] / GiB:.2f} GiB, first step "
                f"{r['first']:.1f} s ({time.perf_counter() - t:.0f} s)",
                flush=True,
            )
        except Exception as exc:  # noqa: BLE001 - one variant's failure must keep the table
            traceback.print_exc()
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            add_row(v, None, 0, f"failed: {type(exc).__name__}: {first}")
        finally:
            clean()
    base = next(
        (
            r["s"]
            for r in ROWS
            if r["variant"].startswith("plain") and "compile" not in r["variant"] and r["s"]
        ),
        None,
    )
    print(
        f"\n### LoRA r32 training step, {args.size}², batch 1, 128-token caption ({device}, "
        f"{torch.cuda.get_device_name(0) if cuda() else 'CPU'}), {args.steps} steps after "
        f"{args.warmup} warm-up\n"
    )
    print(
        "| variant | s / step | predicted s | peak VRAM GiB | predicted peak | peak error "
        "| vs eager baseline | first step s | note |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in ROWS:
        if r["s"] is None:
            print(
                f"| {r['variant']} | — | — | {r['peak'] / GiB:.2f} | — | — | — | — | {r['note']} |"
            )
            continue
        ratio = f"{r['s'] / base:.2f}×" if base else "—"
        pp, ps = r.get("pred_peak"), r.get("pred_s")
        err = f"{(pp * GiB - r['peak']) / r['peak'] * 100:+.1f} %" if pp and r["peak"] else "—"
        print(
            f"| {r['variant']} | {r['s']:.3f} | {ps if ps else '—'} | {r['peak'] / GiB:.2f} | "
            f"{pp if pp else '—'} | {err} | {ratio} | {r['first']:.1f} | {r['note']} |"
        )


if __name__ == "__main__":
    main()
