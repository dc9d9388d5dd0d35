"""Expected step time, peak GPU memory and total time of a training run, per VRAM preset.

Qt-free and torch-free (the wizard calls it on the GUI thread). Everything comes from the
measured calibration in ``docs/benchmarks.md`` ("LoRA training step, 1024², batch 1",
``bench/train_gpu.py`` on an NVIDIA H100 80GB HBM3; LoRA r32 on attention + feed-forward of all
34 blocks, one 128-token caption):

=============================  ========  =========  ===================================
row                            s / step  peak GiB   plan
=============================  ========  =========  ===================================
24gb preset, whole card         0.281     31.45     bf16, 0/34 blocks checkpointed
24gb preset, capped at 24 GiB   0.368     20.97     bf16, 19/34 blocks checkpointed
16gb preset, capped at 16 GiB   0.426      9.17     fp8, every block checkpointed
12gb preset, capped at 12 GiB   0.446      8.73     fp8, 8-bit AdamW
8gb preset, capped at 8 GiB     0.733      5.93     NF4, 8-bit AdamW, eager
=============================  ========  =========  ===================================

Smaller buckets, measured for this module on an NVIDIA H200 with ``bench/estimate_gpu.py`` (the
full-size random model and inputs of ``bench/train_gpu.py``, one process per preset stepping
512² → 768² → 1024², compiled, 10 timed steps after 3 warm-up at each size; torch 2.11):

======================  =========  ======  ======  ======
preset                  size       s/step  peak    est.
======================  =========  ======  ======  ======
16gb (fp8, full ckpt)   512²       0.266   7.79    0.250 s, 7.79 GiB
16gb                    768²       0.251   8.36    0.250 s, 8.36 GiB
16gb                    1024²      0.385   9.17    0.391 s, 9.17 GiB
24gb (bf16, no ckpt)    768²       0.146   23.43   0.145 s, 23.45 GiB
24gb                    1024²      0.262   31.44   0.258 s, 31.45 GiB
======================  =========  ======  ======  ======

How the rows become an estimate for *this* run on *this* card:

* **Planned tiers** (``auto`` checkpointing: the 24gb, 16gb and 12gb presets, #15): memory and
  the choice of checkpointed / fp8 blocks come from :mod:`zitdesk.train.memplan` on the
  full-size model (:func:`memplan.zimage_input`) with the card's memory less 0.5 GiB (or the
  preset's budget), at the run's largest bucket — the plan ``StepRunner.configure`` makes; the
  step is the planner's time for that plan at 1024² on the H100 scale, then scaled as below.
  The rules that follow are for the tiers that do not plan (8gb, ``full``/``off``).

* **Memory** does not depend on the card's speed: the measured peak, minus the activations the
  run does not need when its largest bucket is smaller than 1024², scaled by tokens: 1.9 GiB at
  1024² with every block checkpointed (the H200 fp8 rows: 9.17 / 8.36 / 7.79 GiB), everything
  above the bf16 weights + LoRA/AdamW state (12.6 GiB) for the ``24gb`` preset. That preset
  checkpoints only the blocks the card's memory needs ("auto"), so its peak follows the card:
  about the card's memory minus 3 GiB (the 24 GiB row left 3.0 GiB free), between 15 GiB (every
  block checkpointed, §12 of the engine notes) and 31.45 GiB (none); its step time is
  interpolated between the measured rows along that peak.
* **Step time** scales with the tokens of the buckets the run trains on (one step = one bucket;
  entries are drawn evenly), with attention's quadratic share (about 15 % of the work at 4 224
  tokens) and a 5 % fixed part (optimizer step), times batch, ×1.73 when a compiled preset runs
  eager (plain loop: 0.728 vs 0.420 s), divided by the card's speed relative to an H100
  (:data:`CARD_SPEEDS`: measured for the H200, a rough ratio from published bf16 throughput for
  the others; unknown cards get a guess from their memory size and the estimate says so) — but
  never below the host's per-step floor: the fp8 and NF4 presets launch so many small kernels
  (weights cast per layer, forward, recompute and backward) that below 1024² the step waits for
  the CPU (0.25 s on the H200 host at 512² and 768²; not scaled by the card, assumed the same
  for NF4). No floor showed for bf16 down to 768². Gradient accumulation multiplies the step.
* **Total** = start-up (loading the model and the text encoder, compiling: 60 s compiled /
  50 s eager, from the end-to-end run in ``docs/benchmarks.md``: 82.5 s for 30 steps; disk-bound,
  not scaled by the card; +8 s when a compiled run sees a second bucket shape: torch then
  compiles a dynamic-shape version once — on the H200 the first shape's warm-up took 40 s, the
  second 7.9 s, the third 1.4 s) + caching (VAE encode ~0.08 s per 1024² latent, ~0.02 s per
  caption on an H100, only on the first run over a dataset) + steps + sample rounds (1.5 s per
  1024² image at 8 steps, the Generate benchmark) + checkpoints (the LoRA, its fp32 copy and the
  optimizer state written at ~1 GB/s, plus 0.5 s).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from zitdesk.train import memplan
from zitdesk.train.config import TrainConfig
from zitdesk.train.presets import PRESETS

CALIBRATION_CARD = "NVIDIA H100 80GB HBM3"
CAPTION_TOKENS = 128
REF_TOKENS = (1024 // 16) ** 2 + CAPTION_TOKENS  # a 1024² bucket: 64×64 patches + caption

#: Measured 1024² rows: preset → (s/step, peak GiB).
MEASURED: dict[str, tuple[float, float]] = {
    "16gb": (0.426, 9.17),
    "12gb": (0.446, 8.73),
    "8gb": (0.733, 5.93),
}
#: The 24gb preset's "auto" checkpointing: (peak GiB, s/step) from every block checkpointed
#: (extrapolated: 0.281 s + 34 × 0.00458 s, the per-block recompute cost between the two
#: measured rows; peak ≈ 15 GiB, §12) through the 24 GiB cap to none checkpointed.
AUTO_CURVE: tuple[tuple[float, float], ...] = ((15.0, 0.437), (20.97, 0.368), (31.45, 0.281))
AUTO_HEADROOM_GIB = 3.0
ACTIVATIONS_1024_GIB = 1.9  # activations at 1024² with every block checkpointed (H200 fp8)
BF16_STATE_GIB = 12.6  # bf16 weights (11.5) + LoRA r32 with AdamW state (1.2)
FIXED_SHARE = 0.05
#: Per micro-batch minimum (s) by base precision: the host's kernel launches (H200 host, fp8).
STEP_FLOOR_S = {"fp8": 0.25, "nf4": 0.25}
ATTENTION_SHARE = 0.15
EAGER_FACTOR = 0.728 / 0.420
STARTUP_S = {True: 60.0, False: 50.0}  # compiled / eager
RECOMPILE_S = 8.0  # compiled, more than one bucket shape: one more (dynamic-shape) compile
LATENT_S = 0.08  # per 1024² image, H100
CAPTION_S = 0.02
SAMPLE_S = 1.5  # one 1024² image at 8 steps, H100 (engine, not compiled)
SAVE_BYTES_PER_S = 1.0e9
SAVE_FIXED_S = 0.5

#: Speed relative to an H100 SXM, matched in order against the card name (case-insensitive).
#: Rough ratios from published bf16 tensor throughput and diffusion-training benchmarks.
CARD_SPEEDS: tuple[tuple[str, float], ...] = (
    (r"\bB200\b", 1.8),
    (r"\bGH200\b|\bH200\b", 1.09),  # measured: 0.385 / 0.262 s vs the H100's 0.426 / 0.281
    (r"\bH100\b.*\bPCIe\b", 0.75),
    (r"\bH100\b.*\bNVL\b", 0.9),
    (r"\bH100\b|\bH800\b", 1.0),
    (r"\bA100\b|\bA800\b", 0.4),
    (r"\bL40S\b", 0.45),
    (r"\bL40\b", 0.35),
    (r"\bL4\b", 0.12),
    (r"\bA10G?\b", 0.15),
    (r"RTX PRO 6000", 0.6),
    (r"RTX 6000 Ada", 0.45),
    (r"RTX A6000|\bA6000\b", 0.2),
    (r"RTX 5090", 0.45),
    (r"RTX 5080", 0.28),
    (r"RTX 5070 Ti", 0.22),
    (r"RTX 5070", 0.16),
    (r"RTX 5060 Ti", 0.12),
    (r"RTX 4090", 0.35),
    (r"RTX 4080", 0.25),
    (r"RTX 4070 Ti", 0.2),
    (r"RTX 4070", 0.15),
    (r"RTX 4060 Ti", 0.11),
    (r"RTX 4060", 0.08),
    (r"RTX 3090", 0.18),
    (r"RTX 3080", 0.15),
    (r"RTX 3070", 0.1),
    (r"RTX 3060", 0.07),
)
#: Unknown cards: a guess by memory size (GiB at least → speed).
SPEED_BY_VRAM: tuple[tuple[float, float], ...] = (
    (70.0, 0.5),
    (40.0, 0.35),
    (20.0, 0.25),
    (14.0, 0.15),
    (10.0, 0.1),
    (0.0, 0.07),
)


@dataclass(frozen=True)
class GpuSpec:
    """What an estimate needs to know about a card."""

    name: str
    vram_gib: float


@dataclass(frozen=True)
class Estimate:
    """One run's expectation. Times in seconds, memory in GiB."""

    preset: str
    step_s: float
    peak_gib: float
    total_s: float
    how: str  # one or two plain sentences: how these numbers were made
    fits: bool | None = None  # None: no card to compare with
    steps: int = 0
    parts: dict[str, float] = field(default_factory=dict)  # startup, caching, training, ...
    speed: float = 1.0  # relative to the calibration card
    known_card: bool = False
    gpu_name: str = ""

    def breakdown(self) -> str:
        """ "2 min start-up and caching, 21 min training, 1 min samples, 30 s saving"."""
        p = self.parts
        items = [
            (p.get("startup", 0.0) + p.get("caching", 0.0), "start-up and caching"),
            (p.get("training", 0.0), "training"),
            (p.get("sampling", 0.0), "samples"),
            (p.get("saving", 0.0), "saving"),
        ]
        return ", ".join(f"{format_duration(s)} {what}" for s, what in items if s > 0)


