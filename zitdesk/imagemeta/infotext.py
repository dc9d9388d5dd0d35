"""Reading an A1111/Forge infotext: the settings line, prompt/negative split, LoRA tags."""

from __future__ import annotations

import json
import re
from typing import Any

from zitdesk.imagemeta._values import _as_float, _as_int, _as_str, _guidance_from_cfg, _loads
from zitdesk.imagemeta.a1111 import _MAPPED_KEYS

_KEY_RE = re.compile(r"\s*(\w[\w \-/]*+):")  # possessive: linear time on hostile input
_SIZE_RE = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*$")
_LORA_TAG_RE = re.compile(r"<(lora|lyco):([^:<>]+)((?::[^:<>]*)*)>", re.IGNORECASE)
_SETTINGS_MARKERS = ("Steps", "Sampler", "Seed", "CFG scale", "Size")
_json_decoder = json.JSONDecoder()


def parse_settings_line(line: str) -> list[tuple[str, str]]:
    """Split an A1111 settings line into ``(key, value)`` pairs (quoted values unquoted).

    Follows A1111's ``key: value, key: "quoted, value"`` rules in one linear pass (no regex
    backtracking on hostile input); a value starting with ``{`` or ``[`` that is valid JSON
    (Civitai's ``Hashes: {...}``) is taken whole.
    """
    pairs: list[tuple[str, str]] = []
    pos, end = 0, len(line)
    while pos < end:
        match = _KEY_RE.match(line, pos)
        if match is None:
            comma = line.find(",", pos)
            if comma < 0:
                break
            pos = comma + 1
            continue
        key = match.group(1).strip()
        pos = match.end()
        while pos < end and line[pos] in " \t":
            pos += 1
        value: str | None = None
        if pos < end and line[pos] in '"{[':
            try:
                parsed, stop = _json_decoder.raw_decode(line, pos)
            except (ValueError, RecursionError):
                parsed, stop = None, -1
            if stop > 0:
                after = stop
                while after < end and line[after] in " \t":
                    after += 1
                if after >= end or line[after] == ",":
                    value = parsed if isinstance(parsed, str) else line[pos:stop]
                    pos = after + 1
        if value is None:
            comma = line.find(",", pos)
            stop = end if comma < 0 else comma
            value = line[pos:stop].strip()
            pos = stop + 1
        pairs.append((key, value))
    return pairs


def _is_settings_line(pairs: list[tuple[str, str]]) -> bool:
    keys = {k for k, _ in pairs}
    return len(pairs) >= 3 and any(marker in keys for marker in _SETTINGS_MARKERS)


def split_infotext(text: str) -> tuple[str, str, list[tuple[str, str]], list[str]]:
    """``(prompt, negative_prompt, settings pairs, trailing lines)`` of an A1111 infotext.

    The settings line is the last line that looks like one (at least three ``key: value`` pairs,
    one of them Steps/Sampler/Seed/CFG scale/Size); lines after it (dynamic-prompts'
    ``Template:`` lines, for instance) are returned separately.
    """
    lines = text.strip().replace("\r\n", "\n").replace("\r", "\n").split("\n")
    settings: list[tuple[str, str]] = []
    trailing: list[str] = []
    for index in range(len(lines) - 1, -1, -1):
        if "Negative prompt:" in lines[index][:20]:
            break
        pairs = parse_settings_line(lines[index])
        if _is_settings_line(pairs):
            settings = pairs
            trailing = lines[index + 1 :]
            lines = lines[:index]
            break
    prompt_lines: list[str] = []
    negative_lines: list[str] = []
    in_negative = False
    for line in lines:
        line = line.strip()
        if not in_negative and line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative_lines if in_negative else prompt_lines).append(line)
    return "\n".join(prompt_lines), "\n".join(negative_lines), settings, trailing


def _lora_tags(prompt: str) -> list[tuple[str, float | None]]:
    found = []
    for match in _LORA_TAG_RE.finditer(prompt):
        name = match.group(2).strip()
        weight: float | None = 1.0
        for arg in [a for a in match.group(3).split(":") if a]:
            if "=" in arg:
                label, _, val = arg.partition("=")
                if label.strip() in ("te", "unet"):
                    weight = _as_float(val)
                    if label.strip() == "unet":
                        break
                continue
            weight = _as_float(arg)
            break
        found.append((name, weight))
    return found


def _parse_lora_hashes(value: str) -> dict[str, str]:
    result = {}
    for item in value.split(","):
        name, sep, digest = item.rpartition(":")
        if sep and name.strip() and digest.strip():
            result[name.strip()] = digest.strip()
    return result


# "Variety" and "CFG normalization" are zitdesk's own (zitdesk.engine.variety):
# ImageParameters.request_values reads them from the settings line when no request is embedded.
_A1111_MAPPED = _MAPPED_KEYS | {"Hashes", "Variety", "CFG normalization"}


def _fill_from_infotext(result: dict[str, Any], text: str) -> bool:
    """Fill ``result`` from an infotext; True when it had a settings line."""
    prompt, negative, pairs, trailing = split_infotext(text)
    settings: dict[str, str] = {}
    for key, value in pairs:
        settings[key] = value
    for line in trailing:
        key, sep, value = line.partition(":")
        if sep and key.strip():
            settings.setdefault(key.strip(), value.strip())
    result["prompt"] = prompt
    result["negative_prompt"] = negative
    result["settings"] = settings
    unmapped: list[str] = result["unmapped"]

    def take(key: str, convert):
        if key not in settings:
            return None
        value = convert(settings[key])
        if value is None:
            unmapped.append(key)
        return value

    result["steps"] = take("Steps", _as_int)
    result["sampler"] = take("Sampler", _as_str)
    result["scheduler"] = take("Schedule type", _as_str)
    result["a1111_cfg_scale"] = take("CFG scale", _as_float)
    result["guidance"] = _guidance_from_cfg(result["a1111_cfg_scale"])
    result["seed"] = take("Seed", _as_int)
    result["shift"] = take("Shift", _as_float)
    result["model"] = take("Model", _as_str)
    result["model_hash"] = take("Model hash", _as_str)
    result["version"] = take("Version", _as_str)
    size = take("Size", lambda v: _SIZE_RE.match(v))
    if size:
        result["width"], result["height"] = int(size.group(1)), int(size.group(2))

    hashes = _parse_lora_hashes(settings.get("Lora hashes", ""))
    civitai_hashes: Any = None
    if "Hashes" in settings:
        civitai_hashes, _ = _loads(settings["Hashes"])
        if not isinstance(civitai_hashes, dict):
            unmapped.append("Hashes")
            civitai_hashes = None
    if civitai_hashes:
        for key, digest in civitai_hashes.items():
            if not isinstance(digest, str):
                continue
            if key.startswith("lora:"):
                hashes.setdefault(key[5:], digest)
            elif key == "model" and not result["model_hash"]:
                result["model_hash"] = digest

    loras = []
    seen = set()
    for name, weight in _lora_tags(prompt):
        if name in seen:
            continue
        seen.add(name)
        loras.append({"name": name, "weight": weight, "hash": hashes.get(name, ""), "file": ""})
    for name, digest in hashes.items():
        if name not in seen:
            seen.add(name)
            loras.append({"name": name, "weight": None, "hash": digest, "file": ""})
    result["loras"] = loras
    for key in settings:
        if key not in _A1111_MAPPED and key not in unmapped:
            unmapped.append(key)
    return bool(pairs)
