"""Reading zitdesk's own ``zitdesk`` JSON chunk (exact values, no infotext parsing)."""

from __future__ import annotations

from typing import Any

from zitdesk.imagemeta._values import _as_float, _as_int, _as_str, _file_stem, _loads
from zitdesk.imagemeta.types import CHUNK_VERSION


def _fill_from_zitdesk(result: dict[str, Any], text: str) -> bool:
    payload, ok = _loads(text)
    if not ok:
        result["warnings"].append("The zitdesk chunk is not valid JSON; read the infotext instead.")
        return False
    meta = payload.get("meta") if isinstance(payload, dict) else None
    if not isinstance(meta, dict):
        result["warnings"].append("The zitdesk chunk has no metadata; read the infotext instead.")
        return False
    if _as_int(payload.get("version")) != CHUNK_VERSION:
        result["warnings"].append(
            f"The zitdesk chunk has format version {payload.get('version')!r}; read it as version 1."
        )
    unmapped: list[str] = result["unmapped"]

    def take(key: str, convert, default=None):
        if key not in meta:
            return default
        value = convert(meta[key])
        if value is None and meta[key] is not None:
            unmapped.append(key)
        return value

    result["prompt"] = take("prompt", _as_str)
    result["negative_prompt"] = take("negative_prompt", _as_str, "")
    result["steps"] = take("steps", _as_int)
    # "guidance" since 0.2; version-1 chunks written before called the same number "cfg_scale".
    guidance = take("guidance" if "guidance" in meta else "cfg_scale", _as_float)
    result["guidance"] = guidance
    result["a1111_cfg_scale"] = None if guidance is None else round(guidance + 1.0, 6)
    result["seed"] = take("seed", _as_int)
    result["width"] = take("width", _as_int)
    result["height"] = take("height", _as_int)
    result["sampler"] = take("sampler", _as_str)
    result["scheduler"] = take("schedule", _as_str)
    result["shift"] = take("shift", _as_float)
    result["model"] = take("model_name", _as_str)
    result["model_hash"] = take("model_hash", _as_str)
    version = take("version", _as_str)
    if version is not None and not version.lower().startswith("zitdesk"):
        version = f"zitdesk {version}"
    result["version"] = version

    request = payload.get("request")
    result["request"] = request if isinstance(request, dict) else None
    request_paths: dict[str, str] = {}
    if result["request"] and isinstance(result["request"].get("loras"), list):
        for spec in result["request"]["loras"]:
            if isinstance(spec, dict) and isinstance(spec.get("path"), str):
                request_paths.setdefault(_file_stem(spec["path"]), spec["path"])

    loras = []
    raw_loras = meta.get("loras", [])
    if not isinstance(raw_loras, list):
        unmapped.append("loras")
        raw_loras = []
    for item in raw_loras:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            if "loras" not in unmapped:
                unmapped.append("loras")
            continue
        loras.append(
            {
                "name": item["name"],
                "weight": _as_float(item.get("weight")),
                "hash": item.get("sha256") if isinstance(item.get("sha256"), str) else "",
                "file": request_paths.get(item["name"], ""),
            }
        )
    result["loras"] = loras
    extra = meta.get("extra")
    if isinstance(extra, dict):
        used = {"Variety", "CFG normalization"}  # in the embedded request (engine.variety)
        unmapped.extend(str(k) for k in extra if str(k) not in used)
    return True
