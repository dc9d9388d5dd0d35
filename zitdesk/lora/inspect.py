"""What a LoRA file holds, from its header only (torch-free): :class:`LoraInfo` and its report.

* :func:`inspect_lora` / :func:`inspect_header`: architecture, dialect, rank, the alpha that
  loading applies, target modules (only A/B pairs the loader can use), unknown and unsupported
  keys, metadata, the tool that wrote it (:func:`detect_tool`);
* trigger words from every place trainers store them (:func:`extract_trigger_words`);
* :func:`coverage` against a model's Linear names and :func:`compatibility`, the plain sentence
  of a library badge or the CLI;
* :func:`inspect_json`, the document of ``zitdesk lora inspect FILE --json``.

Key names are read by :mod:`zitdesk.lora.keys`; the module tree is :mod:`zitdesk.models.zimage_tree`.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zitdesk.errors import FileFormatError, LoraError
from zitdesk.lora.keys import (
    ARCH_LABELS,
    FOREIGN_ARCHS,
    SUPPORTED_PARTS,
    detect_arch,
    detect_dialect,
    foreign_message,
    normalize_key,
)
from zitdesk.models.zimage_tree import (
    QKV_MARKER,
    expand_module,
    expected_targets,
    full_size_linear_names,
)
from zitdesk.st_header import SafetensorsHeader, read_header


@dataclass
class LoraInfo:
    """What a LoRA file's header says (no tensors loaded)."""

    path: str
    arch: str
    dialect: str
    rank: int | None = None  # most common rank
    alpha: float | None = None  # the alpha that is applied (see alpha_source)
    n_tensors: int = 0
    target_modules: list[str] = field(default_factory=list)  # diffusers names, qkv expanded
    unknown_keys: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    trigger_words: list[tuple[str, str]] = field(default_factory=list)  # (word, source)
    base_model_version: str | None = None
    base_precision: str | None = None  # zitdesk_base_precision (bf16/fp8/uint4)
    size_bytes: int = 0
    dtypes: dict[str, int] = field(default_factory=dict)
    ranks: dict[int, int] = field(default_factory=dict)  # rank → module count
    fused_qkv: bool = False  # the file stores fused qkv modules
    unsupported_keys: list[str] = field(default_factory=list)  # DoRA, bias deltas, Tucker cores
    # "file" (.alpha tensors), "adapter config" (PEFT lora_alpha), "weights" (none stored: the
    # weights carry the scale, applied as alpha = rank), "" (unknown rank)
    alpha_source: str = ""
    trained_alpha: float | None = None  # ss_network_alpha when the weights already hold it
    tool: str = ""  # the trainer that wrote the file, when it says so

    @property
    def dialect_label(self) -> str:
        """The key layout, named after the tool where the file says which one wrote it."""
        return f"{self.tool}, {self.dialect} keys" if self.tool else self.dialect

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def label(self) -> str:
        return ARCH_LABELS.get(self.arch, self.arch)


_TRIGGER_KEYS = (
    "trigger_word",
    "trigger_words",
    "trigger_phrase",
    "activation text",
    "activation_text",
    "ss_trigger_words",
    "instance_prompt",
)
_MAX_ALPHA_READS = 4096
_TOP_TAGS = 5


def _read_scalars(header: SafetensorsHeader, keys: list[str]) -> dict[str, float]:
    """Read the values of 1-element tensors (``.alpha``) straight from the file, torch-free."""
    fmt = {
        "F32": "<f",
        "F64": "<d",
        "F16": "<e",
        "I64": "<q",
        "I32": "<i",
        "I16": "<h",
        "I8": "<b",
        "U8": "<B",
    }
    out: dict[str, float] = {}
    wanted = []
    for k in keys[:_MAX_ALPHA_READS]:
        t = header.tensors[k]
        n = 1
        for s in t.shape:
            n *= s
        if n == 1 and (t.dtype in fmt or t.dtype == "BF16"):
            wanted.append((t.start, k, t))
    if not wanted:
        return out
    wanted.sort()
    try:
        with open(header.path, "rb") as fh:
            for start, k, t in wanted:
                fh.seek(header.data_offset + start)
                raw = fh.read(t.end - t.start)
                if len(raw) != t.end - t.start:
                    continue
                if t.dtype == "BF16":
                    val = struct.unpack("<f", b"\x00\x00" + raw)[0]
                else:
                    val = struct.unpack(fmt[t.dtype], raw)[0]
                if math.isfinite(val):
                    out[k] = float(val)
    except OSError:
        return out
    return out


