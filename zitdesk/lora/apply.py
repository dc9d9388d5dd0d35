"""Apply a weighted LoRA stack to a diffusers ``ZImagePipeline`` (torch, imported lazily).

:func:`apply_loras` converts each file with :func:`zitdesk.lora.convert.load_normalized` (through
a small LRU cache keyed by file and model, :func:`load_normalized_cached`), loads the pairs as
PEFT adapters and sets their weights; the same stack with other weights only updates the weights,
an empty stack restores the base model exactly. :func:`applied_reports` says what is loaded.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zitdesk.errors import LoraError
from zitdesk.lora.convert import (
    LoadReport,
    load_normalized,
    transformer_linear_names,
    transformer_linear_shapes,
)
from zitdesk.offline import enforce_offline

log = logging.getLogger(__name__)

__all__ = [
    "LoadReport",
    "applied_reports",
    "apply_loras",
    "clear_cache",
    "load_normalized",
    "load_normalized_cached",
    "transformer_linear_names",
    "transformer_linear_shapes",
]

_STATE_ATTR = "_zitdesk_lora_state"
CACHE_MAX_ENTRIES = 16
CACHE_MAX_BYTES = 4 << 30

# ----------------------------------------------------------------------------------------------
# Cache of converted state dicts
# ----------------------------------------------------------------------------------------------

_cache: OrderedDict[tuple, tuple[dict[str, Any], LoadReport]] = OrderedDict()
_cache_lock = threading.Lock()


def _file_key(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise LoraError(f"LoRA file not found: {p}.") from exc
    return str(p.resolve()), st.st_size, st.st_mtime_ns


def _model_fingerprint(shapes: Mapping[str, tuple[int, int]]) -> int:
    return hash(tuple(sorted(shapes.items())))


def load_normalized_cached(
    path: str | os.PathLike[str], shapes: Mapping[str, tuple[int, int]]
) -> tuple[dict[str, Any], LoadReport]:
    """:func:`load_normalized` with a small LRU cache keyed by (path, size, mtime, model)."""
    key = (*_file_key(path), _model_fingerprint(shapes))
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit[0], replace(hit[1])
    sd, report = load_normalized(path, shapes)
    with _cache_lock:
        _cache[key] = (sd, report)
        total = sum(r.lora_bytes for _, r in _cache.values())
        while len(_cache) > 1 and (len(_cache) > CACHE_MAX_ENTRIES or total > CACHE_MAX_BYTES):
            _, (_, old) = _cache.popitem(last=False)
            total -= old.lora_bytes
    return sd, replace(report)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


# ----------------------------------------------------------------------------------------------
# apply_loras
# ----------------------------------------------------------------------------------------------


@dataclass
class _StackState:
    signature: list[tuple[str, int, int]]
    names: list[str]
    reports: list[LoadReport]


def _present_adapters(transformer: Any) -> set[str]:
    cfg = getattr(transformer, "peft_config", None)
    return set(cfg) if isinstance(cfg, dict) else set()


def _remove(pipe: Any, names: list[str]) -> None:
    if not names:
        return
    present = _present_adapters(pipe.transformer)
    ours = [n for n in names if n in present]
    if present and present <= set(names):
        pipe.unload_lora_weights()  # only ours: restore the plain modules exactly
    elif ours:
        pipe.delete_adapters(ours)


def _undo_float8_adapter(transformer: Any, adapter: str, sd: Mapping[str, Any]) -> None:
    """Keep LoRA factors out of float8 on fp8-stored models.

    PEFT gives new adapter layers the base layer's dtype (``_move_adapter_to_device_of_base_layer``);
    with diffusers' ``enable_layerwise_casting(storage_dtype=float8_e4m3fn)`` that is float8, and
    the LoRA forward then fails on CPU (``"mul_cpu_reduced_float" not implemented``) or silently
    loses precision. Re-create such factors in the state dict's dtype and reload their values.
    """
    import torch

    f8 = {
        getattr(torch, n)
        for n in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz")
        if hasattr(torch, n)
    }
    with torch.no_grad():
        for mod_name, mod in transformer.named_modules():
            for part in ("lora_A", "lora_B"):
                layers = getattr(mod, part, None)
                if not isinstance(layers, torch.nn.ModuleDict) or adapter not in layers:
                    continue
                layer = layers[adapter]
                if layer.weight.dtype not in f8:
                    continue
                src = sd.get(f"transformer.{mod_name}.{part}.weight")
                dtype = src.dtype if src is not None and src.dtype not in f8 else torch.bfloat16
                layer.to(dtype=dtype)
                weight: Any = layer.weight
                if src is not None and tuple(src.shape) == tuple(weight.shape):
                    weight.copy_(src)


def apply_loras(pipe: Any, specs: list[tuple[str, float]]) -> list[LoadReport]:
    """Make ``specs`` (``[(path, weight), ...]``) the pipeline's LoRA stack.

    Previously applied zitdesk adapters are removed (adapters loaded by other code stay, but
    only the stack is active afterwards). If the same files (path, size, mtime) are already
    applied in the same order, only the weights change. Each file becomes adapter ``z{i}``.
    Every file is converted before the model is touched, so a bad file leaves the pipeline as
    it was. Raises :class:`LoraError` with a plain sentence.
    """
    enforce_offline()
    transformer = pipe.transformer
    state: _StackState | None = getattr(transformer, _STATE_ATTR, None)
    specs = [(str(p), float(w)) for p, w in specs]
    for p, w in specs:
        if not math.isfinite(w):
            raise LoraError(f"The weight of {Path(p).name} is not a number.")
    signature = [_file_key(p) for p, _ in specs]
    weights = [w for _, w in specs]

    if state is not None and not set(state.names) <= _present_adapters(transformer):
        state = None  # someone unloaded our adapters behind our back
        setattr(transformer, _STATE_ATTR, None)

    if state is not None and state.signature == signature and specs:
        pipe.set_adapters(state.names, weights)
        reweighted = [replace(r, weight=w) for r, w in zip(state.reports, weights, strict=True)]
        state.reports = reweighted
        return [replace(r) for r in reweighted]

    if not specs:
        if state is not None:
            _remove(pipe, state.names)
            setattr(transformer, _STATE_ATTR, None)
        return []

    shapes = transformer_linear_shapes(transformer)
    converted = [load_normalized_cached(p, shapes) for p, _ in specs]  # may raise: model untouched

    if state is not None:
        _remove(pipe, state.names)
        setattr(transformer, _STATE_ATTR, None)
    taken = _present_adapters(transformer)
    names: list[str] = []
    reports: list[LoadReport] = []
    try:
        for i, ((sd, report), w) in enumerate(zip(converted, weights, strict=True)):
            name = f"z{i}"
            while name in taken:
                name += "_"
            with warnings.catch_warnings():  # stacking adapters is what we want here
                warnings.filterwarnings("ignore", message="Already found a `peft_config`")
                pipe.load_lora_weights(dict(sd), adapter_name=name, low_cpu_mem_usage=False)
            taken.add(name)
            names.append(name)
            _undo_float8_adapter(transformer, name, sd)
            reports.append(replace(report, weight=w, adapter_name=name))
        pipe.set_adapters(names, weights)
    except LoraError:
        _remove(pipe, names)
        raise
    except Exception as exc:  # noqa: BLE001 - PEFT/diffusers errors become one plain sentence
        _remove(pipe, names)
        bad = Path(specs[len(names)][0]).name if len(names) < len(specs) else "the LoRA stack"
        log.exception("LoRA load failed")
        raise LoraError(f"Could not apply {bad}: {exc}") from exc
    setattr(transformer, _STATE_ATTR, _StackState(signature, names, reports))
    return [replace(r) for r in reports]


def applied_reports(pipe: Any) -> list[LoadReport]:
    """Reports of the stack currently applied by :func:`apply_loras` (empty when none)."""
    state = getattr(pipe.transformer, _STATE_ATTR, None)
    return [replace(r) for r in state.reports] if state else []
