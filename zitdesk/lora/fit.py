"""Does a LoRA fit the active model? A header-only shape check (no torch, no Qt).

Used by the Library card badge and by Generate's "Add": both read the model's Linear shapes
from its DiT safetensors header(s) once (:func:`model_linear_shapes`, cached per file and
mtime), then compare every LoRA module's ``(out, in)`` with the model's (:func:`check_fit`).

* ``model_linear_shapes(model)``: ``{diffusers module: (out_features, in_features)}`` for a
  model path (a ComfyUI DiT file, a folder of files, a manifest or a diffusers folder), a
  :class:`~zitdesk.models.discovery.ModelSource`, or None for the real Z-Image Turbo sizes.
  ComfyUI files store fused ``qkv`` (3·d rows): it is split into ``to_q/to_k/to_v``.
* ``lora_module_shapes(info_or_header)``: what each LoRA module changes, from
  ``lora_A`` (rank × in) and ``lora_B`` (out × rank); fused-qkv LoRAs are split the same way.
  Formats whose delta shape is not two plain factors (LoKr, LoHa) are not shape-checked.
* ``check_fit(lora, model_shapes)`` → :class:`Fit` ``(ok, message, matched, mismatched,
  missing)``: ``ok`` is False when the LoRA is not a Z-Image LoRA, when none of its modules
  exist in the model, or when any module's shape differs (loading it would fail the whole job).
  ``message`` is one plain sentence.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zitdesk.errors import LoraError
from zitdesk.lora.inspect import (
    LoraInfo,
    compatibility,
    coverage,
    inspect_header,
    read_lora_header,
)
from zitdesk.lora.keys import normalize_key
from zitdesk.models.zimage_tree import (
    QKV_MARKER,
    expand_module,
    full_size_linear_shapes,
    resolve_module,
)
from zitdesk.st_header import SafetensorsHeader, read_header

Shape = tuple[int, int]

__all__ = [
    "Fit",
    "check_fit",
    "fit_json",
    "lora_module_shapes",
    "model_linear_shapes",
    "shapes_from_header",
]


@dataclass(frozen=True)
class Fit:
    """The result of :func:`check_fit`."""

    ok: bool
    message: str  # one plain sentence
    matched: int = 0  # LoRA modules present with the right shape
    total: int = 0  # LoRA modules (qkv expanded)
    mismatched: tuple[tuple[str, Shape, Shape], ...] = field(default=())  # (module, lora, model)
    missing: tuple[str, ...] = ()  # LoRA modules the model does not have


def _split_fused(module: str, shape: Shape) -> dict[str, Shape]:
    """``{module: shape}``, with a fused ``<qkv>`` module split into its three parts."""
    parts = expand_module(module)
    if len(parts) == 1:
        return {module: shape}
    out_f, in_f = shape
    each = (
        out_f // 3 if out_f % 3 == 0 else out_f
    )  # an odd row count cannot be split: it will not fit
    return {p: (each, in_f) for p in parts}


def shapes_from_header(header: SafetensorsHeader, prefix: str = "") -> dict[str, Shape]:
    """The Linear shapes in one DiT header (diffusers or ComfyUI/original key names)."""
    out: dict[str, Shape] = {}
    for key, t in header.tensors.items():
        if not key.startswith(prefix) or not key.endswith(".weight") or len(t.shape) != 2:
            continue
        name = key[len(prefix) : -len(".weight")]
        resolved = resolve_module(name)
        if resolved is None:
            continue
        canon, _alias = resolved
        for m, shp in _split_fused(canon, (int(t.shape[0]), int(t.shape[1]))).items():
            out[m] = shp
    return out


def _dit_files(model: Any) -> list[tuple[Path, str]]:
    """``[(file, key prefix)]`` holding the model's transformer weights."""
    from zitdesk.models.discovery import ModelSource, resolve_model
    from zitdesk.models.validate import DIT, classify_file

    src = model if isinstance(model, ModelSource) else resolve_model(model)
    if src.kind == "comfy":
        check = src.checks.get(DIT)
        path = src.files.get(DIT)
        if path is None:
            raise LoraError("The model has no DiT file, so LoRA shapes cannot be checked.")
        prefix = check.prefix if check is not None else classify_file(path).prefix
        return [(Path(path), prefix)]
    folder = Path(src.root) / "transformer"
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise LoraError(
            f"{folder} holds no .safetensors weights, so LoRA shapes cannot be checked."
        )
    return [(f, "") for f in files]