def _parse_json(text: str, limit: int = 2_000_000) -> Any:
    if not text or len(text) > limit or text[:1] not in '{["':
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _find_trigger_in(obj: Any, depth: int = 0) -> list[str]:
    """Trigger words nested in a JSON training config (ai-toolkit stores its job config)."""
    if depth > 6:
        return []
    found: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str) and k.lower() in (
                "trigger_word",
                "trigger_words",
                "trigger_phrase",
            ):
                found += _as_words(v)
            elif isinstance(v, (dict, list)):
                found += _find_trigger_in(v, depth + 1)
    elif isinstance(obj, list):
        for v in obj[:50]:
            found += _find_trigger_in(v, depth + 1)
    return found


def _as_words(v: Any) -> list[str]:
    if isinstance(v, str):
        parsed = _parse_json(v) if v[:1] in '["' else None
        if parsed is not None and parsed != v:
            return _as_words(parsed)
        return [v.strip()] if v.strip() else []
    if isinstance(v, list):
        return [str(x).strip() for x in v if isinstance(x, (str, int, float)) and str(x).strip()]
    return []


def extract_trigger_words(metadata: Mapping[str, str]) -> list[tuple[str, str]]:
    """Trigger words with their source, strongest source first, de-duplicated case-insensitively.

    Sources: ``modelspec.trigger_phrase``; explicit keys (``trigger_word``, ``activation text`` …);
    trigger words inside JSON training configs (ai-toolkit); the top ``ss_tag_frequency`` tags.
    """
    out: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(word: str, source: str) -> None:
        w = word.strip()
        if w and w.lower() not in seen and len(w) <= 200:
            seen.add(w.lower())
            out.append((w, source))

    lower = {k.lower(): k for k in metadata}
    if "modelspec.trigger_phrase" in lower:
        k = lower["modelspec.trigger_phrase"]
        for w in _as_words(metadata[k]):
            add(w, k)
    for tk in _TRIGGER_KEYS:
        if tk in lower:
            k = lower[tk]
            for w in _as_words(metadata[k]):
                add(w, k)
    for k, v in metadata.items():
        if k in ("ss_tag_frequency",) or not isinstance(v, str) or v[:1] != "{":
            continue
        parsed = _parse_json(v)
        if parsed is not None:
            for w in _find_trigger_in(parsed):
                add(w, f"{k}:trigger_word")
    freq = _parse_json(metadata.get("ss_tag_frequency", ""))
    if isinstance(freq, dict):
        counts: Counter[str] = Counter()
        for tags in freq.values():
            if isinstance(tags, dict):
                for tag, n in tags.items():
                    if isinstance(n, (int, float)) and isinstance(tag, str):
                        counts[tag.strip()] += int(n)
        for tag, _n in counts.most_common(_TOP_TAGS):
            add(tag, "ss_tag_frequency")
    return out


def adapter_metadata(metadata: Mapping[str, str]) -> dict[str, Any] | None:
    """The PEFT config diffusers stores in ``lora_adapter_metadata`` (``transformer.`` prefix removed)."""
    raw = _parse_json(metadata.get("lora_adapter_metadata", ""))
    if not isinstance(raw, dict):
        return None
    cfg: dict[str, Any] = {}
    for k, v in raw.items():
        if not isinstance(k, str):
            continue
        if k.startswith("transformer."):
            cfg[k[len("transformer.") :]] = v
        elif "." not in k:
            cfg.setdefault(k, v)
    return cfg or None


