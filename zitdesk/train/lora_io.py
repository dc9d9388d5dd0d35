"""Writing the trained LoRA: ComfyUI/ai-toolkit layout (primary), kohya layout (export), metadata.

Primary file (engine notes §8): keys ``diffusion_model.<diffusers module>.lora_A.weight``
(rank × in) and ``.lora_B.weight`` (out × rank), bf16, **no** ``.alpha``: alpha/rank is baked
into ``lora_B``, so every loader that assumes alpha = rank (ComfyUI, diffusers, ai-toolkit,
zitdesk) applies exactly the trained ΔW = (alpha/rank)·B·A.

Kohya export: ``lora_unet_<module with _>.lora_down.weight`` / ``.lora_up.weight`` plus
``.alpha`` = rank (the same baked factors, so alpha/rank = 1).

Metadata makes the file self-describing: ``ss_*`` keys for kohya-era tools, ``modelspec.*``,
and ``zitdesk_*`` keys including the full recipe (the training config as JSON).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zitdesk import __version__
from zitdesk.io import atomic_save_tensors
from zitdesk.train.config import TrainConfig

COMFY_PREFIX = "diffusion_model."


def baked_pairs(
    pairs: Mapping[str, tuple[Any, Any]], rank: int, alpha: float, dtype: Any = None
) -> dict[str, tuple[Any, Any]]:
    """``{module: (A, B·alpha/rank)}`` as contiguous CPU tensors in ``dtype`` (default bf16)."""
    import torch

    dtype = dtype or torch.bfloat16
    scale = float(alpha) / float(rank)
    out = {}
    for m, (a, b) in pairs.items():
        a32 = a.detach().float().cpu()
        b32 = b.detach().float().cpu() * scale
        out[m] = (a32.to(dtype).contiguous(), b32.to(dtype).contiguous())
    return out


def comfy_state_dict(baked: Mapping[str, tuple[Any, Any]]) -> dict[str, Any]:
    sd = {}
    for m, (a, b) in baked.items():
        sd[f"{COMFY_PREFIX}{m}.lora_A.weight"] = a
        sd[f"{COMFY_PREFIX}{m}.lora_B.weight"] = b
    return sd


def kohya_name(module: str) -> str:
    return "lora_unet_" + module.replace(".", "_")


def kohya_state_dict(baked: Mapping[str, tuple[Any, Any]]) -> dict[str, Any]:
    import torch

    sd = {}
    for m, (a, b) in baked.items():
        k = kohya_name(m)
        sd[f"{k}.lora_down.weight"] = a
        sd[f"{k}.lora_up.weight"] = b
        sd[f"{k}.alpha"] = torch.tensor(float(a.shape[0]), dtype=a.dtype)
    return sd


GENERIC_NAMES = frozenset({"lora", "model", "output", "untitled", "last", "final", "my_lora"})


def lora_title(cfg: TrainConfig, dataset_name: str = "") -> str:
    """``modelspec.title`` of a trained file: the save name unless it is the generic default
    ("lora"), else the run's output folder name, else the dataset folder name."""
    name = cfg.save.name.strip()
    if name and name.lower() not in GENERIC_NAMES:
        return name
    run = Path(cfg.save.output_dir).name if cfg.save.output_dir else ""
    return run or dataset_name.strip() or name


def build_metadata(
    cfg: TrainConfig,
    *,
    step: int,
    epoch: int,
    base_precision: str,
    resolution: tuple[int, int],
    tag_freq: Mapping[str, int],
    dataset_name: str,
    adapter_name: str = "",
    adapter_sha256: str = "",
    base_model: str = "",
    n_images: int = 0,
    lora_format: str = "comfy",
) -> dict[str, str]:
    """String metadata for the saved file (engine notes §8)."""
    lo, o, t = cfg.lora, cfg.optim, cfg.timesteps
    trigger = cfg.data.trigger.strip()
    meta: dict[str, str] = {
        "format": "pt",
        "ss_base_model_version": "zimage",
        "zitdesk_base_variant": cfg.model.variant,
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "Z-Image/lora",
        "modelspec.implementation": "https://github.com/Tongyi-MAI/Z-Image",
        "modelspec.title": lora_title(cfg, dataset_name),
        "modelspec.resolution": f"{resolution[0]}x{resolution[1]}",
        "ss_network_module": "networks.lora" if lora_format == "kohya" else "diffusers.lora",
        "ss_network_dim": str(lo.rank),
        "ss_network_alpha": str(float(lo.rank)),  # alpha/rank is baked into lora_B
        "ss_network_args": json.dumps(
            {
                "trained_alpha": lo.alpha,
                "targets": list(lo.targets),
                "include_refiners": lo.include_refiners,
            }
        ),
        "ss_learning_rate": repr(o.learning_rate),
        "ss_lr_scheduler": o.schedule,
        "ss_lr_warmup_steps": str(o.warmup_steps),
        "ss_optimizer": o.optimizer,
        "ss_steps": str(step),
        "ss_max_train_steps": str(o.steps),
        "ss_epoch": str(epoch),
        "ss_batch_size_per_device": str(o.batch_size),
        "ss_gradient_accumulation_steps": str(o.grad_accum),
        "ss_seed": str(o.seed),
        "ss_resolution": json.dumps(list(cfg.data.resolutions)),
        "ss_num_train_images": str(n_images),
        "ss_caption_dropout_rate": str(cfg.data.caption_dropout),
        "ss_timestep_sampling": t.mode,
        "ss_discrete_flow_shift": str(t.shift),
        "ss_tag_frequency": json.dumps({dataset_name: dict(tag_freq)}, ensure_ascii=False),
        "ss_output_name": cfg.save.name,
        "ss_training_comment": "trained with zitdesk",
        "training_info": json.dumps({"step": step, "epoch": epoch}),
        "zitdesk_version": __version__,
        "zitdesk_base_precision": base_precision,
        "zitdesk_base_model": base_model,
        "zitdesk_training_adapter": json.dumps(
            {"file": adapter_name, "sha256": adapter_sha256} if adapter_name else {}
        ),
        "zitdesk_recipe": json.dumps(cfg.to_dict(), ensure_ascii=False),
    }
    if trigger:
        meta["modelspec.trigger_phrase"] = trigger
        meta["ss_trigger_words"] = json.dumps([trigger], ensure_ascii=False)
    return meta


def save_lora(path: str | Path, state_dict: Mapping[str, Any], metadata: Mapping[str, str]) -> Path:
    """Write a safetensors LoRA atomically (temp file, fsync, rename; the normal file mode)."""
    sd = {k: v.contiguous() for k, v in state_dict.items()}
    return atomic_save_tensors(path, sd, metadata=dict(metadata))
