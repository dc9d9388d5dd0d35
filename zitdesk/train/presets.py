"""VRAM presets: resolution, base precision, checkpointing, compile and offload per GPU tier.

Numbers behind the tiers (engine notes §12, full-size model, LoRA r32 attention + FFN, 1024²):
bf16 with checkpointing peaks at 15.2 GiB (50.6 GiB without); fp8 storage at 9.5 GiB with no
speed loss under a 12 GiB cap; fp8 at 768² does not fit 8 GiB, so the 8 GB tier uses 4-bit
weights and ≤ 768 px. A preset only sets memory-related fields; data, LoRA and schedule stay.

Offload is the same in every tier: the text encoder runs once to fill the caption cache (on the
GPU if it fits, else streamed block by block from RAM) and is then freed; the VAE waits in RAM
during the training loop and visits the GPU only to encode the dataset and decode samples.

The 24/16/12 GB tiers use the memory planner (:mod:`zitdesk.train.memplan`, ``auto``
checkpointing): within the tier's budget, only as many blocks are checkpointed as the calibrated
memory model needs; under the ``24gb`` tier's ``auto`` precision, blocks are also held in fp8
where that is cheaper than checkpointing them (fp8 only where needed).

* ``24gb`` (24 GB and more, the default on big cards): bf16 (fp8 where needed), 512/768/1024
  buckets, compiled blocks; on an 80 GB card nothing is checkpointed or quantised.
* ``16gb``: fp8 base, 512/768/1024, a 16 GiB budget, compiled blocks.
* ``12gb``: fp8 base, 512/768, a 12 GiB budget, 8-bit AdamW, compiled blocks, tiled VAE.
* ``8gb``: NF4 base (bitsandbytes), 512/768, full checkpointing, 8-bit AdamW, tiled VAE,
  768 px samples. The candidate replacement (fp8 blocks streamed from pinned RAM by the
  planner, ``memplan.STREAMING``) is off until measured (bench/train_gpu.py ``8gb-stream``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zitdesk.errors import RequestError
from zitdesk.train.config import TrainConfig


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    vram_gb: int
    description: str
    changes: dict[str, dict[str, Any]]


PRESETS: dict[str, Preset] = {
    "24gb": Preset(
        "24gb",
        "24 GB and more",
        24,
        "bf16 weights, up to 1024 px, checkpointing (and fp8) only where memory needs it, compiled",
        {
            "model": {"base_precision": "auto"},
            "data": {"resolutions": (512, 768, 1024)},
            "optim": {"optimizer": "adamw"},
            "memory": {
                "preset": "24gb",
                "gradient_checkpointing": "auto",
                "compile": True,
                "vram_budget_gb": 0.0,
                "offload_vae": True,
            },
            "sample": {"vae_tiling": False},
        },
    ),
    "16gb": Preset(
        "16gb",
        "16 GB",
        16,
        "fp8 weights, up to 1024 px, checkpointing only where memory needs it, compiled",
        {
            "model": {"base_precision": "fp8"},
            "data": {"resolutions": (512, 768, 1024)},
            "optim": {"optimizer": "adamw"},
            "memory": {
                "preset": "16gb",
                "gradient_checkpointing": "auto",
                "compile": True,
                "vram_budget_gb": 16.0,
                "offload_vae": True,
            },
            "sample": {"vae_tiling": False},
        },
    ),
    "12gb": Preset(
        "12gb",
        "12 GB",
        12,
        "fp8 weights, up to 768 px, checkpointing where memory needs it, 8-bit AdamW, compiled",
        {
            "model": {"base_precision": "fp8"},
            "data": {"resolutions": (512, 768)},
            "optim": {"optimizer": "adamw8bit"},
            "memory": {
                "preset": "12gb",
                "gradient_checkpointing": "auto",
                "compile": True,
                "vram_budget_gb": 12.0,
                "offload_vae": True,
            },
            "sample": {"vae_tiling": True},
        },
    ),
    "8gb": Preset(
        "8gb",
        "8 GB",
        8,
        "4-bit (NF4) weights, up to 768 px, full checkpointing, 8-bit AdamW",
        {
            "model": {"base_precision": "nf4"},
            "data": {"resolutions": (512, 768)},
            "optim": {"optimizer": "adamw8bit"},
            "memory": {
                "preset": "8gb",
                "gradient_checkpointing": "full",
                "compile": False,
                "vram_budget_gb": 8.0,
                "offload_vae": True,
            },
            "sample": {"vae_tiling": True, "width": 768, "height": 768},
        },
    ),
}

DEFAULT_PRESET = "24gb"
#: One tier down: the advice after an out-of-memory failure.
LOWER: dict[str, str | None] = {"24gb": "16gb", "16gb": "12gb", "12gb": "8gb", "8gb": None}


def apply_preset(cfg: TrainConfig, name: str) -> TrainConfig:
    """``cfg`` with the memory-related fields of preset ``name``."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise RequestError(
            f"Unknown VRAM preset {name!r}; use one of {', '.join(PRESETS)}."
        ) from None
    return cfg.with_changes(**preset.changes)


def preset_for_vram(total_gb: float) -> str:
    """The largest tier that fits a card with ``total_gb`` of memory (8 GB below that)."""
    for name in ("24gb", "16gb", "12gb"):
        if total_gb >= PRESETS[name].vram_gb - 0.5:
            return name
    return "8gb"


def lower_preset(cfg: TrainConfig) -> str | None:
    """The tier below the config's (by preset name, else guessed from its precision)."""
    name = cfg.memory.preset
    if name not in PRESETS:
        name = {"bf16": "24gb", "auto": "24gb", "fp32": "24gb", "fp8": "16gb", "nf4": "8gb"}.get(
            cfg.model.base_precision, "24gb"
        )
    return LOWER.get(name)
