"""Convert a LoRA of any Z-Image dialect into exact diffusers LoRA pairs (torch, imported lazily).

diffusers 0.42.1 converts most Z-Image dialects itself, but one unknown key makes it reject the
whole file (``state_dict should be empty``), LoKr files must contain nothing else, and kohya
alphas are folded per file (engine notes §7). zitdesk therefore converts every dialect itself,
from the header-level names of :mod:`zitdesk.lora.keys`, into plain diffusers/PEFT keys

    ``transformer.<diffusers module>.lora_A.weight`` (rank × in)
    ``transformer.<diffusers module>.lora_B.weight`` (out × rank)

with every scale baked into ``lora_B`` (so PEFT's ``alpha / r`` is 1 for every module: diffusers
0.42.1 mirrors per-module ranks into ``alpha_pattern`` when the state dict carries no alphas,
``utils/peft_utils.py`` ``get_peft_kwargs``), which :mod:`zitdesk.lora.apply` hands to ``pipe.load_lora_weights``.
Keys for modules the model does not have are dropped and reported instead of failing the load.

LoKr / LoHa / full ``diff`` modules become *exact* LoRA pairs:

* LoKr ``ΔW = s · kron(w1, w2)`` with each factor written as ``P @ Q`` (``w_a @ w_b`` when it is
  rank-split; ``(w, I)`` or ``(I, w)`` when it is full, whichever is thinner). By the mixed-product
  rule ``kron(P1, P2) @ kron(Q1, Q2) = kron(P1 Q1, P2 Q2)``, so ``B = s · kron(P1, P2)`` and
  ``A = kron(Q1, Q2)`` reproduce ΔW exactly with rank ``k1 · k2``. Memory: ``k1·k2·(in + out)``
  values per module. A rank-split LoKr stays small (w1 4×4, w2 rank 16 → rank 64); a full-rank
  LoKr (both factors full) becomes rank ``min(in, out)``, i.e. up to two matrices of the module's
  own size (for the real model, ≈ 2 × 29 MB bf16 per 3840² attention module). The report's
  ``lora_bytes`` shows the cost and a warning is added when it exceeds the base weights.
* LoHa ``ΔW = s · (w1a w1b) ⊙ (w2a w2b)`` is exact at rank ``r1 · r2`` with the row-wise / column-
  wise Khatri-Rao products (``B[i,(a,b)] = w1a[i,a] w2a[i,b]``, ``A[(a,b),j] = w1b[a,j] w2b[b,j]``).
* ``diff`` (LyCORIS full) becomes ``(I, ΔW)`` or ``(ΔW, I)``.

LyCORIS scale rules (``KohakuBlueleaf/LyCORIS`` ``lycoris/modules/lokr.py`` / ``loha.py``, as
also implemented by diffusers' ``_bake_lokr_alpha_``): ``s = alpha / rank`` when a LoKr factor is
rank-split (rank = ``w*_b.shape[0]``), ``s = 1`` when both factors are full; LoHa ``alpha / r``.
A missing or zero alpha means alpha = rank (kohya ``networks/lora.py`` and LyCORIS do the same).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zitdesk.errors import LoraError
from zitdesk.lora.inspect import LoraInfo, adapter_metadata, inspect_header, read_lora_header
from zitdesk.lora.keys import FOREIGN_ARCHS, SUPPORTED_PARTS, foreign_message, split_key
from zitdesk.models.zimage_tree import QKV_MARKER, expand_module, resolve_module
from zitdesk.offline import enforce_offline

__all__ = ["LoadReport", "load_normalized", "transformer_linear_names", "transformer_linear_shapes"]

_ADAPTER_COMPONENTS = ("lora_", "lokr_", "hada_", "oft_", "boft_")


@dataclass
class LoadReport:
    """What happened to one LoRA of the stack."""

    path: str
    arch: str
    dialect: str
    matched: int  # modules loaded into the model
    total: int  # modules named by the file (fused qkv counted as 3)
    unknown_keys: list[str] = field(default_factory=list)
    message: str = ""
    weight: float = 1.0
    adapter_name: str = ""
    rank: int | None = None
    skipped_modules: list[str] = field(default_factory=list)  # not in the model / wrong shape
    redundant_keys: list[str] = field(default_factory=list)  # duplicates (dot-format qkv/out)
    unsupported_keys: list[str] = field(default_factory=list)  # DoRA, bias deltas, Tucker cores
    warnings: list[str] = field(default_factory=list)
    lora_bytes: int = 0  # size of the converted state dict
    trigger_words: list[tuple[str, str]] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# Model module names
# ----------------------------------------------------------------------------------------------


def _linear_items(transformer: Any):
    import torch

    for name, mod in transformer.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        parts = name.split(".")
        if any(p.startswith(_ADAPTER_COMPONENTS) for p in parts):
            continue  # PEFT's own lora_A/lora_B layers
        if parts and parts[-1] == "base_layer":  # a PEFT-wrapped Linear
            name = ".".join(parts[:-1])
        yield name, mod


def transformer_linear_names(transformer: Any) -> set[str]:
    """Names of the transformer's Linear modules (PEFT wrappers see through to their base)."""
    return {name for name, _ in _linear_items(transformer)}


