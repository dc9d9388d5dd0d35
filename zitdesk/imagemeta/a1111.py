"""The A1111/Forge ``parameters`` infotext writer (:func:`a1111_parameters`)."""

from __future__ import annotations

import json
import re
from typing import Any

from zitdesk.hashing import autov2
from zitdesk.imagemeta.types import ImageMeta

# Settings-line keys zitdesk writes and maps back when reading; anything else is "extra".
_MAPPED_KEYS = frozenset(
    {
        "Steps",
        "Sampler",
        "Schedule type",
        "CFG scale",
        "Seed",
        "Size",
        "Model hash",
        "Model",
        "Lora hashes",
        "Shift",
        "Version",
    }
)
_STANDARD_KEYS = _MAPPED_KEYS | {"Negative prompt"}


def _quote(value: Any) -> str:
    """A1111's ``quote``: JSON-quote a value that contains a comma, colon, newline or quote."""
    text = str(value)
    if any(ch in text for ch in ',:\n"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def _fmt_cfg(value: float) -> str:
    return repr(float(round(value, 4)))  # 1.0, 3.5


def _fmt_num(value: float) -> str:
    return f"{float(value):.6g}"  # 3, 2.5


def _short_model_hash(value: str) -> str:
    value = value.strip().lower()
    if re.fullmatch(r"[0-9a-f]{11,}", value):
        return autov2(value)
    return value


def _lora_alias(name: str) -> str:
    # A1111 removes ":" and "," from the alias in "Lora hashes"; a newline would end the line.
    return re.sub(r"[:,\r\n]", "", name).strip()


def _settings_key(key: str) -> str:
    return re.sub(r"[^\w \-/]", "", str(key)).strip()


def a1111_parameters(meta: ImageMeta) -> str:
    """The A1111/Forge ``parameters`` text for ``meta`` (see the module docstring)."""
    settings: list[tuple[str, Any]] = [
        ("Steps", int(meta.steps)),
        ("Sampler", meta.sampler),
        ("Schedule type", meta.schedule),
        ("CFG scale", _fmt_cfg(meta.a1111_cfg_scale)),
        ("Seed", int(meta.seed)),
        ("Size", f"{int(meta.width)}x{int(meta.height)}"),
        ("Model hash", _short_model_hash(meta.model_hash)),
        ("Model", meta.model_name),
    ]
    lora_hashes = [
        f"{_lora_alias(lo.name)}: {lo.short_hash}"
        for lo in meta.loras
        if lo.short_hash and _lora_alias(lo.name)
    ]
    if lora_hashes:
        settings.append(("Lora hashes", ", ".join(lora_hashes)))
    settings.append(("Shift", _fmt_num(meta.shift)))
    for key, value in meta.extra.items():
        clean = _settings_key(key)
        if not clean or not re.match(r"\w", clean) or clean in _STANDARD_KEYS or value is None:
            continue
        settings.append((clean, value))
    version = str(meta.version).strip()
    if version and not version.lower().startswith("zitdesk"):
        version = f"zitdesk {version}"
    settings.append(("Version", version or "zitdesk"))

    line = ", ".join(
        f"{key}: {_quote(value)}" for key, value in settings if value not in (None, "")
    )
    lines = [meta.prompt.strip()]
    if meta.negative_prompt.strip():
        lines.append(f"Negative prompt: {meta.negative_prompt.strip()}")
    lines.append(line)
    return "\n".join(lines).strip()