def gpu_spec(gpu: Any) -> GpuSpec | None:
    """Normalise a card description: a :class:`GpuSpec`, a :class:`zitdesk.gpu.GpuReading`, a
    :class:`zitdesk.gpu.MemorySnapshot` (its first card), ``(name, vram_gib)`` or None."""
    if gpu is None:
        return None
    if isinstance(gpu, GpuSpec):
        return gpu
    if isinstance(gpu, tuple) and len(gpu) == 2:
        return GpuSpec(str(gpu[0]), float(gpu[1]))
    gpus = getattr(gpu, "gpus", None)
    if gpus is not None:
        return gpu_spec(gpus[0]) if gpus else None
    total = getattr(gpu, "total_bytes", None)
    if total is not None:
        return GpuSpec(str(getattr(gpu, "name", "GPU")), total / 2**30)
    raise TypeError(f"cannot read a GPU from {type(gpu).__name__}")


def card_speed(spec: GpuSpec) -> tuple[float, bool]:
    """``(speed relative to an H100, known card)``."""
    for pattern, speed in CARD_SPEEDS:
        if re.search(pattern, spec.name, flags=re.IGNORECASE):
            return speed, True
    for at_least, speed in SPEED_BY_VRAM:
        if spec.vram_gib >= at_least:
            return speed, False
    return SPEED_BY_VRAM[-1][1], False


