"""Sidecar files beside a LoRA: one reader for every dialect in circulation (Qt-free).

A LoRA ``name.safetensors`` may come with any of these, written by other tools:

=====================  ==================================  =============================================
file                   written by                          fields we use
=====================  ==================================  =============================================
``name.json``          A1111 / Forge "edit metadata"       ``activation text``, ``preferred weight``,
                                                           ``description``, ``notes``, ``sd version``,
                                                           ``negative text``
``name.civitai.info``  Civitai Helper (model-version API)  ``trainedWords``, ``baseModel``, ``name``,
                                                           ``model.name``, ``description`` (HTML),
                                                           ``files[].hashes.SHA256``, ``creator``
``name.cm-info.json``  StabilityMatrix (ConnectedModel)    ``TrainedWords``, ``BaseModel``,
                                                           ``ModelName``, ``VersionName``,
                                                           ``ModelDescription``, ``Hashes.SHA256``
``name.metadata.json`` ComfyUI LoRA Manager                ``model_name``, ``base_model``, ``notes``,
                                                           ``civitai.trainedWords``, ``usage_tips``
``name.swarm.json``    SwarmUI                             ``modelspec.*`` (title, author, description,
                                                           trigger_phrase, thumbnail, architecture …)
=====================  ==================================  =============================================

Every sidecar is untrusted text: files larger than :data:`MAX_SIDECAR_BYTES`, invalid JSON or
unexpected types become a per-sidecar ``error`` string and never stop a scan. Civitai
descriptions are HTML; :func:`html_to_text` turns them into plain text (the UI never renders any
of these strings as rich text).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

#: Sidecar suffixes (lower case) → kind, in the order they are reported.
SIDECAR_SUFFIXES: dict[str, str] = {
    ".json": "a1111",
    ".civitai.info": "civitai",
    ".cm-info.json": "cm-info",
    ".metadata.json": "lora-manager",
    ".swarm.json": "swarm",
}
KIND_LABELS = {
    "a1111": "A1111/Forge .json",
    "civitai": ".civitai.info",
    "cm-info": "StabilityMatrix .cm-info.json",
    "lora-manager": "LoRA Manager .metadata.json",
    "swarm": "SwarmUI .swarm.json",
}

#: Larger sidecars are refused (a .swarm.json may hold an embedded thumbnail, hence the margin).
MAX_SIDECAR_BYTES = 16 * 1024 * 1024
_MAX_TEXT = 20_000
_MAX_WORDS = 50


@dataclass
class Sidecar:
    """What one sidecar file says, normalised. Empty fields mean "not stated"."""

    kind: str
    path: str
    error: str = ""
    title: str = ""
    author: str = ""
    description: str = ""
    trigger_words: list[str] = field(default_factory=list)
    preferred_weight: float | None = None
    base_model: str = ""
    notes: str = ""
    negative_text: str = ""
    tags: list[str] = field(default_factory=list)
    url: str = ""
    claimed_sha256: str = ""
    thumbnail: str = ""  # a data: URI (SwarmUI), decoded by zitdesk.library.previews
    fields: dict[str, str] = field(
        default_factory=dict
    )  # flat plain-text view for the details pane

    @property
    def label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    def to_dict(self, include_thumbnail: bool = False) -> dict[str, Any]:
        d = asdict(self)
        if not include_thumbnail:
            d["thumbnail"] = (
                f"<embedded image, {len(self.thumbnail):,} characters>" if self.thumbnail else ""
            )
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sidecar:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in ("br", "p", "div", "li", "h1", "h2", "h3", "h4", "tr"):
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("• ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(text: str) -> str:
    """Plain text from a (possibly HTML) description; never raises."""
    if "<" not in text and "&" not in text:
        return text.strip()
    try:
        p = _TextExtractor()
        p.feed(text)
        p.close()
        out = "".join(p.parts)
    except Exception:  # noqa: BLE001 - hostile markup: fall back to the escaped-free raw text
        out = re.sub(r"<[^>]*>", " ", text)
        out = html.unescape(out)
    out = re.sub(r"[ \t]+", " ", out)
    out = re.sub(r"\n\s*\n\s*\n+", "\n\n", out)
    return out.strip()


def _s(v: Any, limit: int = _MAX_TEXT) -> str:
    """A value as a short plain string ('' for None/containers)."""
    if v is None or isinstance(v, (dict, list)):
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    s = str(v).strip()
    return s if len(s) <= limit else s[:limit] + f"… ({len(s):,} characters)"


def _words(v: Any) -> list[str]:
    """Trigger words from a string ("a, b" is ONE phrase unless it came as a list) or a list."""
    out: list[str] = []
    if isinstance(v, str):
        if v.strip():
            out.append(v.strip())
    elif isinstance(v, list):
        for x in v[:_MAX_WORDS]:
            if isinstance(x, (str, int, float)) and not isinstance(x, bool) and str(x).strip():
                out.append(str(x).strip())
    return [w[:300] for w in out]


def _weight(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, str):
        try:
            parsed = json.loads(v) if v.strip()[:1] == "{" else None
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return _weight(parsed.get("strength", parsed.get("weight")))
        try:
            v = float(v)
        except ValueError:
            return None
    if isinstance(v, dict):
        return _weight(v.get("strength", v.get("weight")))
    if isinstance(v, (int, float)):
        f = float(v)
        if -10.0 <= f <= 10.0:
            return f
    return None


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def _first(*values: Any) -> str:
    for v in values:
        s = _s(v)
        if s:
            return s
    return ""


def _tags(v: Any) -> list[str]:
    if isinstance(v, str):
        return [t.strip() for t in v.split(",") if t.strip()][:_MAX_WORDS]
    if isinstance(v, list):
        return [
            str(t).strip() for t in v[:_MAX_WORDS] if isinstance(t, (str, int)) and str(t).strip()
        ]
    return []


def _flatten(
    doc: Any, prefix: str = "", out: dict[str, str] | None = None, depth: int = 0
) -> dict[str, str]:
    """A flat ``{dotted key: text}`` view for the details pane (bounded)."""
    out = {} if out is None else out
    if len(out) >= 200 or depth > 4:
        return out
    if isinstance(doc, dict):
        for k, v in doc.items():
            _flatten(
                v,
                f"{prefix}{k}." if isinstance(v, (dict, list)) else f"{prefix}{k}",
                out,
                depth + 1,
            )
    elif isinstance(doc, list):
        if all(not isinstance(x, (dict, list)) for x in doc):
            out[prefix.rstrip(".")] = ", ".join(_s(x, 500) for x in doc[:100])
        else:
            for i, x in enumerate(doc[:10]):
                _flatten(x, f"{prefix}{i}.", out, depth + 1)
    else:
        key = prefix.rstrip(".") or "value"
        text = _s(doc, 2000)
        if key.endswith("thumbnail") and text.startswith("data:"):
            text = f"<embedded image, {len(str(doc)):,} characters>"
        out[key] = text
    return out


def _civitai_sha(files: Any) -> str:
    if isinstance(files, list):
        for f in files[:20]:
            sha = _get(f, "hashes", "SHA256")
            if isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha):
                return sha.lower()
    return ""


def _civitai_url(model_id: Any, version_id: Any) -> str:
    if isinstance(model_id, int) and not isinstance(model_id, bool):
        url = f"https://civitai.com/models/{model_id}"
        if isinstance(version_id, int) and not isinstance(version_id, bool):
            url += f"?modelVersionId={version_id}"
        return url
    return ""


def _fill(sc: Sidecar, doc: dict[str, Any]) -> None:
    kind = sc.kind
    if kind == "a1111":
        sc.description = html_to_text(_s(doc.get("description")))
        sc.trigger_words = _words(doc.get("activation text"))
        sc.preferred_weight = _weight(doc.get("preferred weight"))
        if sc.preferred_weight == 0.0:  # A1111 writes 0 for "not set"
            sc.preferred_weight = None
        sc.notes = _s(doc.get("notes"))
        sc.negative_text = _s(doc.get("negative text"))
        sv = _s(doc.get("sd version"))
        sc.base_model = "" if sv.lower() in ("", "unknown") else sv
    elif kind == "civitai":
        model = doc.get("model") if isinstance(doc.get("model"), dict) else {}
        mname, vname = _s(model.get("name")), _s(doc.get("name"))
        sc.title = f"{mname} ({vname})" if mname and vname and vname != mname else (mname or vname)
        sc.description = html_to_text(_first(doc.get("description"), model.get("description")))
        sc.trigger_words = _words(doc.get("trainedWords"))
        sc.base_model = _s(doc.get("baseModel"))
        sc.author = _first(_get(doc, "creator", "username"), _get(model, "creator", "username"))
        sc.tags = _tags(model.get("tags"))
        sc.claimed_sha256 = _civitai_sha(doc.get("files"))
        sc.url = _civitai_url(doc.get("modelId"), doc.get("id"))
    elif kind == "cm-info":
        mname, vname = _s(doc.get("ModelName")), _s(doc.get("VersionName"))
        user_title = _s(doc.get("UserTitle"))
        sc.title = user_title or (
            f"{mname} ({vname})" if mname and vname and vname != mname else (mname or vname)
        )
        sc.description = html_to_text(
            _first(doc.get("ModelDescription"), doc.get("VersionDescription"))
        )
        sc.trigger_words = _words(doc.get("TrainedWords"))
        sc.base_model = _s(doc.get("BaseModel"))
        sc.tags = _tags(doc.get("Tags"))
        sha = _get(doc, "Hashes", "SHA256")
        sc.claimed_sha256 = (
            sha.lower() if isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha) else ""
        )
        sc.url = _s(doc.get("SourceUrl")) or _civitai_url(doc.get("ModelId"), doc.get("VersionId"))
    elif kind == "lora-manager":
        civ = doc.get("civitai") if isinstance(doc.get("civitai"), dict) else {}
        sc.title = _first(doc.get("model_name"), _get(civ, "model", "name"))
        sc.description = html_to_text(_first(doc.get("modelDescription"), civ.get("description")))
        sc.trigger_words = _words(civ.get("trainedWords")) or _words(doc.get("trigger_words"))
        sc.base_model = _first(doc.get("base_model"), civ.get("baseModel"))
        sc.notes = _s(doc.get("notes"))
        sc.tags = _tags(doc.get("tags"))
        sc.preferred_weight = _weight(doc.get("usage_tips"))
        sha = doc.get("sha256")
        sc.claimed_sha256 = (
            sha.lower() if isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha) else ""
        )
        sc.url = _civitai_url(civ.get("modelId"), civ.get("id"))
    elif kind == "swarm":
        sc.title = _s(doc.get("modelspec.title"))
        sc.author = _s(doc.get("modelspec.author"))
        sc.description = html_to_text(_s(doc.get("modelspec.description")))
        sc.trigger_words = _words(doc.get("modelspec.trigger_phrase"))
        sc.base_model = _s(doc.get("modelspec.architecture"))
        sc.tags = _tags(doc.get("modelspec.tags"))
        sc.preferred_weight = _weight(doc.get("modelspec.preferred_weight"))
        thumb = doc.get("modelspec.thumbnail")
        if isinstance(thumb, str) and thumb.startswith("data:image/"):
            sc.thumbnail = thumb


def read_sidecar(path: str | Path, kind: str) -> Sidecar:
    """Read one sidecar; problems become ``Sidecar.error`` (never an exception)."""
    p = Path(path)
    sc = Sidecar(kind=kind, path=str(p))
    try:
        size = p.stat().st_size
        if size > MAX_SIDECAR_BYTES:
            sc.error = f"{p.name} is too large to be a metadata file ({size:,} bytes); ignored."
            return sc
        raw = p.read_bytes()
    except OSError as exc:
        sc.error = f"Cannot read {p.name}: {exc.strerror or exc}."
        return sc
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        sc.error = f"{p.name} is not valid JSON; ignored."
        return sc
    if not isinstance(doc, dict):
        sc.error = f"{p.name} does not hold a JSON object; ignored."
        return sc
    try:
        _fill(sc, doc)
        sc.fields = _flatten(doc)
    except Exception as exc:  # noqa: BLE001 - an unexpected shape must not stop the scan
        sc.error = f"{p.name} has an unexpected layout ({type(exc).__name__}); ignored."
    return sc


def sidecar_paths(
    lora_path: str | Path, names: dict[str, str] | None = None
) -> list[tuple[str, Path]]:
    """``(kind, path)`` of the sidecars that exist for ``lora_path``.

    ``names`` maps lower-case file names of the LoRA's folder to their real names (a scan lists
    each folder once); without it the folder is listed here.
    """
    p = Path(lora_path)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    if names is None:
        try:
            names = {n.lower(): n for n in (e.name for e in p.parent.iterdir())}
        except OSError:
            return []
    out = []
    for suffix, kind in SIDECAR_SUFFIXES.items():
        real = names.get((stem + suffix).lower())
        if real is not None:
            out.append((kind, p.parent / real))
    return out


def read_sidecars(lora_path: str | Path, names: dict[str, str] | None = None) -> list[Sidecar]:
    """Every sidecar of ``lora_path``, read and normalised (see :func:`read_sidecar`)."""
    return [read_sidecar(path, kind) for kind, path in sidecar_paths(lora_path, names)]


def write_a1111_json(
    lora_path: str | Path,
    *,
    activation_text: str | None = None,
    preferred_weight: float | None = None,
    notes: str | None = None,
    description: str | None = None,
) -> Path:
    """Write (merge into) the A1111/Forge ``name.json`` sidecar, atomically.

    Only the given fields change; other keys already in the file are kept. The LoRA itself is
    never touched. Raises ``OSError`` if the folder is not writable and ``ValueError`` if an
    existing ``name.json`` is not a JSON object (it is left as it is).
    """
    from zitdesk.io import atomic_write

    p = Path(lora_path)
    target = (
        p.with_name(p.name[: -len(p.suffix)] + ".json")
        if p.suffix
        else p.with_name(p.name + ".json")
    )
    doc: dict[str, Any] = {}
    if target.exists():
        doc = json.loads(target.read_text(encoding="utf-8-sig"))
        if not isinstance(doc, dict):
            raise ValueError(f"{target.name} is not a JSON object; not overwriting it.")
    if activation_text is not None:
        doc["activation text"] = activation_text
    if preferred_weight is not None:
        doc["preferred weight"] = preferred_weight
    if notes is not None:
        doc["notes"] = notes
    if description is not None:
        doc["description"] = description
    atomic_write(target, json.dumps(doc, indent=4, ensure_ascii=False))
    return target
