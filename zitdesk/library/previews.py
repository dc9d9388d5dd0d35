"""Preview images of a LoRA: files beside it and thumbnails embedded in metadata (Qt-free).

Conventions, in the order they win (the union of what A1111/Forge, Civitai Helper, SwarmUI,
StabilityMatrix and LoRA Manager write):

1. a preview the user chose in zitdesk (kept in zitdesk's own store, see ``store.py``);
2. ``name.preview.{png,jpg,jpeg,webp,gif}``;
3. ``name.{png,jpg,jpeg,webp,gif}``;
4. ``name.thumb.{png,jpg,jpeg,webp}``;
5. ``modelspec.thumbnail`` in the safetensors header (a ``data:image/...;base64,`` URI);
6. ``modelspec.thumbnail`` in a SwarmUI ``name.swarm.json``.

Embedded thumbnails are untrusted: :func:`decode_data_uri` accepts only PNG/JPEG/WebP/GIF data
whose magic bytes match, at most :data:`MAX_EMBEDDED_BYTES` once decoded. Decoded thumbnails are
written once to the cache folder so the UI can load every preview the same way, from a file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from zitdesk.io import atomic_write, user_dirs

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".gif")
PREVIEW_SUFFIXES: tuple[str, ...] = (
    tuple(".preview" + e for e in IMAGE_EXTS)
    + IMAGE_EXTS
    + tuple(".thumb" + e for e in IMAGE_EXTS if e != ".gif")
)
MAX_EMBEDDED_BYTES = 8 * 1024 * 1024

_MAGIC = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
}


def sniff_image(data: bytes) -> str | None:
    """``png``/``jpeg``/``webp``/``gif`` from magic bytes, else None."""
    for kind, magics in _MAGIC.items():
        if any(data.startswith(m) for m in magics):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def decode_data_uri(text: str, limit: int = MAX_EMBEDDED_BYTES) -> tuple[bytes, str] | None:
    """``(image bytes, ext)`` from a ``data:image/...;base64,`` URI, or None when it is not a
    well-formed, size-limited PNG/JPEG/WebP/GIF."""
    if not isinstance(text, str) or not text.startswith("data:image/"):
        return None
    head, sep, payload = text.partition(",")
    if not sep or ";base64" not in head.lower() or len(payload) > (limit * 4) // 3 + 8:
        return None
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not data or len(data) > limit:
        return None
    kind = sniff_image(data)
    if kind is None:
        return None
    return data, {"jpeg": ".jpg"}.get(kind, "." + kind)


def find_preview_file(lora_path: str | Path, names: dict[str, str] | None = None) -> Path | None:
    """The first preview image beside ``lora_path`` by the conventions above (2–4).

    ``names``: lower-case name → real name of the files in the LoRA's folder (from the scan).
    """
    p = Path(lora_path)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    if names is None:
        try:
            names = {e.name.lower(): e.name for e in p.parent.iterdir()}
        except OSError:
            return None
    for suffix in PREVIEW_SUFFIXES:
        real = names.get((stem + suffix).lower())
        if real is not None:
            return p.parent / real
    return None


def thumbs_dir() -> Path:
    return user_dirs()["cache"] / "library" / "thumbs"


def extract_embedded(
    lora_path: str | Path,
    mtime_ns: int,
    data_uri: str,
    tag: str = "header",
    dest_dir: Path | None = None,
) -> Path | None:
    """Decode ``data_uri`` and write it (once) to the thumbnail cache; returns the file or None."""
    decoded = decode_data_uri(data_uri)
    if decoded is None:
        return None
    data, ext = decoded
    key = hashlib.sha1(
        f"{Path(lora_path)}|{mtime_ns}|{tag}".encode("utf-8", "surrogatepass")
    ).hexdigest()[:20]
    target = (dest_dir or thumbs_dir()) / f"{key}{ext}"
    if not target.exists():
        try:
            atomic_write(target, data)
        except OSError:
            return None
    return target
