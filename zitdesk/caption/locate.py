"""Where caption models usually are on a user's disk, and a plain check of a chosen path.

zitdesk never downloads: it looks in the Hugging Face cache (TagGUI and most tools download
there: ``models--SmilingWolf--wd-*-tagger-v3``, ``models--Qwen--Qwen2.5-VL-*``), in ComfyUI
model trees (``models/LLM``, ``models/VLM``, ``models/wd14_tagger`` and the WD14 tagger custom
node's ``custom_nodes/ComfyUI-WD14-Tagger/models``, whose files are ``<name>.onnx`` +
``<name>.csv``), kohya's ``wd14_tagger_model`` and the folders the user added.
:func:`check_model` says in one sentence why a chosen path cannot be used ("" when it can).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from zitdesk.caption.describer import QWEN_VL_TYPES, describer_problem, read_config
from zitdesk.caption.tagger import MODEL_FILE, TAGS_FILE, tagger_problem
from zitdesk.errors import ModelError


@dataclass(frozen=True)
class Candidate:
    kind: str  # tagger | vlm
    path: str
    label: str
    origin: str  # hf-cache | comfyui | user | ...


def check_model(kind: str, path: str | os.PathLike[str]) -> str:
    """One sentence saying why ``path`` is not a usable ``kind`` model, or ""."""
    if not str(path).strip():
        return "No folder is chosen."
    return tagger_problem(path) if kind == "tagger" else describer_problem(path)


def _snapshots(model_dir: Path) -> list[Path]:
    snaps = model_dir / "snapshots"
    if not snaps.is_dir():
        return []
    return sorted((p for p in snaps.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)[-1:]


def _is_vlm(folder: Path) -> bool:
    try:
        cfg = read_config(folder)
    except ModelError:
        return False
    return str(cfg.get("model_type", "")) in QWEN_VL_TYPES and not cfg.get("auto_map")


def _scan_dir(root: Path, origin: str, depth: int = 2) -> Iterable[Candidate]:
    """Tagger and VLM folders at most ``depth`` levels below ``root``."""
    try:
        entries = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return
    for p in [root, *entries]:
        if (p / MODEL_FILE).is_file() and (p / TAGS_FILE).is_file():
            yield Candidate("tagger", str(p), p.name, origin)
        elif (p / "config.json").is_file() and _is_vlm(p):
            yield Candidate("vlm", str(p), p.name, origin)
        elif p is not root and depth > 1:
            yield from _scan_dir(p, origin, depth - 1)


def comfy_roots() -> list[Path]:
    from zitdesk.models.discovery import tool_model_roots

    return [r for origin, r in tool_model_roots() if origin in ("comfyui", "user")]


def find_candidates(extra_roots: Sequence[str | os.PathLike[str]] = ()) -> list[Candidate]:
    """Every tagger and VLM folder in the usual places (see the module doc), taggers first."""
    from zitdesk.models.discovery import hf_cache_roots

    out: list[Candidate] = []
    seen: set[str] = set()

    def add(c: Candidate) -> None:
        key = os.path.realpath(c.path)
        if key not in seen:
            seen.add(key)
            out.append(c)

    for hub in hf_cache_roots():
        if not hub.is_dir():
            continue
        for model_dir in sorted(hub.glob("models--*")):
            name = model_dir.name.lower()
            if "tagger" not in name and "vl" not in name:
                continue
            label = model_dir.name.replace("models--", "").replace("--", "/")
            for snap in _snapshots(model_dir):
                if not tagger_problem(snap):
                    add(Candidate("tagger", str(snap), label, "hf-cache"))
                elif _is_vlm(snap):
                    add(Candidate("vlm", str(snap), label, "hf-cache"))
    roots: list[tuple[str, Path]] = [("user", Path(r)) for r in extra_roots]
    for models in comfy_roots():
        roots += [("comfyui", models / sub) for sub in ("LLM", "VLM", "wd14_tagger", "taggers")]
        roots.append(("comfyui", models.parent / "custom_nodes" / "ComfyUI-WD14-Tagger" / "models"))
    roots.append(("kohya", Path.home() / "sd-scripts" / "wd14_tagger_model"))
    for origin, root in roots:
        if root.is_dir():
            for c in _scan_dir(root, origin):
                add(c)
            for onnx in sorted(root.glob("*.onnx")):  # the WD14 node's <name>.onnx + <name>.csv
                if onnx.with_suffix(".csv").is_file() and onnx.name != MODEL_FILE:
                    add(Candidate("tagger", str(onnx), onnx.stem, origin))
    return sorted(out, key=lambda c: c.kind != "tagger")
