"""Find Z-Image Turbo models the user already has, and resolve a user-chosen path.

Three layouts are understood:

* a diffusers folder (``model_index.json`` + transformer/, text_encoder/, tokenizer/, vae/, scheduler/);
* the Hugging Face cache (``models--Tongyi-MAI--Z-Image-Turbo/snapshots/<commit>/...``);
* ComfyUI split files: a DiT (``z_image_turbo_bf16`` / ``_fp8_e4m3fn``), ``qwen_3_4b`` and ``ae``,
  either in one folder or in a ComfyUI/Forge/SwarmUI ``models`` tree.

Everything here reads only file names and safetensors headers (no torch), so discovery is fast and
safe to run at start-up on a worker thread. Nothing is copied, linked or downloaded.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zitdesk.errors import ModelError
from zitdesk.models.validate import (
    DIT,
    ROLE_LABELS,
    TEXT_ENCODER,
    VAE,
    FileCheck,
    classify_file,
    weight_file_problems,
)

DIFFUSERS_PARTS = ("transformer", "text_encoder", "tokenizer", "vae", "scheduler")

# Sub-folders of a ComfyUI / Forge / SwarmUI / StabilityMatrix model tree, by role.
TREE_FOLDERS = {
    DIT: (
        "diffusion_models",
        "unet",
        "checkpoints",
        "Stable-diffusion",
        "StableDiffusion",
        "DiffusionModels",
    ),
    TEXT_ENCODER: ("text_encoders", "clip", "text_encoder", "TextEncoders", "CLIP"),
    VAE: ("vae", "VAE"),
}


@dataclass
class ModelSource:
    """A resolved base model: where each part lives and what is missing."""

    kind: str  # diffusers | comfy
    root: Path
    label: str = ""
    files: dict[str, Path] = field(default_factory=dict)  # comfy: role → file
    checks: dict[str, FileCheck] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # plain-language names of missing parts
    problems: list[str] = field(default_factory=list)  # plain sentences
    origin: str = ""  # hf-cache | comfyui | forge | folder | user
    tokenizer_dir: Path | None = None  # comfy: a tokenizer/ folder beside the files, if any
    # comfy folders: every usable file per role (bf16, fp8, GGUF … variants), for choosers
    candidates: dict[str, list[FileCheck]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.problems

    def describe(self) -> str:
        if self.complete:
            return f"{self.label}: ready"
        parts = []
        if self.missing:
            parts.append("missing " + ", ".join(self.missing))
        parts.extend(self.problems)
        return f"{self.label}: " + "; ".join(parts)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "root": str(self.root),
            "label": self.label,
            "origin": self.origin,
            "files": {k: str(v) for k, v in self.files.items()},
            "missing": self.missing,
            "problems": self.problems,
            "complete": self.complete,
            "tokenizer_dir": str(self.tokenizer_dir) if self.tokenizer_dir else None,
        }


def _has_weights(folder: Path) -> bool:
    return folder.is_dir() and any(
        f.suffix == ".safetensors" or f.name.endswith(".safetensors.index.json")
        for f in folder.iterdir()
    )


def inspect_diffusers_folder(root: Path, origin: str = "folder") -> ModelSource:
    src = ModelSource("diffusers", root, label=root.name, origin=origin)
    try:
        index = json.loads((root / "model_index.json").read_text())
    except (OSError, json.JSONDecodeError):
        src.problems.append(f"{root.name}/model_index.json is unreadable")
        return src
    cls = index.get("_class_name", "")
    if not cls.startswith("ZImage"):
        src.problems.append(
            f"this is a {cls or 'unknown'} folder, not Z-Image Turbo (ZImagePipeline)"
        )
        return src
    for part in DIFFUSERS_PARTS:
        folder = root / part
        if part == "tokenizer":
            if not (folder / "tokenizer.json").exists() and not (folder / "vocab.json").exists():
                src.missing.append("tokenizer/ (the bundled Qwen tokenizer will be used)")
        elif part == "scheduler":
            if not (folder / "scheduler_config.json").exists():
                src.missing.append("scheduler/scheduler_config.json")
        elif not _has_weights(folder):
            src.missing.append(f"{part}/ weights")
        else:
            src.problems.extend(weight_file_problems(folder))
    # A missing tokenizer is not fatal: the bundled one is used.
    src.missing = [m for m in src.missing if not m.startswith("tokenizer/")]
    return src


def _hf_snapshot(model_dir: Path) -> Path | None:
    snaps = model_dir / "snapshots"
    if not snaps.is_dir():
        return None
    ref = model_dir / "refs" / "main"
    if ref.exists():
        cand = snaps / ref.read_text().strip()
        if (cand / "model_index.json").exists():
            return cand
    found = [s for s in snaps.iterdir() if (s / "model_index.json").exists()]
    return max(found, key=lambda s: s.stat().st_mtime) if found else None


def comfy_source(
    files: Mapping[str, Path | None], root: Path, label: str = "", origin: str = "user"
) -> ModelSource:
    """Check three user-chosen single files (DiT, text encoder, VAE) and report plainly."""
    src = ModelSource("comfy", root, label=label or root.name, origin=origin)
    for role in (DIT, TEXT_ENCODER, VAE):
        path = files.get(role)
        if path is None:
            src.missing.append(ROLE_LABELS[role])
            continue
        try:
            check = classify_file(path)
        except ModelError as exc:
            src.problems.append(str(exc))
            continue
        if check.role != role:
            src.problems.append(check.message or f"{path.name} is not a {ROLE_LABELS[role]}.")
            continue
        src.files[role] = Path(path)
        src.checks[role] = check
    if DIT in src.checks and TEXT_ENCODER in src.checks:
        dit_h = src.checks[DIT].header
        te_h = src.checks[TEXT_ENCODER].header
        cap = next(
            (v for k, v in dit_h.tensors.items() if k.endswith("cap_embedder.1.weight")), None
        )
        emb = next((v for k, v in te_h.tensors.items() if k.endswith("embed_tokens.weight")), None)
        if cap is not None and emb is not None and cap.shape[1] != emb.shape[1]:
            src.problems.append(
                f"{src.files[TEXT_ENCODER].name} (hidden size {emb.shape[1]}) does not fit this DiT, "
                f"which expects {cap.shape[1]}; Z-Image Turbo needs Qwen3-4B (qwen_3_4b.safetensors)."
            )
    return src


# What a refused file of each family would have been, so its reason replaces "missing".
_FAMILY_ROLE = {"zimage-dit": DIT, "qwen3": TEXT_ENCODER, "vae-prefixed": VAE, "sd-vae": VAE}
WEIGHT_SUFFIXES = (".safetensors", ".gguf")


def _scan_files(
    folders: list[Path],
    errors: list[str] | None = None,
    rejected: dict[str, list[FileCheck]] | None = None,
) -> dict[str, list[FileCheck]]:
    """Classify every safetensors / GGUF file under ``folders``; unreadable ones go to
    ``errors``, Z-Image parts zitdesk cannot run (with their reason) to ``rejected``."""
    found: dict[str, list[FileCheck]] = {DIT: [], TEXT_ENCODER: [], VAE: []}
    seen: set[Path] = set()
    for folder in folders:
        if not folder.is_dir():
            continue
        files = sorted(f for f in folder.rglob("*") if f.suffix.lower() in WEIGHT_SUFFIXES)
        for f in files:
            if f in seen or f.name.startswith(".") or not f.is_file():
                continue
            seen.add(f)
            try:
                check = classify_file(f)
            except ModelError as exc:
                if errors is not None:
                    errors.append(str(exc))
                continue
            if check.role:
                found[check.role].append(check)
            elif rejected is not None and check.family in _FAMILY_ROLE:
                rejected.setdefault(_FAMILY_ROLE[check.family], []).append(check)
    return found


def _best(checks: list[FileCheck], hints: tuple[str, ...]) -> FileCheck | None:
    if not checks:
        return None

    def score(c: FileCheck) -> tuple[int, int]:
        name = c.path.name.lower()
        return (sum(h in name for h in hints), -len(name))

    return max(checks, key=score)


def resolve_folder_of_files(root: Path, origin: str = "folder") -> ModelSource:
    """A folder with the three single files (flat, or a ComfyUI/Forge ``models`` tree)."""
    tree = [root / sub for subs in TREE_FOLDERS.values() for sub in subs]
    folders = [root] if not any(p.is_dir() for p in tree) else [p for p in tree if p.is_dir()]
    errors: list[str] = []
    rejected: dict[str, list[FileCheck]] = {}
    found = _scan_files(folders, errors, rejected)
    files = {
        DIT: (
            b.path
            if (b := _best(found[DIT], ("z_image", "zimage", "z-image", "turbo", "bf16")))
            else None
        ),
        TEXT_ENCODER: (
            b.path if (b := _best(found[TEXT_ENCODER], ("qwen_3_4b", "qwen3", "4b"))) else None
        ),
        VAE: (b.path if (b := _best(found[VAE], ("ae", "flux"))) else None),
    }
    src = comfy_source(files, root, label=root.name, origin=origin)
    src.candidates = {role: list(checks) for role, checks in found.items() if checks}
    for role, refused in rejected.items():
        if files.get(role) is None and refused:
            # The part is there but unusable: say why instead of "missing".
            if ROLE_LABELS[role] in src.missing:
                src.missing.remove(ROLE_LABELS[role])
            src.problems.extend(c.message for c in refused)
    src.problems.extend(errors)
    if (root / "tokenizer").is_dir():
        src.tokenizer_dir = root / "tokenizer"
    return src


MANIFEST_SUFFIX = ".zitmodel.json"


def write_manifest(files: dict[str, str | Path], folder: str | Path | None = None) -> Path:
    """Record three single files that live in different folders as one ``*.zitmodel.json``.

    ``--model`` and the app's settings then take that file like a folder. Nothing is copied.
    """
    import hashlib

    from zitdesk.io import atomic_write, user_dirs

    doc: dict[str, Any] = {
        "format": "zitdesk-model",
        "version": 1,
        "files": {role: str(Path(files[role]).resolve()) for role in (DIT, TEXT_ENCODER, VAE)},
    }
    blob = json.dumps(doc, indent=2)
    name = Path(doc["files"][DIT]).stem
    target_dir = Path(folder) if folder else user_dirs()["config"] / "models"
    target = target_dir / f"{name}-{hashlib.sha1(blob.encode()).hexdigest()[:8]}{MANIFEST_SUFFIX}"
    atomic_write(target, blob)
    return target


def _resolve_manifest(p: Path) -> ModelSource:
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
        files = {role: Path(doc["files"][role]) for role in (DIT, TEXT_ENCODER, VAE)}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(
            f"{p.name} is not a valid zitdesk model file; choose the model again."
        ) from exc
    return comfy_source(files, p.parent, label=files[DIT].stem, origin="user")


def resolve_model(path: str | os.PathLike[str]) -> ModelSource:
    """Resolve what the user pointed at: diffusers folder, HF-cache folder, a folder of single files,
    or a ``*.zitmodel.json`` naming three single files.

    Raises :class:`ModelError` with a plain sentence when nothing usable is there.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(
            f"{p} does not exist; choose the folder that holds your Z-Image Turbo model."
        )
    if p.is_file() and p.name.endswith(MANIFEST_SUFFIX):
        return _resolve_manifest(p)
    if p.is_file():
        if p.suffix.lower() in (".json",) and p.name == "model_index.json":
            p = p.parent
        else:
            # One file chosen: look for its two siblings in the same folder.
            check = classify_file(p)
            if not check.ok:
                raise ModelError(check.message)
            src = resolve_folder_of_files(p.parent, origin="user")
            role = str(check.role)
            if src.files.get(role) != p:
                # The file chosen wins over the folder's best guess (a Q4_K GGUF beside the
                # bf16 DiT): check the three parts again with it.
                files: dict[str, Path | None] = {
                    r: src.files.get(r) for r in (DIT, TEXT_ENCODER, VAE)
                }
                files[role] = p
                chosen = comfy_source(files, p.parent, label=p.stem, origin="user")
                chosen.candidates, chosen.tokenizer_dir = src.candidates, src.tokenizer_dir
                return chosen
            return src
    if (p / "model_index.json").exists():
        return inspect_diffusers_folder(p, origin="folder")
    snap = _hf_snapshot(p)
    if snap is None and p.name.startswith("models--"):
        raise ModelError(
            f"{p.name} has no downloaded snapshot with model_index.json; the download is incomplete."
        )
    if snap is None and (p / "snapshots").is_dir() is False:
        # maybe the hub cache root itself
        hub = sorted(p.glob("models--*Z-Image*"))
        snap = _hf_snapshot(hub[0]) if hub else None
    if snap is not None:
        src = inspect_diffusers_folder(snap, origin="hf-cache")
        src.label = (
            p.name.replace("models--", "").replace("--", "/")
            if p.name.startswith("models--")
            else snap.name
        )
        return src
    src = resolve_folder_of_files(p, origin="folder")
    if not src.files and not src.problems:
        raise ModelError(
            f"No Z-Image Turbo model was found in {p}. Choose a diffusers folder (with model_index.json), "
            "a Hugging Face cache folder, or a folder with the three ComfyUI files "
            "(z_image_turbo_bf16.safetensors, qwen_3_4b.safetensors, ae.safetensors)."
        )
    return src


