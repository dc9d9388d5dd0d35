"""``zitdesk generate``'s variant options: ``--variant``, ``--variety``, ``--cfg-normalization``.

Steps, guidance and shift left out on the command line take the model's variant defaults
(:mod:`zitdesk.models.variants`: Turbo 8 / 0 / 3, Base 28 / 4 / 6, De-Turbo 25 / 2.5 / 3); the
variant is ``--variant``, else the user's remembered choice for the model, else what its files
and names say, else Turbo.
"""

from __future__ import annotations

import argparse
from typing import Any

from zitdesk.models.variants import VARIANTS


def add_variant_args(g: Any) -> None:
    g.add_argument(
        "--variant",
        choices=VARIANTS,
        default=None,
        help="which Z-Image the model is (default: detected; sets the step/guidance/shift defaults)",
    )
    g.add_argument(
        "--variety",
        type=float,
        default=0.0,
        help="seeded noise on the prompt embedding, 0-1 (Turbo: more different seeds)",
    )
    g.add_argument(
        "--cfg-normalization",
        action="store_true",
        help="cap the guided prediction at the prompt's own strength (with --guidance > 0)",
    )


def apply_variant_args(args: argparse.Namespace) -> dict[str, Any]:
    """Fill ``args.steps/guidance/shift`` left as None from the variant's defaults; returns the
    request fields ``variant``, ``variety``, ``cfg_normalization``."""
    from zitdesk.models.variants import TURBO, defaults_for, detect_path_variant

    variant = getattr(args, "variant", None)
    if not variant:
        model = getattr(args, "model", None) or ""
        variant = TURBO
        if model:
            from zitdesk.settings import load_settings

            variant = detect_path_variant(model, load_settings()[0].model_variants).variant
    d = defaults_for(variant)
    for name, value in (("steps", d.steps), ("guidance", d.guidance), ("shift", d.shift)):
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    return {
        "variant": variant,
        "variety": float(getattr(args, "variety", 0.0) or 0.0),
        "cfg_normalization": bool(getattr(args, "cfg_normalization", False)),
    }


def lora_notes(paths: list[str], variant: str) -> list[str]:
    """The note for each LoRA trained on another variant than ``variant`` (headers only)."""
    from pathlib import Path

    from zitdesk.models.variants import lora_variant, variant_note
    from zitdesk.st_header import read_header

    notes = []
    for path in paths:
        try:
            guess = lora_variant(read_header(path).metadata)
        except Exception:  # noqa: BLE001 - the engine reports unreadable LoRAs itself
            continue
        text = variant_note(guess, variant, Path(path).name)
        if text:
            notes.append(text)
    return notes