def transformer_linear_shapes(transformer: Any) -> dict[str, tuple[int, int]]:
    """``{module: (out_features, in_features)}`` for the transformer's Linear modules."""
    return {
        name: (int(m.out_features), int(m.in_features)) for name, m in _linear_items(transformer)
    }


# ----------------------------------------------------------------------------------------------
# Conversion helpers (torch)
# ----------------------------------------------------------------------------------------------


def _eye(n: int):
    import torch

    return torch.eye(n, dtype=torch.float32)


def _dense_pair(delta):
    """Exact LoRA pair for a dense ΔW: identity on the thinner side."""
    out_f, in_f = delta.shape
    if out_f <= in_f:
        return delta, _eye(out_f)  # A = ΔW (out × in), B = I_out
    return _eye(in_f), delta  # A = I_in, B = ΔW


def _factor(w=None, a=None, b=None):
    """A Kronecker factor as ``(P, Q)`` with ``W = P @ Q``, as thin as an exact form allows."""
    if a is not None and b is not None:
        return a.float(), b.float()
    w = w.float()
    out_f, in_f = w.shape
    if in_f <= out_f:
        return w, _eye(in_f)
    return _eye(out_f), w


def _lokr_pair(parts: Mapping[str, Any], alpha: float | None):
    import torch

    if any(t.ndim != 2 or 0 in t.shape for n, t in parts.items() if n.startswith("lokr_")):
        raise ValueError("LoKr factors must be non-empty matrices")
    w1_split = "lokr_w1_a" in parts and "lokr_w1_b" in parts
    w2_split = "lokr_w2_a" in parts and "lokr_w2_b" in parts
    if not (w1_split or "lokr_w1" in parts) or not (w2_split or "lokr_w2" in parts):
        raise ValueError("incomplete LoKr factors")
    if any(p in parts for p in ("lokr_t1", "lokr_t2")):
        raise ValueError("Tucker-decomposed (conv) LoKr")
    p1, q1 = _factor(parts.get("lokr_w1"), parts.get("lokr_w1_a"), parts.get("lokr_w1_b"))
    p2, q2 = _factor(parts.get("lokr_w2"), parts.get("lokr_w2_a"), parts.get("lokr_w2_b"))
    scale = 1.0
    if w1_split or w2_split:
        rank = parts["lokr_w2_b"].shape[0] if w2_split else parts["lokr_w1_b"].shape[0]
        if alpha:
            scale = alpha / rank
    k = p1.shape[1] * p2.shape[1]
    out_f, in_f = p1.shape[0] * p2.shape[0], q1.shape[1] * q2.shape[1]
    if k >= min(out_f, in_f):  # never worse than the dense form
        delta = torch.kron(p1 @ q1, p2 @ q2) * scale
        return _dense_pair(delta)
    return torch.kron(q1, q2), torch.kron(p1, p2) * scale


def _loha_pair(parts: Mapping[str, Any], alpha: float | None):

    need = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")
    if any(p not in parts for p in need):
        raise ValueError("incomplete LoHa factors")
    if any(p in parts for p in ("hada_t1", "hada_t2")):
        raise ValueError("Tucker-decomposed (conv) LoHa")
    p1, q1, p2, q2 = (parts[p].float() for p in need)
    if any(t.ndim != 2 or 0 in t.shape for t in (p1, q1, p2, q2)):
        raise ValueError("LoHa factors must be non-empty matrices")
    rank = q1.shape[0]
    scale = alpha / rank if alpha else 1.0
    r1, r2 = p1.shape[1], p2.shape[1]
    out_f, in_f = p1.shape[0], q1.shape[1]
    if r1 * r2 >= min(out_f, in_f):
        return _dense_pair((p1 @ q1) * (p2 @ q2) * scale)
    b = (p1[:, :, None] * p2[:, None, :]).reshape(out_f, r1 * r2) * scale
    a = (q1[:, None, :] * q2[None, :, :]).reshape(r1 * r2, in_f)
    return a, b


