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


def prepare_transformer(tr: Any, cfg: TrainConfig, device: str) -> Prepared:
    """Set up ``tr`` (weights anywhere, usually the CPU) for training ``cfg`` on ``device``."""
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
    prepare_base(tr, prec if quant else "", device, compute_dtype, merge=merge_pairs)
    ad.set_active(tr, out.train_scales)
    return out