def hf_cache_roots() -> list[Path]:
    roots = []
    if os.environ.get("HF_HUB_CACHE"):
        roots.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        roots.append(Path(os.environ["HF_HOME"]) / "hub")
    roots.append(Path.home() / ".cache" / "huggingface" / "hub")
    return roots


def tool_model_roots() -> list[tuple[str, Path]]:
    """Usual places of ComfyUI, Forge/A1111, SwarmUI and StabilityMatrix model folders."""
    home = Path.home()
    cands = [
        ("comfyui", home / "ComfyUI" / "models"),
        ("comfyui", home / "comfy" / "ComfyUI" / "models"),
        ("comfyui", home / "Documents" / "ComfyUI" / "models"),
        ("comfyui", home / "ComfyUI_windows_portable" / "ComfyUI" / "models"),
        ("forge", home / "stable-diffusion-webui-forge" / "models"),
        ("forge", home / "stable-diffusion-webui" / "models"),
        ("swarmui", home / "SwarmUI" / "Models"),
        ("stabilitymatrix", home / "StabilityMatrix" / "Data" / "Models"),
        ("stabilitymatrix", home / ".local" / "share" / "StabilityMatrix" / "Models"),
    ]
    extra = os.environ.get("ZITDESK_MODEL_DIRS", "")
    cands += [("user", Path(x)) for x in extra.split(os.pathsep) if x]
    return cands


def discover(extra_roots: Sequence[str | Path] = ()) -> list[ModelSource]:
    """Return every candidate found, complete ones first; each says what it lacks."""
    out: list[ModelSource] = []
    seen: set[Path] = set()
    for hub in hf_cache_roots():
        if not hub.is_dir():
            continue
        for model_dir in sorted(hub.glob("models--*")):
            name = model_dir.name.lower()
            if "z-image" not in name and "zimage" not in name and "z_image" not in name:
                continue
            snap = _hf_snapshot(model_dir)
            if snap is None or snap.resolve() in seen:
                continue
            seen.add(snap.resolve())
            src = inspect_diffusers_folder(snap, origin="hf-cache")
            src.label = model_dir.name.replace("models--", "").replace("--", "/")
            src.root = model_dir
            out.append(src)
    roots = [("user", Path(r)) for r in extra_roots] + tool_model_roots()
    for origin, root in roots:
        if not root.is_dir() or root.resolve() in seen:
            continue
        seen.add(root.resolve())
        try:
            src = resolve_model(root)
        except ModelError:
            continue
        src.origin = origin
        out.append(src)
    out.sort(key=lambda s: (not s.complete, s.label))
    return out
