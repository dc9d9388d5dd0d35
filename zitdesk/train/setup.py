"""Turn a loaded transformer into a trainable one: adapters, base precision, placement.

:func:`prepare_transformer` is shared by the trainer job and ``bench/train_gpu.py`` (so the
benchmark measures the trainer's real model setup). Order matters:

1. freeze the base; inject the user LoRA (seeded init, fp32 master weights);
2. load the training adapter, if any, as the frozen ``ASSISTANT`` PEFT adapter;
3. per base Linear, on the device: merge the adapter (merge mode) and quantise (fp8/NF4), then
   move the rest of the model — the GPU never holds the full bf16 model next to the quantised one;
4. activate the training adapters (user 1, assistant 1 in side mode).

Adapter modes (``model.adapter_mode = auto``): **side** for float bases (exactly removable for
samples), **merge** for fp8/NF4 bases (ai-toolkit's way: merged before quantising, and a −1 side
branch switched on for samples).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zitdesk.hashing import sha256_file
from zitdesk.train import adapters as ad
from zitdesk.train.config import TrainConfig
from zitdesk.train.dataset import derive_seed


@dataclass
class Prepared:
    base_precision: str  # bf16 | fp32 | fp8 | nf4 (metadata label)
    adapter_mode: str = ""  # side | merge | "" (no adapter)
    adapter_name: str = ""
    adapter_sha256: str = ""
    adapter_message: str = ""  # "adapter.safetensors: 240/240 modules (side branch)"
    train_scales: dict[str, float] = field(default_factory=dict)
    sample_scales: dict[str, float] = field(default_factory=dict)
    lora_modules: int = 0
    plan: Any = None  # memplan.Plan chosen before placement (auto checkpointing on CUDA)
    model_ref: Any = None  # weakref to the transformer (base_altered reads its latest plan)


#: Caption tokens assumed by the set-up plan when the caller does not know them yet.
PLAN_CAPTION_TOKENS = 256


def planning(cfg: TrainConfig, device: str, tr: Any = None) -> bool:
    """Whether the memory planner chooses checkpointing / fp8 / streaming for this run (not
    for a base that stays packed, #17)."""
    if not (
        device.startswith("cuda")
        and cfg.memory.gradient_checkpointing == "auto"
        and cfg.model.base_precision in ("auto", "bf16", "fp8")
    ):
        return False
    if tr is not None:
        from zitdesk.models.quant.packed import packed_base_label

        return not packed_base_label(tr)
    return True


def planner_input(
    tr: Any, cfg: TrainConfig, device: str, image_tokens: int, caption_tokens: int
) -> Any:
    """The planner's input for ``tr`` under ``cfg`` (CUDA; weights anywhere)."""
    from zitdesk.train.precision import FP8_DTYPES
    from zitdesk.train.streaming import (
        block_base_linears,
        device_budget,
        forward_blocks,
        plan_input,
    )

    prec = cfg.model.base_precision
    fp8_now = frozenset(
        n
        for n, blk in forward_blocks(tr)
        if any(m.weight.dtype in FP8_DTYPES for m in block_base_linears(blk))
    )
    prior = getattr(tr, "_zitdesk_plan", None)
    return plan_input(
        tr,
        image_tokens,
        caption_tokens,
        cfg.optim.optimizer,
        device_budget(tr, device, cfg.memory.vram_budget_gb),
        allow_fp8=prec == "auto",
        allow_stream=True,
        all_fp8=prec == "fp8",
        fixed_fp8=fp8_now,
        fixed_stream=frozenset(prior.streamed) if prior is not None else frozenset(),
    )


def choose_plan(inp: Any, device: str) -> Any:
    """:func:`memplan.plan_memory`; when it streams, again with this machine's measured
    host → device speed."""
    from zitdesk.train import memplan

    plan = memplan.plan_memory(inp)
    if plan.streamed:
        from zitdesk.train.streaming import measure_h2d

        cal = memplan.CALIBRATION.with_(h2d_bytes_per_s=measure_h2d(device))
        plan = memplan.plan_memory(inp, cal)
    return plan


def base_altered(obj: Any) -> bool:
    """True when set-up changed base weights in a way generation must not inherit (fp8 blocks
    chosen by the planner, weights streamed from RAM). ``obj``: the transformer or its
    :class:`Prepared`."""
    if isinstance(obj, Prepared):
        tr = obj.model_ref() if obj.model_ref is not None else None
        plan = getattr(tr, "_zitdesk_plan", None) if tr is not None else obj.plan
    else:
        plan = getattr(obj, "_zitdesk_plan", None)
    return plan is not None and bool(plan.fp8 or plan.streamed)


def prepare_transformer(
    tr: Any, cfg: TrainConfig, device: str, tokens: tuple[int, int] | None = None
) -> Prepared:
    """Set up ``tr`` (weights anywhere, usually the CPU) for training ``cfg`` on ``device``.

    ``tokens``: (image, caption) tokens of the largest bucket, for the memory plan (default:
    the largest resolution, square, and :data:`PLAN_CAPTION_TOKENS`)."""
    from zitdesk.train.precision import base_dtype_label, prepare_base

    tr.requires_grad_(False)
    compute_dtype = tr.dtype
    prec = cfg.model.base_precision if cfg.model.base_precision != "auto" else "bf16"
    quant = prec in ("fp8", "nf4")
    from zitdesk.models.quant.packed import packed_base_label

    packed = packed_base_label(tr)  # a GGUF / scaled-fp8 / nvfp4 file stays packed (#17)
    if packed:
        prec, quant = "", False
    mode = cfg.model.adapter_mode
    if mode == "auto" or packed:
        mode = "merge" if quant else "side"
    out = Prepared(base_precision=base_dtype_label(prec if quant else "", compute_dtype))
    if packed:
        out.base_precision = packed
    out.model_ref = weakref.ref(tr)
    adapter_sd: dict[str, Any] | None = None
    if cfg.model.training_adapter:
        from zitdesk.lora.apply import load_normalized, transformer_linear_shapes

        path = Path(cfg.model.training_adapter).expanduser()
        adapter_sd, report = load_normalized(path, transformer_linear_shapes(tr))
        out.adapter_mode, out.adapter_name, out.adapter_sha256 = mode, path.name, sha256_file(path)
        how = "merged into the base" if mode == "merge" else "side branch"
        out.adapter_message = f"{path.name}: {report.matched}/{report.total} modules ({how})"
    out.lora_modules = ad.add_user_adapter(
        tr,
        cfg.lora.rank,
        cfg.lora.alpha,
        cfg.lora.targets,
        cfg.lora.include_refiners,
        derive_seed("lora-init", cfg.optim.seed),
    )
    merge_pairs: dict[str, tuple[Any, Any]] = {}
    if adapter_sd is not None:
        ad.add_assistant(tr, adapter_sd, compute_dtype)
        if mode == "merge":
            for k, a in adapter_sd.items():
                if k.endswith(".lora_A.weight"):
                    m = k[len("transformer.") : -len(".lora_A.weight")]
                    merge_pairs[m] = (a, adapter_sd[k.replace(".lora_A.", ".lora_B.")])
    if adapter_sd is not None and mode == "side":
        out.train_scales = {ad.USER: 1.0, ad.ASSISTANT: 1.0}
        out.sample_scales = {ad.USER: 1.0}
    elif adapter_sd is not None:
        out.train_scales = {ad.USER: 1.0}
        out.sample_scales = {ad.USER: 1.0, ad.ASSISTANT: -1.0}
    else:
        out.train_scales = out.sample_scales = {ad.USER: 1.0}
    blocks = keep_off = None
    if planning(cfg, device) and not packed:
        if tokens is None:
            side = max(cfg.data.resolutions)
            tokens = ((side // 16) ** 2, PLAN_CAPTION_TOKENS)
        out.plan = choose_plan(planner_input(tr, cfg, device, *tokens), device)
        tr._zitdesk_plan = out.plan
        keep_off = set(out.plan.streamed)
        if out.plan.fp8 and not quant:  # auto: fp8 only for the blocks the budget needs
            prec, quant, blocks = "fp8", True, set(out.plan.fp8)
            n = len(list(block_lists_names(tr)))
            out.base_precision = "fp8" if len(blocks) == n else f"bf16+fp8 ({len(blocks)}/{n})"
    prepare_base(
        tr,
        prec if quant else "",
        device,
        compute_dtype,
        merge=merge_pairs,
        blocks=blocks,
        keep_off=keep_off,
    )
    ad.set_active(tr, out.train_scales)
    return out


def block_lists_names(tr: Any) -> list[str]:
    from zitdesk.train.streaming import forward_blocks

    return [n for n, _ in forward_blocks(tr)]
