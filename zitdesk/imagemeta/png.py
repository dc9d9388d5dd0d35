"""PNG files: :func:`write_png` (the ``parameters`` and ``zitdesk`` chunks) and the text
chunk / EXIF UserComment readers that hand raw text to the parsers."""

from __future__ import annotations

import json
import logging
import struct
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zitdesk.errors import FileFormatError
from zitdesk.imagemeta._values import _loads
from zitdesk.imagemeta.a1111 import a1111_parameters
from zitdesk.imagemeta.types import CHUNK_VERSION, PARAMETERS_KEY, ZITDESK_KEY, ImageMeta
from zitdesk.io import atomic_save

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

log = logging.getLogger(__name__)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MAX_TEXT_BYTES = (
    32 * 1024 * 1024
)  # a text chunk (or its decompressed text) larger than this is skipped
_MAX_CHUNKS = 100_000


def _chunk_payload(meta: ImageMeta) -> dict[str, Any]:
    data = asdict(meta)
    request_json = data.pop("request_json")
    request: Any = None
    if request_json:
        request, ok = _loads(request_json)
        if not ok:
            log.warning("ImageMeta.request_json is not valid JSON; the request is not embedded")
    data["loras"] = [asdict(lo) for lo in meta.loras]
    return {"version": CHUNK_VERSION, "meta": data, "request": request}


_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}