@functools.lru_cache(maxsize=16)
def _shapes_of_file(path: str, prefix: str, _mtime_ns: int, _size: int) -> dict[str, Shape]:
    from zitdesk.models.quant import gguf_header, logical_header

    if path.lower().endswith(".gguf"):  # a GGUF DiT: its tensor table, shapes in torch order
        return shapes_from_header(gguf_header(path), prefix)
    # nvfp4 files list packed [N, K/2] bytes: read the layers' real shapes
    return shapes_from_header(logical_header(read_header(path, check_size=False)), prefix)


def model_linear_shapes(model: Any = None) -> dict[str, Shape]:
    """The active model's Linear shapes from its DiT header(s); None → real Z-Image Turbo sizes.

    Raises :class:`~zitdesk.lora.keys.LoraError` (or the model's own error) with a plain sentence
    when the model cannot be read.
    """
    if model is None:
        return dict(full_size_linear_shapes())
    shapes: dict[str, Shape] = {}
    for path, prefix in _dit_files(model):
        st = os.stat(path)
        shapes.update(_shapes_of_file(str(path), prefix, st.st_mtime_ns, st.st_size))
    if not shapes:
        raise LoraError(
            "The model's DiT file names no Z-Image Linear layer, so LoRA shapes cannot be checked."
        )
    return shapes


def lora_module_shapes(lora: LoraInfo | SafetensorsHeader) -> dict[str, Shape]:
    """``{module: (out, in)}`` that each plain A/B pair of a LoRA changes (qkv expanded)."""
    header = lora if isinstance(lora, SafetensorsHeader) else None
    if header is None:
        header = read_lora_header(lora.path)
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}
    for key, t in header.tensors.items():
        nk = normalize_key(key)
        if nk is None:
            continue
        module, part = nk
        if part in ("lora_A", "lora_B"):
            pairs.setdefault(module, {})[part] = tuple(int(d) for d in t.shape)
    out: dict[str, Shape] = {}
    for module, p in pairs.items():
        a, b = p.get("lora_A"), p.get("lora_B")
        if not a or not b or len(a) < 2:
            continue
        shape = (int(b[0]), int(math.prod(a[1:])))
        out.update(_split_fused(module, shape) if QKV_MARKER in module else {module: shape})
    return out


def _short(shape: Shape) -> str:
    return f"{shape[0]}×{shape[1]}"


def check_fit(
    lora: str | os.PathLike[str] | LoraInfo | SafetensorsHeader,
    model_shapes: Mapping[str, Shape],
    info: LoraInfo | None = None,
) -> Fit:
    """Check a LoRA (path, parsed header or :class:`LoraInfo`) against ``model_shapes``.

    ``info``: the header's :class:`LoraInfo` when the caller has it already (not inspected twice).
    """
    if isinstance(lora, SafetensorsHeader):
        header: SafetensorsHeader | None = lora
        info = info if info is not None else inspect_header(lora)
    elif isinstance(lora, LoraInfo):
        header, info = None, lora
    else:
        header = read_lora_header(Path(lora))
        info = inspect_header(header)
    names = set(model_shapes)
    cov = coverage(info, names)
    ok, message = compatibility(info, cov)
    if not ok:
        return Fit(False, message, cov.matched, cov.total_in_file, (), tuple(cov.missing_in_model))
    lora_shapes = lora_module_shapes(header if header is not None else info)
    want_shapes: dict[str, Shape] = {m: (int(s[0]), int(s[1])) for m, s in model_shapes.items()}
    mismatched = tuple(
        (m, shp, want_shapes[m])
        for m, shp in sorted(lora_shapes.items())
        if m in want_shapes and want_shapes[m] != shp
    )
    if mismatched:
        m, got, want = mismatched[0]
        return Fit(
            False,
            f"{info.name} does not fit this model: {len(mismatched)} of its {cov.matched} layers have other "
            f"sizes (e.g. {m} is {_short(got)} in the LoRA, {_short(want)} in the model); it was made for a "
            "different model size.",
            cov.matched - len(mismatched),
            cov.total_in_file,
            mismatched,
            tuple(cov.missing_in_model),
        )
    return Fit(True, message, cov.matched, cov.total_in_file, (), tuple(cov.missing_in_model))


def fit_json(fit: Fit) -> dict[str, Any]:
    """A JSON-ready form of a :class:`Fit` (for the CLI or logs)."""
    return {
        "ok": fit.ok,
        "message": fit.message,
        "matched": fit.matched,
        "total": fit.total,
        "mismatched": [[m, list(a), list(b)] for m, a, b in fit.mismatched],
        "missing": list(fit.missing),
    }
