"""Small, forgiving value converters shared by the readers (never raise on odd input)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = _as_float(value)
    if number is None or not number.is_integer():
        return None
    return int(number)


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _loads(text: str) -> tuple[Any, bool]:
    """``json.loads`` that reports failure (including absurd nesting) instead of raising."""
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        return None, False


def _file_stem(path: str) -> str:
    name = re.split(r"[\\/]", str(path))[-1]
    stem, dot, ext = name.rpartition(".")
    if dot and stem and ext.lower() in ("safetensors", "ckpt", "pt", "pth", "bin", "gguf", "sft"):
        return stem
    return name


def _guidance_from_cfg(cfg: float | None) -> float | None:
    return None if cfg is None else round(max(cfg - 1.0, 0.0), 6)


def _lookup(chunks: Mapping[str, str], key: str) -> str | None:
    if key in chunks:
        return chunks[key]
    for name, text in chunks.items():
        if name.lower() == key:
            return text
    return None