def write_png(image: Image.Image, path: str | Path, meta: ImageMeta | None) -> Path:
    """Save ``image`` as a PNG at ``path`` (atomically) with the ``parameters`` and ``zitdesk``
    chunks; ``meta=None`` writes a PNG without any text (the "strip metadata" setting)."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    chunks = (
        ()
        if meta is None
        else (
            (PARAMETERS_KEY, a1111_parameters(meta)),
            (ZITDESK_KEY, json.dumps(_chunk_payload(meta), ensure_ascii=False, default=str)),
        )
    )
    for key, text in chunks:
        if text.isascii():
            info.add_text(key, text)
        else:
            info.add_itxt(key, text, lang="", tkey="")
    if image.mode not in _PNG_MODES:
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    return atomic_save(path, lambda tmp: image.save(tmp, format="PNG", pnginfo=info))


def _decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, _MAX_TEXT_BYTES)
    if inflater.unconsumed_tail:
        raise ValueError("decompressed text is too large")
    return out


def _decode_text_chunk(ctype: bytes, data: bytes) -> tuple[str, str]:
    key_raw, sep, rest = data.partition(b"\0")
    if not sep or not key_raw:
        raise ValueError("no keyword")
    key = key_raw.decode("latin-1")
    if ctype == b"tEXt":
        return key, _decode_text(rest)
    if ctype == b"zTXt":
        if not rest or rest[0] != 0:
            raise ValueError("unknown compression method")
        return key, _decode_text(_inflate(rest[1:]))
    # iTXt: flag, method, language\0, translated keyword\0, UTF-8 text
    if len(rest) < 2:
        raise ValueError("iTXt header is cut short")
    flag, method = rest[0], rest[1]
    parts = rest[2:].split(b"\0", 2)
    if len(parts) != 3:
        raise ValueError("iTXt header is cut short")
    body = parts[2]
    if flag:
        if method != 0:
            raise ValueError("unknown compression method")
        body = _inflate(body)
    return key, body.decode("utf-8", errors="replace")


def _read_png_text(path: Path) -> tuple[dict[str, str], list[str]]:
    """All text chunks of a PNG (first one wins per keyword), tolerating damage."""
    chunks: dict[str, str] = {}
    warnings: list[str] = []
    with open(path, "rb") as fh:
        fh.read(8)
        for _ in range(_MAX_CHUNKS):
            head = fh.read(8)
            if len(head) < 8:
                warnings.append("The PNG ends without an IEND chunk (file cut short?).")
                break
            length, ctype = struct.unpack(">I4s", head)
            if not ctype.isalpha() or length > 0x7FFFFFFF:
                warnings.append("The PNG has a damaged chunk header; stopped reading there.")
                break
            if ctype == b"IEND":
                break
            if ctype not in (b"tEXt", b"zTXt", b"iTXt"):
                fh.seek(length + 4, 1)
                continue
            name = ctype.decode("ascii")
            if length > _MAX_TEXT_BYTES:
                warnings.append(f"Skipped a {length}-byte {name} chunk (too large).")
                fh.seek(length + 4, 1)
                continue
            data = fh.read(length)
            crc = fh.read(4)
            if len(data) < length or len(crc) < 4:
                warnings.append(f"A {name} chunk is cut short (file truncated?).")
                break
            crc_ok = zlib.crc32(ctype + data) == int.from_bytes(crc, "big")
            try:
                key, text = _decode_text_chunk(ctype, data)
            except (ValueError, zlib.error) as exc:
                warnings.append(f"Skipped an unreadable {name} chunk ({exc}).")
                continue
            if not crc_ok:
                warnings.append(f"The {key!r} chunk has a bad checksum; its text may be damaged.")
            if key in chunks:
                warnings.append(f"The {key!r} chunk appears more than once; the first one is used.")
                continue
            chunks[key] = text
    return chunks, warnings


def _decode_user_comment(raw: Any) -> str:
    """EXIF UserComment: an 8-byte charset prefix, then the text (A1111: UTF-16 "UNICODE")."""
    if isinstance(raw, str):
        return raw.strip("\0")
    if not isinstance(raw, (bytes, bytearray)):
        return ""
    raw = bytes(raw)
    prefix, body = raw[:8], raw[8:]
    if prefix.startswith(b"UNICODE"):
        best, best_score = "", -1.0
        for encoding in ("utf-16-be", "utf-16-le"):
            try:
                text = body.decode(encoding)
            except UnicodeDecodeError:
                continue
            score = sum(ch.isascii() and (ch.isprintable() or ch in "\n\t") for ch in text) / max(
                len(text), 1
            )
            if score > best_score:
                best, best_score = text, score
        return best.strip("\0")
    if prefix.startswith(b"ASCII") or prefix == b"\0" * 8:
        return _decode_text(body).strip("\0")
    return _decode_text(raw).strip("\0")


def _read_other_image(path: Path) -> tuple[dict[str, str], list[str]]:
    """Text metadata of a non-PNG image (EXIF UserComment, JPEG comment, text info)."""
    from PIL import Image, UnidentifiedImageError

    chunks: dict[str, str] = {}
    warnings: list[str] = []
    try:
        img = Image.open(path)
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        ValueError,
        SyntaxError,
        EOFError,
        struct.error,
    ) as exc:
        raise FileFormatError(
            f"{path.name} is not an image zitdesk can read (PNG, JPEG or WebP expected)."
        ) from exc
    with img:
        for key, value in img.info.items():
            if isinstance(value, str):
                chunks.setdefault(str(key), value)
            elif key == "comment" and isinstance(value, (bytes, bytearray)):
                chunks.setdefault("comment", _decode_text(bytes(value)))
        try:
            exif = img.getexif()
            user_comment = exif.get_ifd(0x8769).get(0x9286)
            if user_comment:
                text = _decode_user_comment(user_comment)
                if text:
                    chunks.setdefault(PARAMETERS_KEY, text)
            # ComfyUI's WebP/animated savers put "prompt:{...}" / "workflow:{...}" in IFD0 strings.
            for tag in (0x010E, 0x010F, 0x0110):
                value = exif.get(tag)
                if isinstance(value, bytes):
                    value = _decode_text(value)
                if isinstance(value, str):
                    label, sep, rest = value.partition(":")
                    if sep and label.strip().lower() in ("prompt", "workflow"):
                        chunks.setdefault(label.strip().lower(), rest)
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types on damaged EXIF
            warnings.append(f"The EXIF data could not be read ({type(exc).__name__}).")
        comment = chunks.get("comment", "")
        if PARAMETERS_KEY not in chunks and "Steps:" in comment:
            chunks[PARAMETERS_KEY] = comment
    return chunks, warnings
