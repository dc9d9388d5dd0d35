"""The training memory planner: which blocks to checkpoint, hold in fp8 or stream from RAM.

Torch-free: the caller measures the model (bytes per block, tokens per block) and the budget;
:func:`plan_memory` returns the cheapest plan (predicted seconds per step) whose predicted peak
fits. The memory model is a simulation of one step over the blocks in forward order:

* resident state: every weight on the GPU (bf16 ``2·n``, fp8 ``1·n`` + one bf16 scale per 64),
  the LoRA's fp32 weights + grads + optimizer state, and a fixed overhead;
* an un-checkpointed block keeps ``act`` bytes per token·dim until its backward; a checkpointed
  block keeps only its input (``ckpt_input`` bytes per token·dim) and, during its backward,
  recomputes its activations (``act``) plus a transient (``recompute`` per token·dim);
* a streamed block (checkpointed, its base weights in pinned RAM) costs no resident weight, but
  ``1 + stream_depth`` blocks' weights are in flight on the GPU at any time.

The peak is the larger of the end of the forward pass (everything saved) and each block's
backward (the blocks before it still saved, this one recomputed). Times: a whole-card bf16 step
plus, per block, the recompute cost (∝ tokens), the fp8 dequantisation cost, and for streaming
the host→device copy time that the compute of the same pass does not hide.

Greedy: starting from "all resident, bf16, none checkpointed", the planner repeatedly applies the
change with the smallest added time per byte saved (fp8 a block, checkpoint a block, stream a
block) until the predicted peak fits the budget. Calibration: :data:`DEFAULT_CALIBRATION`
(bench/train_gpu.py, docs/benchmarks.md "Issue #15").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

GiB = 1 << 30


@dataclass(frozen=True)
class Calibration:
    """Measured constants of the memory and time model (bytes per token·model-width unit)."""

    # Memory: fitted to six measured peaks (docs/benchmarks.md: bf16 with 0 and 19 blocks
    # checkpointed, fp8 with all checkpointed at 512², 768², 1024², AdamW and 8-bit AdamW):
    # every one predicted within 1.1 %.
    act: float = 38.0  # activations kept by an un-checkpointed bf16 block
    act_fp8: float = 38.0  # the same for an fp8 block (compiled: the fp8 weight is saved)
    # Whether an un-checkpointed fp8 block also keeps its dequantised bf16 weights for the
    # backward: a plain F.linear on them does, eager and compiled (the min-cut partitioner saved
    # them too, checked on the CPU); precision.fp8_linear_op keeps only the fp8 weight + scales.
    fp8_saves_dequant: bool = False
    ckpt_input: float = 2.0  # a checkpointed block's saved input (bf16 hidden state)
    recompute: float = 8.0  # transient beside the recomputed activations during a backward
    overhead: int = int(0.2 * GiB)  # embedders, final layer, loss, cuBLAS workspace
    step_s: float = 0.262  # whole-card bf16 step at ref_tokens (H200)
    ckpt_s: float = 0.0043  # recompute cost of one block at ref_tokens
    fp8_s: float = 0.0004  # per fp8 block per step (dequantised in forward and backward)
    forward_share: float = 0.3  # forward part of a step (streaming overlap)
    ref_tokens: int = 4224  # 64×64 patches + 128 caption tokens
    ref_token_sum: int = 30 * 4224 + 2 * 4096 + 2 * 128  # all 34 blocks at 1024², 128 tokens
    h2d_bytes_per_s: float = 20e9  # pinned host → device (measured at run time when streaming)
    margin: int = int(0.5 * GiB)  # kept free under the budget (allocator slack)
    margin_share: float = 0.02  # plus this share of the budget

    def with_(self, **kw: Any) -> Calibration:
        return replace(self, **kw)


DEFAULT_CALIBRATION = Calibration()
#: What the planner uses (the bench replaces it by the calibration it measured in the same run).
CALIBRATION = DEFAULT_CALIBRATION
#: Block streaming: off until measured on a GPU (bench/train_gpu.py's ``8gb-stream`` row).
STREAMING = False


@dataclass(frozen=True)
class BlockInfo:
    """One transformer block as the planner sees it."""

    name: str  # "layers.3", "noise_refiner.0", ...
    tokens: int  # sequence length through the block (padded)
    bf16_bytes: int  # its quantisable base Linear weights in bf16
    fp8_bytes: int  # the same in fp8 + block scales
    fixed_bytes: int = 0  # norms, adaLN: always resident, never streamed


@dataclass(frozen=True)
class PlanInput:
    blocks: tuple[BlockInfo, ...]  # forward order
    dim: int
    other_bytes: int  # resident weights outside the blocks' base Linears (embedders, …)
    lora_bytes: int  # LoRA weights + grads + optimizer state
    budget: int | None  # bytes this run may use; None = unlimited
    allow_fp8: bool = False
    allow_stream: bool = False
    all_fp8: bool = False  # the user asked for fp8 everywhere
    checkpoint: str = "auto"  # auto | full | off
    fixed_fp8: frozenset[str] = frozenset()  # already fp8 (set up earlier)
    fixed_stream: frozenset[str] = frozenset()  # already streamed


@dataclass(frozen=True)
class Plan:
    checkpointed: frozenset[str]
    fp8: frozenset[str]
    streamed: frozenset[str]
    peak: int  # predicted peak bytes
    step_s: float  # predicted seconds per step
    fits: bool
    budget: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def summary(self, total_blocks: int) -> str:
        parts = [f"checkpointing {len(self.checkpointed)}/{total_blocks} blocks"]
        if self.fp8:
            parts.append(f"fp8 {len(self.fp8)}/{total_blocks}")
        if self.streamed:
            parts.append(f"{len(self.streamed)} streamed from RAM")
        parts.append(f"predicted peak {self.peak / GiB:.2f} GiB")
        return ", ".join(parts)


def fp8_bytes(out_features: int, in_features: int) -> int:
    """Bytes of one Linear's weight in fp8 with one bf16 scale per 64 inputs (per row else)."""
    blocks = in_features // 64 if in_features % 64 == 0 else 1
    return out_features * in_features + out_features * blocks * 2