def _pattern_value(patterns: Any, module: str) -> Any:
    """PEFT ``rank_pattern``/``alpha_pattern`` lookup (``(.*\\.)?key$`` match, PEFT's rule)."""
    if not isinstance(patterns, dict):
        return None
    if module in patterns:
        return patterns[module]
    for pat, val in patterns.items():
        try:
            if re.match(rf"(.*\.)?({pat})$", module):
                return val
        except re.error:
            continue
    return None


class _ScaleRules:
    """Where a LoRA module's ``alpha`` comes from when the file has no ``.alpha`` tensor."""

    def __init__(self, info: LoraInfo) -> None:
        self.cfg = adapter_metadata(info.metadata) or self._peft_sidecar(Path(info.path))

    @staticmethod
    def _peft_sidecar(path: Path) -> dict[str, Any] | None:
        if path.name != "adapter_model.safetensors":  # PEFT's save_pretrained layout only
            return None
        side = path.with_name("adapter_config.json")
        try:
            if side.is_file() and side.stat().st_size < 1_000_000:
                cfg = json.loads(side.read_text(encoding="utf-8"))
                return cfg if isinstance(cfg, dict) else None
        except (OSError, ValueError):
            return None
        return None

    def scale(self, module: str, rank: int, alpha: float | None) -> float:
        if alpha is not None:
            return alpha / rank if alpha else 1.0
        if not self.cfg:
            return 1.0  # diffusers convention: no alpha = alpha is the rank
        a = _pattern_value(self.cfg.get("alpha_pattern"), module)
        if a is None:
            a = self.cfg.get("lora_alpha")
        try:
            a = float(a)
        except (TypeError, ValueError):
            return 1.0
        if not math.isfinite(a) or a == 0:
            return 1.0
        denom = math.sqrt(rank) if self.cfg.get("use_rslora") else rank
        return a / denom