def _tokens(w: int, h: int) -> int:
    return (w // 16) * (h // 16) + CAPTION_TOKENS


def _work(tokens: float) -> float:
    """Step work relative to a 1024² step: linear layers ∝ tokens, attention ∝ tokens²."""
    r = tokens / REF_TOKENS
    return FIXED_SHARE + (1 - FIXED_SHARE) * r * ((1 - ATTENTION_SHARE) + ATTENTION_SHARE * r)


def _interp(x: float, points: Sequence[tuple[float, float]]) -> float:
    if x <= points[0][0]:
        return points[0][1]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[-1][1]


#: The planner's times are on the H200 scale (whole-card step 0.262 s); this module's on the
#: H100's (0.281 s).
H100_PER_H200 = 0.281 / 0.262
#: Memory the driver and CUDA context take before training gets any (a desktop adds more).
CONTEXT_GIB = 0.5


def _plan_input(cfg: TrainConfig, spec: GpuSpec | None, image_tokens: int) -> Any:
    prec = cfg.model.base_precision
    gib = spec.vram_gib - CONTEXT_GIB if spec is not None else float("inf")
    if cfg.memory.vram_budget_gb > 0:
        gib = min(gib, cfg.memory.vram_budget_gb)
    budget = None if gib == float("inf") else int(gib * 2**30)
    return memplan.zimage_input(
        image_tokens * cfg.optim.batch_size,
        CAPTION_TOKENS,
        lora_parameters(cfg),
        cfg.optim.optimizer,
        budget,
        allow_fp8=prec == "auto",
        all_fp8=prec == "fp8",
    )


def _plan(cfg: TrainConfig, spec: GpuSpec | None, image_tokens: int) -> Any:
    """The memory planner's plan when the run uses it (``auto`` checkpointing, a float or fp8
    base): what ``StepRunner.configure`` will choose on this card; else None."""
    if cfg.memory.gradient_checkpointing != "auto" or cfg.model.base_precision not in (
        "auto",
        "bf16",
        "fp8",
    ):
        return None
    return memplan.plan_memory(_plan_input(cfg, spec, image_tokens))


def _preset_of(cfg: TrainConfig) -> str:
    if cfg.memory.preset in PRESETS:
        return cfg.memory.preset
    prec = cfg.model.base_precision
    if prec == "nf4":
        return "8gb"
    if prec == "fp8":
        return "16gb" if max(cfg.data.resolutions) > 768 else "12gb"
    return "24gb"


def default_buckets(resolutions: Iterable[int]) -> list[tuple[int, int]]:
    """Square buckets, one per resolution (a dataset of large square images)."""
    return [(r, r) for r in sorted(set(resolutions))]


def lora_parameters(cfg: TrainConfig) -> int:
    """Trainable LoRA parameters of the full-size model (30 layers, + 4 refiners if asked)."""
    d, ff, ada_in = 3840, 10240, 256
    per_layer = 0
    if "attention" in cfg.lora.targets:
        per_layer += 4 * (d + d)
    if "feed_forward" in cfg.lora.targets:
        per_layer += 2 * (d + ff) + (ff + d)
    if "adaln" in cfg.lora.targets:
        per_layer += ada_in + 4 * d
    blocks = 30 + (4 if cfg.lora.include_refiners else 0)
    return per_layer * cfg.lora.rank * blocks


def estimate_run(
    cfg: TrainConfig,
    gpu: Any,
    buckets: Sequence[tuple[int, int]] | None = None,
    images: int | None = None,
    cached: bool = False,
) -> Estimate:
    """Expected step time, peak memory and total time of ``cfg`` on ``gpu``.

    ``gpu``: anything :func:`gpu_spec` reads (None = no GPU found). ``buckets``: the training
    entries' bucket sizes (the dataset check's; default: one square bucket per resolution of
    ``cfg``), ``images`` the image count (for caching; default = one image per bucket).
    ``cached``: the latents and captions are already in the cache (no caching time).
    """
    spec = gpu_spec(gpu)
    preset = _preset_of(cfg)
    res = tuple(sorted(set(cfg.data.resolutions)))
    entries = list(buckets) if buckets else default_buckets(res)
    n_images = images if images is not None else max(1, len(entries) // max(1, len(res)))
    biggest = max(_tokens(w, h) for w, h in entries)
    ratio = biggest / REF_TOKENS

    plan = _plan(cfg, spec, biggest - CAPTION_TOKENS)
    if plan is not None:
        # the planner's choice for this card's budget at the largest bucket; its time at 1024²
        # (same choice), from the H200 calibration to the H100 scale of this module
        peak = plan.peak / 2**30
        ref = _plan_input(cfg, None, REF_TOKENS - CAPTION_TOKENS)
        step_1024 = H100_PER_H200 * memplan.predict_step(
            ref, plan.checkpointed, plan.fp8, plan.streamed
        )
    elif preset == "24gb":
        lo, hi = AUTO_CURVE[0][0], AUTO_CURVE[-1][0]
        peak_1024 = hi if spec is None else min(hi, max(lo, spec.vram_gib - AUTO_HEADROOM_GIB))
        step_1024 = _interp(peak_1024, AUTO_CURVE)
        # activations of the checkpointed blocks plus those the card lets stay un-checkpointed
        act_1024 = peak_1024 - BF16_STATE_GIB
    else:
        step_1024, peak_1024 = MEASURED[preset]
        act_1024 = ACTIVATIONS_1024_GIB
    if plan is None:
        # weights + LoRA + optimizer state stay; activations scale with tokens and batch size
        peak = peak_1024 - act_1024 + act_1024 * ratio * cfg.optim.batch_size
    preset_compiles = bool(PRESETS[preset].changes["memory"]["compile"])
    eager = preset_compiles and not cfg.memory.compile

    speed, known = card_speed(spec) if spec is not None else (1.0, True)
    floor = STEP_FLOOR_S.get(cfg.model.base_precision, 0.0)
    gpu_factor = step_1024 / _work(REF_TOKENS) * cfg.optim.batch_size / speed
    if eager:
        gpu_factor *= EAGER_FACTOR
    micro = [max(floor, _work(_tokens(w, h)) * gpu_factor) for w, h in entries]
    step = sum(micro) / len(micro) * cfg.optim.grad_accum

    steps = cfg.optim.steps
    startup = STARTUP_S[bool(cfg.memory.compile)]
    if cfg.memory.compile and len(set(entries)) > 1:
        startup += RECOMPILE_S
    area = sum(w * h for w, h in entries) / 1024**2
    caching = 0.0 if cached else (area * LATENT_S + n_images * CAPTION_S) / speed
    training = steps * step
    sm = cfg.sample
    rounds = 0
    if sm.every and sm.prompts:
        rounds = (steps - 1) // sm.every + 1 + (1 if sm.at_start else 0)
    sw, sh = cfg.sample_size()
    sampling = rounds * len(sm.prompts) * SAMPLE_S * (sm.steps / 8) * _work(_tokens(sw, sh)) / speed
    saves = ((steps - 1) // cfg.save.every + 1) if cfg.save.every else 1
    # bf16 LoRA file + fp32 adapter + AdamW moments (two fp32, or two bytes with 8-bit AdamW)
    per_param = 2 + 4 + (2 if cfg.optim.optimizer == "adamw8bit" else 8)
    saving = saves * (SAVE_FIXED_S + lora_parameters(cfg) * per_param / SAVE_BYTES_PER_S)
    parts = {
        "startup": startup,
        "caching": caching,
        "training": training,
        "sampling": sampling,
        "saving": saving,
    }
    total = sum(parts.values())
    fits = None if spec is None else peak <= spec.vram_gib - 0.5
    return Estimate(
        preset=preset,
        step_s=step,
        peak_gib=peak,
        total_s=total,
        how=_how(spec, speed, known),
        fits=fits,
        steps=steps,
        parts=parts,
        speed=speed,
        known_card=known,
        gpu_name=spec.name if spec else "",
    )


def estimate_tiers(
    cfg: TrainConfig,
    gpu: Any,
    buckets_for: Any = None,
    images: int | None = None,
    cached: bool = False,
) -> dict[str, Estimate]:
    """:func:`estimate_run` of ``cfg`` under every preset (its memory fields replaced).

    ``buckets_for``: None, or a callable ``resolutions -> buckets`` (the dataset check's buckets
    at those resolutions).
    """
    from zitdesk.train.presets import apply_preset

    out = {}
    for name in PRESETS:
        c = apply_preset(cfg, name)
        buckets = buckets_for(c.data.resolutions) if buckets_for else None
        out[name] = estimate_run(c, gpu, buckets, images, cached)
    return out


def _how(spec: GpuSpec | None, speed: float, known: bool) -> str:
    memory = "Memory: the measured peaks, the same on every card."
    if spec is None:
        return (
            "No NVIDIA GPU was found, so these are the figures measured on an NVIDIA H100 80GB "
            "(docs/benchmarks.md), for reference only: the presets need a CUDA GPU, and "
            "training on the CPU is far slower."
        )
    if known and re.search(r"\bH200\b|\bGH200\b", spec.name):
        return f"Times and memory: measured on an NVIDIA H200, the card you have ({spec.name})."
    if known and math.isclose(speed, 1.0) and re.search(r"H100|H800", spec.name):
        return (
            f"Times and memory: measured on an NVIDIA H100 80GB (docs/benchmarks.md), a card "
            f"as fast as yours ({spec.name})."
        )
    if known:
        return (
            f"Times: measured on NVIDIA H100 and H200 cards and scaled to your {spec.name} "
            f"(about {speed:.2f}× an H100's speed, from published bf16 throughput). " + memory
        )
    return (
        f"Your card ({spec.name}) is not in zitdesk's list, so the times are the H100 "
        f"measurements × {speed:.2f}, a guess for a {spec.vram_gib:.0f} GB card: treat them as "
        "a rough range. " + memory
    )


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``1 h 05 min``."""
    s = max(0.0, float(seconds))
    if s < 60:
        return f"{max(1, round(s))} s"
    m = round(s / 60)
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"