def lora_state_bytes(params: int, optimizer: str) -> int:
    """fp32 LoRA weights + grads + optimizer moments (two fp32, or two bytes for 8-bit AdamW)."""
    return params * (4 + 4 + (2 if optimizer == "adamw8bit" else 8))


def _weights(b: BlockInfo, fp8: bool) -> int:
    return b.fp8_bytes if fp8 else b.bf16_bytes


def predict_peak(
    inp: PlanInput,
    ckpt: Iterable[str],
    fp8: Iterable[str],
    streamed: Iterable[str],
    cal: Calibration | None = None,
) -> int:
    """Predicted peak allocated bytes of one training step under this plan."""
    cal = cal or CALIBRATION
    ckpt, fp8, streamed = set(ckpt), set(fp8), set(streamed)
    d = inp.dim
    resident = inp.other_bytes + inp.lora_bytes + cal.overhead
    flight = 0
    for b in inp.blocks:
        resident += b.fixed_bytes
        w = _weights(b, b.name in fp8)
        if b.name in streamed:
            flight = max(flight, w)
        else:
            resident += w
    if streamed:
        resident += flight * 2  # the block in use + the one being copied (depth 1 ahead)
    saved = []
    for b in inp.blocks:
        act = cal.act_fp8 if b.name in fp8 else cal.act
        keep = (cal.ckpt_input if b.name in ckpt else act) * b.tokens * d
        if b.name in fp8 and b.name not in ckpt and cal.fp8_saves_dequant:
            keep += b.bf16_bytes
        saved.append(keep)
    peak = resident + sum(saved)
    before = 0.0
    prefix = []
    for s in saved:
        prefix.append(before)
        before += s
    for b, s, pre in zip(inp.blocks, saved, prefix, strict=True):
        if b.name in ckpt:
            act = cal.act_fp8 if b.name in fp8 else cal.act
            peak = max(peak, resident + pre + s + (act + cal.recompute) * b.tokens * d)
    return int(peak)


def predict_step(
    inp: PlanInput,
    ckpt: Iterable[str],
    fp8: Iterable[str],
    streamed: Iterable[str],
    cal: Calibration | None = None,
) -> float:
    """Predicted seconds per step (the calibration card's speed)."""
    cal = cal or CALIBRATION
    ckpt, fp8, streamed = set(ckpt), set(fp8), set(streamed)
    total_tokens = sum(b.tokens for b in inp.blocks)
    t = cal.step_s * total_tokens / cal.ref_token_sum
    t += sum(cal.ckpt_s * b.tokens / cal.ref_tokens for b in inp.blocks if b.name in ckpt)
    t += cal.fp8_s * len(fp8)
    if streamed:
        moved = sum(_weights(b, b.name in fp8) for b in inp.blocks if b.name in streamed)
        copy = moved / cal.h2d_bytes_per_s  # once in the forward, once in the backward
        fwd = t * cal.forward_share
        t += max(0.0, copy - 0.9 * fwd) + max(0.0, copy - 0.9 * (t - fwd))
    return t


def _limit(inp: PlanInput, cal: Calibration) -> int | None:
    if inp.budget is None:
        return None
    return int(inp.budget - cal.margin - cal.margin_share * inp.budget)