def _scalar(t: Any) -> float | None:
    if t is None:
        return None
    try:
        v = float(t.float().reshape(-1)[0].item())
    except (RuntimeError, IndexError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _split_fused(a, b, out_sizes: list[int]):
    """Split a fused-qkv pair into three exact pairs.

    Shared-A form (kohya on the original tree): ``B`` is cut by rows, ``A`` is shared. Block-
    diagonal form (musubi's Comfy export: ``A`` = 3 stacked downs, ``B`` block-diagonal): each
    projection keeps only its own rank slice when the off-diagonal blocks are exactly zero.
    """
    bs = list(b.split(out_sizes, dim=0))
    rank = a.shape[0]
    if rank % 3 == 0 and rank >= 3:
        r = rank // 3
        diag = True
        for i, bi in enumerate(bs):
            mask = [j for j in range(3) if j != i]
            if any(bool(bi[:, j * r : (j + 1) * r].any()) for j in mask):
                diag = False
                break
        if diag:
            return [(a[i * r : (i + 1) * r], bs[i][:, i * r : (i + 1) * r]) for i in range(3)]
    return [(a, bi) for bi in bs]


# ----------------------------------------------------------------------------------------------
# load_normalized
# ----------------------------------------------------------------------------------------------


def _names_and_shapes(
    model_modules: Iterable[str] | Mapping[str, Any],
) -> tuple[set[str], dict[str, tuple[int, int]]]:
    if isinstance(model_modules, Mapping):
        shapes = {}
        for k, v in model_modules.items():
            try:
                shapes[k] = (int(v[0]), int(v[1]))
            except (TypeError, ValueError, IndexError):
                pass
        return set(model_modules), shapes
    return set(model_modules), {}


def load_normalized(
    path: str | os.PathLike[str],
    transformer_module_names: Iterable[str] | Mapping[str, tuple[int, int]],
) -> tuple[dict[str, Any], LoadReport]:
    """Read a LoRA of any supported dialect and convert it to diffusers keys with scale 1.

    ``transformer_module_names`` is the set of the model's Linear module names, or a mapping
    ``name → (out_features, in_features)`` (:func:`transformer_linear_shapes`), which also lets
    the conversion drop modules of the wrong size with a clear report instead of a PEFT error.
    Returns ``(state_dict, report)``; the tensors are on the CPU in the file's float dtype.
    Raises :class:`LoraError` for foreign or unreadable files and files that match no module.
    """
    enforce_offline()
    import torch

    p = Path(path)
    header = read_lora_header(p)
    info = inspect_header(header)
    if info.arch in FOREIGN_ARCHS:
        raise LoraError(foreign_message(info.arch))
    names, shapes = _names_and_shapes(transformer_module_names)
    rules = _ScaleRules(info)

    # 1. group the recognised keys by (diffusers module, source spelling)
    sources: dict[str, dict[str, dict[str, str]]] = {}  # module → raw module path → part → key
    alias_of: dict[tuple[str, str], bool] = {}
    unknown: list[str] = []
    unsupported: list[str] = []
    for key in header.tensors:
        s = split_key(key)
        r = resolve_module(s[0]) if s else None
        if s is None or r is None:
            unknown.append(key)
            continue
        raw_mod, part = s
        module, is_alias = r
        if part not in SUPPORTED_PARTS:
            unsupported.append(key)
            continue
        sources.setdefault(module, {}).setdefault(raw_mod, {})[part] = key
        alias_of[(module, raw_mod)] = is_alias

    # 2. one source per module: prefer the diffusers spelling; the others are redundant
    chosen: dict[str, dict[str, str]] = {}
    redundant: list[str] = []
    for module, by_src in sources.items():
        order = sorted(by_src, key=lambda m: (alias_of[(module, m)], m))
        chosen[module] = by_src[order[0]]
        for other in order[1:]:
            redundant.extend(by_src[other].values())
    for module in [m for m in chosen if m.endswith(QKV_MARKER)]:
        if any(split in chosen for split in expand_module(module)):
            redundant.extend(chosen.pop(module).values())  # dot format: qkv duplicates to_q/k/v

    file_modules = sorted({m for mod in chosen for m in expand_module(mod)})
    needed = sorted({k for parts in chosen.values() for k in parts.values()})

    # 3. read only the tensors we use
    try:
        from safetensors import safe_open

        tensors: dict[str, Any] = {}
        with safe_open(str(p), framework="pt", device="cpu") as fh:
            for k in needed:
                tensors[k] = fh.get_tensor(k)
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types; one message
        raise LoraError(f"{p.name} could not be read ({exc}); the file may be damaged.") from exc

    out_dtype = None
    for k in needed:
        t = tensors[k]
        if (
            t.is_floating_point()
            and t.ndim >= 2
            and t.dtype in (torch.float32, torch.bfloat16, torch.float16)
        ):
            out_dtype = t.dtype
            break
    out_dtype = out_dtype or torch.float32

    # 4. convert every module to an exact (A, B) pair with the scale in B
    sd: dict[str, Any] = {}
    missing: list[str] = []  # not in the model
    mismatched: list[str] = []  # in the model with another size
    notes: list[str] = []
    incomplete: list[str] = []
    nonfinite: list[str] = []
    ranks: dict[int, int] = {}
    loaded = 0
    n_base = 0
    with torch.no_grad():
        for module, part_keys in sorted(chosen.items()):
            parts = {pt: tensors[k] for pt, k in part_keys.items()}
            alpha = _scalar(parts.get("alpha"))
            try:
                if "lora_A" in parts and "lora_B" in parts:
                    a = parts["lora_A"].float()
                    b = parts["lora_B"].float()
                    a = a.reshape(a.shape[0], -1)
                    b = b.reshape(b.shape[0], -1)
                    b = b * rules.scale(module, a.shape[0], alpha)
                elif any(pt.startswith("lokr_") for pt in parts):
                    a, b = _lokr_pair(parts, alpha)
                elif any(pt.startswith("hada_") for pt in parts):
                    a, b = _loha_pair(parts, alpha)
                elif "diff" in parts:
                    d = parts["diff"].float()
                    a, b = _dense_pair(d.reshape(d.shape[0], -1))
                else:
                    raise ValueError("incomplete module")
                if a.ndim != 2 or b.ndim != 2 or b.shape[1] != a.shape[0] or a.shape[0] == 0:
                    raise ValueError("inconsistent shapes")
            except (ValueError, RuntimeError, ZeroDivisionError, IndexError):
                incomplete.extend(part_keys.values())
                continue
            if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
                nonfinite.append(module)
                continue
            targets = expand_module(module)
            if len(targets) == 3:
                sizes = (
                    [shapes[t][0] for t in targets] if all(t in shapes for t in targets) else None
                )
                if sizes is None or sum(sizes) != b.shape[0]:
                    if b.shape[0] % 3:
                        incomplete.extend(part_keys.values())
                        continue
                    sizes = [b.shape[0] // 3] * 3
                pairs = list(zip(targets, _split_fused(a, b, sizes), strict=True))
            else:
                pairs = [(module, (a, b))]
            for target, (ta, tb) in pairs:
                if target not in names:
                    missing.append(target)
                    continue
                if target in shapes:
                    out_f, in_f = shapes[target]
                    if tb.shape[0] != out_f or ta.shape[1] != in_f:
                        mismatched.append(target)
                        notes.append(
                            f"{target}: the LoRA is {tb.shape[0]}×{ta.shape[1]} but the model has "
                            f"{out_f}×{in_f}"
                        )
                        continue
                    n_base += out_f * in_f
                sd[f"transformer.{target}.lora_A.weight"] = ta.to(out_dtype).contiguous()
                sd[f"transformer.{target}.lora_B.weight"] = tb.to(out_dtype).contiguous()
                ranks[ta.shape[0]] = ranks.get(ta.shape[0], 0) + 1
                loaded += 1

    unknown += incomplete
    nbytes = sum(t.numel() * t.element_size() for t in sd.values())
    if n_base and any(
        k.startswith(("lokr_", "hada_", "diff")) for parts in chosen.values() for k in parts
    ):
        base_bytes = n_base * torch.tensor([], dtype=out_dtype).element_size()
        if nbytes > base_bytes:
            notes.append(
                f"this {info.dialect} file expands to {nbytes / 2**20:.0f} MiB as LoRA pairs, more than "
                f"the {base_bytes / 2**20:.0f} MiB of weights it modifies"
            )
    has_alpha = any("alpha" in parts for parts in chosen.values())
    # Only a bare file can be wrong here: a trainer's metadata (OneTrainer, kohya/musubi, zitdesk,
    # ai-toolkit) or a stored ss_network_alpha means the weights already carry the scale.
    if (
        info.dialect in ("diffusers", "peft")
        and not has_alpha
        and not rules.cfg
        and not info.tool
        and info.trained_alpha is None
    ):
        notes.append(
            "the file stores no alpha; zitdesk assumes alpha = rank (the diffusers "
            "convention), which is wrong if it was trained with another alpha"
        )
    if nonfinite:
        notes.append(
            f"{len(nonfinite)} modules hold NaN or infinite values and were skipped "
            f"({', '.join(nonfinite[:3])}{', …' if len(nonfinite) > 3 else ''})"
        )
    if unsupported:
        notes.append(
            f"{len(unsupported)} keys use features zitdesk does not apply (DoRA magnitudes, bias "
            "deltas, Tucker cores); results may differ from the trainer's"
        )
    if loaded == 0:
        if mismatched or (missing and not nonfinite):
            raise LoraError(
                f"None of the {len(file_modules)} modules in {p.name} fit this model; it was made for "
                "a different model size or version."
            )
        if nonfinite:
            from zitdesk.lora.values import damaged_message

            raise LoraError(damaged_message(p.name))
        raise LoraError(
            f"{p.name} has no keys that zitdesk recognises as a Z-Image LoRA, so it cannot be used."
        )
    rank = max(ranks.items(), key=lambda kv: kv[1])[0] if ranks else None
    msg = f"{p.name}: loaded {loaded}/{len(file_modules)} modules ({info.dialect_label})"
    extras = []
    if missing:
        extras.append(f"{len(missing)} not in this model")
    if mismatched:
        extras.append(f"{len(mismatched)} of another size")
    if nonfinite:
        extras.append(f"{len(nonfinite)} with NaN values")
    if unknown:
        extras.append(f"{len(unknown)} unrecognised keys")
    if extras:
        msg += "; skipped " + ", ".join(extras)
    msg += "."
    skipped = missing + mismatched + nonfinite
    report = LoadReport(
        path=str(p),
        arch=info.arch,
        dialect=info.dialect,
        matched=loaded,
        total=len(file_modules),
        unknown_keys=unknown,
        message=msg,
        rank=rank,
        skipped_modules=skipped,
        redundant_keys=redundant,
        unsupported_keys=unsupported,
        warnings=notes,
        lora_bytes=nbytes,
        trigger_words=list(info.trigger_words),
    )
    return sd, report