def _float_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _pair_fits(a: tuple[int, ...] | None, b: tuple[int, ...] | None) -> bool:
    if not a or not b:
        return False
    rows_a = a[0]
    cols_b = math.prod(b[1:]) if len(b) > 1 else 1
    return rows_a >= 1 and cols_b == rows_a


def inspect_header(header: SafetensorsHeader) -> LoraInfo:
    """Build a :class:`LoraInfo` from an already parsed header."""
    keys = header.keys()
    shapes = {k: t.shape for k, t in header.tensors.items()}
    arch = detect_arch(keys, shapes)
    # The dialect describes the keys that will be used: stray text-encoder or junk keys in a
    # Z-Image file are reported as unknown keys, not as a "mixed" dialect.
    used = [k for k in keys if normalize_key(k) is not None] if arch == "zimage" else []
    dialect = detect_dialect(used or keys)
    meta = dict(header.metadata)
    targets: set[str] = set()
    unknown: list[str] = []
    ranks: Counter[int] = Counter()
    alpha_keys: list[str] = []
    fused = False
    unsupported: list[str] = []
    modules: dict[str, list[str]] = {}  # module → its keys
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}  # module → lora_A/lora_B shapes
    for k in keys:
        nk = normalize_key(k) if arch in ("zimage", "unknown") else None
        if nk is None:
            unknown.append(k)
            continue
        module, part = nk
        if part not in SUPPORTED_PARTS:
            unsupported.append(k)
            continue
        modules.setdefault(module, []).append(k)
        shp = shapes[k]
        if part in ("lora_A", "lora_B"):
            pairs.setdefault(module, {})[part] = shp
        if part == "lora_A" and len(shp) >= 1:
            ranks[int(shp[0])] += 1
        elif part in ("lokr_w1_b", "lokr_w2_b", "hada_w1_b") and len(shp) >= 1:
            ranks[int(shp[0])] += 1
        elif part == "alpha":
            alpha_keys.append(k)
    # The loader's rule for A/B pairs (apply.load_normalized): both present, each flattened to
    # 2-D, B's columns = A's rows ≥ 1. A module that breaks it is skipped there as incomplete,
    # so it is no target here either (what inspect counts, generate loads).
    for module, keys_of in modules.items():
        pair = pairs.get(module)
        if pair is not None and not _pair_fits(pair.get("lora_A"), pair.get("lora_B")):
            unknown.extend(keys_of)
            continue
        if QKV_MARKER in module:
            fused = True
        targets.update(expand_module(module))
    if arch not in ("zimage", "unknown"):
        targets = set()
    rank = ranks.most_common(1)[0][0] if ranks else None
    if rank is None:
        dim = _float_or_none(meta.get("ss_network_dim"))
        rank = int(dim) if dim else None
    # Report the alpha that loading applies: stored .alpha tensors, else PEFT's adapter config,
    # else none is stored and the weights carry the scale (alpha = rank: the diffusers and kohya
    # convention). ss_network_alpha then only says what the run was trained with: OneTrainer's
    # default output and musubi files converted to diffusers keys fold it into lora_B.
    alpha: float | None = None
    alpha_source = ""
    trained_alpha = _float_or_none(meta.get("ss_network_alpha"))
    values = _read_scalars(header, alpha_keys)
    if values:
        alpha, alpha_source = Counter(values.values()).most_common(1)[0][0], "file"
        trained_alpha = None
    else:
        cfg = adapter_metadata(meta)
        if cfg is not None and _float_or_none(cfg.get("lora_alpha")) is not None:
            alpha, alpha_source = _float_or_none(cfg.get("lora_alpha")), "adapter config"
            trained_alpha = None
        elif rank and not alpha_keys:  # (stored but unreadable alphas: unknown, not "rank")
            alpha, alpha_source = float(rank), "weights"
    base_version = meta.get("ss_base_model_version") or meta.get("modelspec.architecture") or None
    return LoraInfo(
        path=str(header.path),
        arch=arch,
        dialect=dialect,
        rank=rank,
        alpha=alpha,
        n_tensors=len(keys),
        target_modules=sorted(targets),
        unknown_keys=unknown,
        metadata=meta,
        trigger_words=extract_trigger_words(meta),
        base_model_version=base_version,
        base_precision=meta.get("zitdesk_base_precision") or None,
        size_bytes=header.file_size,
        dtypes=header.dtypes(),
        ranks=dict(ranks),
        fused_qkv=fused,
        unsupported_keys=unsupported,
        alpha_source=alpha_source,
        trained_alpha=trained_alpha,
        tool=detect_tool(meta),
    )