def plan_memory(inp: PlanInput, cal: Calibration | None = None) -> Plan:
    """The fastest predicted plan that fits ``inp.budget`` (greedy; see the module text)."""
    cal = cal or CALIBRATION
    names = [b.name for b in inp.blocks]
    fp8 = set(names) if inp.all_fp8 else set(inp.fixed_fp8)
    streamed = set(inp.fixed_stream)
    if inp.checkpoint == "full":
        ckpt = set(names)
    else:
        ckpt = set(streamed)
    limit = _limit(inp, cal)
    notes: list[str] = []

    def cost(c: set[str], f: set[str], s: set[str]) -> tuple[int, float]:
        return predict_peak(inp, c, f, s, cal), predict_step(inp, c, f, s, cal)

    peak, step = cost(ckpt, fp8, streamed)
    allow_fp8 = inp.allow_fp8
    if allow_fp8 and limit is not None:
        # fp8 where needed makes a bf16 run faster; it does not squeeze a bf16 run onto a card
        # where bf16 cannot fit even with every block checkpointed (that is the fp8 tiers' job)
        allow_fp8 = predict_peak(inp, names, inp.fixed_fp8, inp.fixed_stream, cal) <= limit
        if not allow_fp8:
            notes.append("bf16 does not fit even with every block checkpointed: no fp8 fallback")
    if limit is not None and inp.checkpoint == "auto":
        while peak > limit:
            best: tuple[float, set[str], set[str], set[str], int, float] | None = None
            # candidates: the next few blocks of each kind of change (one block may save
            # nothing when another block's backward sets the peak: then try more at once)
            kinds: list[tuple[str, list[str]]] = [
                ("ckpt", [n for n in _order(inp.blocks) if n not in ckpt])
            ]
            if allow_fp8:
                kinds.append(("fp8", [n for n in _order(inp.blocks) if n not in fp8]))
            if inp.allow_stream and STREAMING:
                kinds.append(
                    ("stream", [n for n in _stream_order(inp.blocks) if n not in streamed])
                )
            for kind, more in kinds:
                for k in range(1, len(more) + 1):
                    add = set(more[:k])
                    if kind == "ckpt":
                        c, f, s = ckpt | add, fp8, streamed
                    elif kind == "fp8":
                        c, f, s = ckpt, fp8 | add, streamed
                    else:
                        c, f, s = ckpt | add, fp8, streamed | add
                    p, t = cost(c, f, s)
                    saved = peak - p
                    if saved <= 0:
                        continue
                    ratio = (t - step) / saved
                    if best is None or ratio < best[0]:
                        best = (ratio, c, f, s, p, t)
                    break
            if best is None:
                notes.append("nothing more to save: the plan does not fit the budget")
                break
            _, ckpt, fp8, streamed, peak, step = best
    fits = limit is None or peak <= limit
    return Plan(
        checkpointed=frozenset(ckpt),
        fp8=frozenset(fp8),
        streamed=frozenset(streamed),
        peak=peak,
        step_s=step,
        fits=fits,
        budget=inp.budget,
        notes=tuple(notes),
    )


def _order(blocks: Sequence[BlockInfo]) -> list[str]:
    """Checkpoint / fp8 order: the main layers first (front to back: their saved activations
    live longest), then the refiners."""
    layers = [b.name for b in blocks if b.name.startswith("layers.")]
    rest = [b.name for b in blocks if not b.name.startswith("layers.")]
    return layers + rest


def _stream_order(blocks: Sequence[BlockInfo]) -> list[str]:
    """Stream every other main layer first (a resident block between two streamed ones gives
    the copy engine time), then the rest, then the refiners."""
    layers = [b.name for b in blocks if b.name.startswith("layers.")]
    rest = [b.name for b in blocks if not b.name.startswith("layers.")]
    return layers[::2] + layers[1::2] + rest


# -- the full-size Z-Image DiT without torch (the wizard's estimate) ----------------------------

#: Bytes of one block's quantisable base Linears (bf16, fp8 + scales), from the model skeleton.
ZIMAGE_BLOCK_BYTES = (353_894_400, 182_476_800)
#: Resident bytes of a block outside those Linears (norms; adaLN where the block has it).
ZIMAGE_FIXED_BYTES = {"noise_refiner": 7_926_272, "context_refiner": 31_232, "layers": 7_926_272}
ZIMAGE_GROUPS = (("noise_refiner", 2), ("context_refiner", 2), ("layers", 30))  # forward order
ZIMAGE_OTHER_BYTES = 23_704_704  # embedders, final layer, pad tokens
ZIMAGE_DIM = 3840


def zimage_input(
    image_tokens: int,
    caption_tokens: int,
    lora_params: int,
    optimizer: str,
    budget: int | None,
    **kw: Any,
) -> PlanInput:
    """:class:`PlanInput` of the full-size Z-Image DiT (what ``streaming.plan_input`` reads off
    the real model; tests/train/test_memplan.py checks they agree)."""
    cap = -(-caption_tokens // 32) * 32
    img = -(-image_tokens // 32) * 32
    tokens = {"context_refiner": cap, "noise_refiner": img, "layers": img + cap}
    bf16, fp8 = ZIMAGE_BLOCK_BYTES
    blocks = tuple(
        BlockInfo(f"{g}.{i}", tokens[g], bf16, fp8, ZIMAGE_FIXED_BYTES[g])
        for g, n in ZIMAGE_GROUPS
        for i in range(n)
    )
    return PlanInput(
        blocks=blocks,
        dim=ZIMAGE_DIM,
        other_bytes=ZIMAGE_OTHER_BYTES,
        lora_bytes=lora_state_bytes(lora_params, optimizer),
        budget=budget,
        **kw,
    )