def detect_tool(meta: dict[str, str]) -> str:
    """The trainer that wrote a LoRA, from the metadata keys each one leaves (or "")."""
    if any(k.startswith("ot_") for k in meta):  # ot_branch / ot_revision / ot_config
        return "OneTrainer"
    if any(k.startswith("zitdesk_") for k in meta):
        return "zitdesk"
    software = meta.get("software", "")
    if "ai-toolkit" in software or "ai_toolkit" in software:
        return "ai-toolkit"
    module = meta.get("ss_network_module", "")
    if "musubi" in module or module.startswith("networks.lora_") and "zimage" in module:
        return "musubi-tuner"
    if any(k.startswith("ss_") for k in meta):
        return "kohya"
    return ""


def read_lora_header(path: str | Path) -> SafetensorsHeader:
    """Parse a LoRA file's header; every failure is a :class:`LoraError` with a plain message
    (pickles such as ``.ckpt``/``.pt``, GGUF, truncated or hostile files, files without tensors)."""
    p = Path(path)
    if p.suffix.lower() == ".gguf":
        raise LoraError(f"{p.name} is a GGUF file; LoRAs must be .safetensors files.")
    try:
        header = read_header(p)
    except FileFormatError as exc:
        raise LoraError(str(exc)) from exc
    if not header.tensors:
        raise LoraError(f"{p.name} holds no tensors; it is not a LoRA.")
    return header


def inspect_lora(path: str | Path) -> LoraInfo:
    """Inspect a LoRA file from its header only (plus the few bytes of its scalar ``.alpha``
    tensors). Raises :class:`LoraError` with a plain message for pickles (``.ckpt``/``.pt``),
    truncated or otherwise unreadable files."""
    return inspect_header(read_lora_header(path))


# ----------------------------------------------------------------------------------------------
# Coverage
# ----------------------------------------------------------------------------------------------


@dataclass
class Coverage:
    """How a LoRA's target modules line up with a model."""

    matched: int  # file modules that exist in the model
    total_in_file: int  # file modules (qkv expanded)
    missing_in_model: list[str]  # file modules the model does not have
    unknown_keys: list[str]  # keys that name no Z-Image module
    percent: float  # matched / total_in_file × 100
    model_targets: int = 0  # LoRA-able modules of the model (for "covers N of M")

    @property
    def badge(self) -> str:
        return f"{self.matched}/{self.total_in_file}"


def coverage(info: LoraInfo, model_module_names: Iterable[str]) -> Coverage:
    """Compare ``info.target_modules`` with the model's Linear module names."""
    names = set(model_module_names)
    matched = [m for m in info.target_modules if m in names]
    missing = [m for m in info.target_modules if m not in names]
    total = len(info.target_modules)
    pct = round(100.0 * len(matched) / total, 1) if total else 0.0
    return Coverage(
        len(matched), total, missing, list(info.unknown_keys), pct, len(expected_targets(names))
    )


def compatibility(info: LoraInfo, cov: Coverage) -> tuple[bool, str]:
    """``(compatible, plain sentence)`` for a library badge or the CLI."""
    if info.arch in FOREIGN_ARCHS:
        return False, foreign_message(info.arch)
    if info.dialect == "unknown" or cov.total_in_file == 0:
        return False, (
            f"{info.name} has no LoRA keys that zitdesk recognises for Z-Image; it is not a "
            "Z-Image LoRA or uses an unsupported format."
        )
    if cov.matched == 0:
        return False, (
            f"None of the {cov.total_in_file} modules in {info.name} exist in this model; it was "
            "made for a different model size or version."
        )
    parts = [
        f"Z-Image LoRA ({info.dialect_label}), loads {cov.matched}/{cov.total_in_file} modules"
    ]
    if cov.missing_in_model:
        parts.append(
            f"{len(cov.missing_in_model)} modules are not in this model and will be skipped"
        )
    if info.unknown_keys:
        parts.append(f"{len(info.unknown_keys)} unrecognised keys will be skipped")
    if info.unsupported_keys:
        parts.append(
            f"{len(info.unsupported_keys)} keys use features zitdesk does not apply (DoRA "
            "magnitudes, bias deltas), so results may differ from the trainer's"
        )
    return True, "; ".join(parts) + "."


def value_verdict(header: SafetensorsHeader, info: LoraInfo, message: str) -> tuple[bool, str]:
    """A compatible file's verdict after a bounded look at its values
    (:func:`zitdesk.lora.values.nonfinite_modules`): refused when every module holds NaN or
    infinite values (as generation refuses it), else ``message`` naming the modules it skips."""
    from zitdesk.lora.values import damaged_message, nonfinite_modules

    check = nonfinite_modules(header)
    if check.all_nonfinite:
        return False, damaged_message(info.name)
    if check.nonfinite:
        n = len(check.nonfinite)
        return True, message.rstrip(".") + (
            f"; {n} {'module holds' if n == 1 else 'modules hold'} NaN or infinite values "
            "and will be skipped."
        )
    return True, message


def inspect_json(
    path: str | Path, model_module_names: Iterable[str] | None = None
) -> dict[str, Any]:
    """The document printed by ``zitdesk lora inspect FILE --json``.

    Coverage is computed against ``model_module_names`` (the loaded transformer's Linear names)
    or, when None, against the real Z-Image Turbo module set (:func:`full_size_linear_names`).
    """
    header = read_lora_header(path)
    info = inspect_header(header)
    against = "model" if model_module_names is not None else "z-image-turbo"
    names = set(model_module_names) if model_module_names is not None else full_size_linear_names()
    cov = coverage(info, names)
    ok, message = compatibility(info, cov)
    if ok:
        ok, message = value_verdict(header, info, message)
    meta = {
        k: (v if len(v) <= 4000 else v[:4000] + f"… ({len(v):,} characters)")
        for k, v in info.metadata.items()
    }
    return {
        "path": info.path,
        "file_name": info.name,
        "size_bytes": info.size_bytes,
        "arch": info.arch,
        "arch_label": info.label,
        "dialect": info.dialect,
        "dialect_label": info.dialect_label,
        "tool": info.tool,
        "rank": info.rank,
        "ranks": {str(k): v for k, v in sorted(info.ranks.items())},
        "alpha": info.alpha,
        "alpha_source": info.alpha_source,
        "trained_alpha": info.trained_alpha,
        "n_tensors": info.n_tensors,
        "dtypes": info.dtypes,
        "target_count": len(info.target_modules),
        "fused_qkv": info.fused_qkv,
        "coverage": {
            "against": against,
            "matched": cov.matched,
            "total_in_file": cov.total_in_file,
            "percent": cov.percent,
            "model_targets": cov.model_targets,
            "missing_in_model": cov.missing_in_model[:50],
            "missing_count": len(cov.missing_in_model),
        },
        "base_model_version": info.base_model_version,
        "base_precision": info.base_precision,
        "has_metadata": bool(info.metadata),
        "metadata": meta,
        "trigger_words": [{"word": w, "source": s} for w, s in info.trigger_words],
        "unknown_keys": info.unknown_keys[:50],
        "unknown_key_count": len(info.unknown_keys),
        "unsupported_keys": info.unsupported_keys[:50],
        "unsupported_key_count": len(info.unsupported_keys),
        "compatible": ok,
        "message": message,
    }


def info_dict(info: LoraInfo) -> dict[str, Any]:
    """Plain-dict form of a :class:`LoraInfo` (JSON-safe)."""
    d = asdict(info)
    d["trigger_words"] = [list(t) for t in info.trigger_words]
    d["ranks"] = {str(k): v for k, v in info.ranks.items()}
    return d
