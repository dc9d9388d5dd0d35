"""Reading, validating and normalising one image; thumbnails and perceptual hashes.

Pillow + numpy only (no Qt, no torch), safe on worker threads: every function works on its own
``Image`` objects and never changes Pillow's global settings.

**What import keeps and what it converts** (the normalisation rules, documented for users):

* Kept **byte for byte**: JPEG (and phone MPO), PNG, WebP and BMP files whose pixels are 8-bit
  RGB/RGBA/L/LA/P/1 and whose EXIF orientation is 1 (or absent). These are exactly what the
  trainer (:mod:`zitdesk.train.dataset`) and ai-toolkit / kohya / OneTrainer read as they are.
* **Converted** (decoded, fixed, re-saved; the report says why): TIFF and GIF (first frame) →
  PNG; CMYK → RGB; 16-bit or float greyscale → 8-bit; any EXIF rotation applied to the pixels
  (a JPEG is re-saved as JPEG quality 95 with 4:4:4 chroma and its ICC profile, anything else as
  PNG), because not every trainer honours the EXIF tag.
* **Rejected** with a reason: not an image, a format outside the list above, corrupt or
  truncated data (the whole image is decoded to find out), more pixels than ``max_pixels``
  (checked from the header before decoding: a decompression bomb cannot exhaust memory).

The thumbnail is a JPEG of at most :data:`THUMB_SIDE` px; the perceptual hash is a 64-bit DCT
hash (pHash) of the thumbnail, so it is the same whether it was computed at import or later.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zitdesk.io import atomic_write, user_dirs

#: Pillow's own default bomb threshold (0.25 GiB of RGBA); larger images are rejected.
DEFAULT_MAX_PIXELS = 89_478_485
THUMB_SIDE = 256
THUMB_QUALITY = 85

#: Pillow format → extension when a file is kept as it is.
KEEP_FORMATS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp"}
CONVERT_FORMATS = {"TIFF", "GIF"}
FORMAT_EXTS = {
    "JPEG": {".jpg", ".jpeg", ".jpe", ".jfif"},
    "MPO": {".jpg", ".jpeg"},
    "PNG": {".png"},
    "WEBP": {".webp"},
    "BMP": {".bmp"},
}
_KEEP_MODES = {"RGB", "RGBA", "L", "LA", "P", "1"}
_ORIENT_TAG = 0x0112


class ImageRejected(Exception):
    """The file cannot become part of a dataset; ``str(exc)`` is the reason shown to the user."""


@dataclass
class Prepared:
    """An image ready to be written into a dataset.

    ``data`` is the exact bytes to write (the source bytes when ``converted`` is empty), ``ext``
    the extension those bytes need, ``sha256`` the hash of ``data``.
    """

    data: bytes
    ext: str
    width: int
    height: int
    sha256: str
    phash: int
    thumb_jpeg: bytes
    converted: str = ""
    notes: list[str] = field(default_factory=list)


def _orientation(im) -> int:
    try:
        return int(im.getexif().get(_ORIENT_TAG, 1) or 1)
    except Exception:  # noqa: BLE001 - broken EXIF: treat as not rotated (trainer does the same)
        return 1


def _open(data: bytes, max_pixels: int):
    """Open from bytes, check the pixel count from the header, decode fully. Returns the image."""
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        m = re.search(r"\((\d+) pixels\)", str(exc))
        claimed = f"{int(m.group(1)) / 1e6:.0f} MP" if m else "too many pixels"
        raise ImageRejected(
            f"decompression bomb: the header claims {claimed}, over the "
            f"{max_pixels / 1e6:.1f} MP limit"
        ) from None
    except UnidentifiedImageError:
        raise ImageRejected("not an image (no known image format)") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a rejection reason
        raise ImageRejected(f"unreadable image ({type(exc).__name__}: {exc})") from None
    w, h = im.size
    if w * h > max_pixels:
        raise ImageRejected(
            f"decompression bomb: {w}×{h} = {w * h / 1e6:.1f} MP is over the "
            f"{max_pixels / 1e6:.1f} MP limit"
        )
    if w < 1 or h < 1:
        raise ImageRejected("empty image (0 pixels)")
    return im


def _decode(im, data: bytes | None = None) -> None:
    """Decode every pixel (finds truncation); PNGs also get their chunk CRCs checked, since a
    damaged IDAT can still inflate to plausible garbage."""
    from PIL import Image

    if data is not None and im.format == "PNG":
        try:
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
        except Exception as exc:  # noqa: BLE001
            raise ImageRejected(f"corrupt image data ({exc})") from None
    try:
        im.load()
    except Exception as exc:  # noqa: BLE001
        msg = str(exc)
        if "truncated" in msg:
            raise ImageRejected("truncated image (the file ends before the picture does)") from None
        raise ImageRejected(f"corrupt image data ({type(exc).__name__}: {msg})") from None


def _to_8bit(im):
    """16-bit / 32-bit / float single-channel images → 8-bit L, scaled (Pillow would clip)."""
    from PIL import Image

    arr = np.asarray(im)
    if arr.dtype.kind == "f":
        hi = float(np.nanmax(arr)) if arr.size else 1.0
        scale = 255.0 if hi <= 1.0 else 1.0
        out = np.clip(np.nan_to_num(arr) * scale, 0, 255)
    else:
        hi = int(arr.max()) if arr.size else 0
        out = arr.astype(np.float64) / 257.0 if hi > 255 else arr
    return Image.fromarray(np.asarray(out).round().astype(np.uint8), "L")


def _normalise_pixels(im, notes: list[str]):
    """Return an image in a mode every trainer reads (RGB, RGBA, L, LA)."""
    mode = im.mode
    if mode in ("RGB", "RGBA", "L", "LA"):
        return im
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
        return im.convert("RGB")
    if mode.startswith("I") or mode == "F":
        notes.append(f"{'float' if mode == 'F' else '16-bit'} greyscale converted to 8-bit")
        return _to_8bit(im)
    if mode in ("P", "PA"):
        return im.convert("RGBA" if ("transparency" in im.info or mode == "PA") else "RGB")
    if mode == "1":
        return im.convert("L")
    notes.append(f"{mode} converted to RGB")
    return im.convert("RGB")


def thumbnail_image(im, copy: bool = True):
    """An RGB thumbnail (≤ THUMB_SIDE), alpha composited on mid grey; ``im`` is changed only
    when ``copy`` is False (saves a full-size copy when the caller is done with it)."""
    from PIL import Image

    t = im.copy() if copy else im
    t.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    if t.mode in ("RGBA", "LA", "PA") or (t.mode == "P" and "transparency" in t.info):
        rgba = t.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        t = Image.alpha_composite(bg, rgba)
    if t.mode == "I;16" or t.mode.startswith("I") or t.mode == "F":
        t = _to_8bit(t)
    return t.convert("RGB")


_DCT_N = 32
_DCT = np.cos(np.pi / _DCT_N * (np.arange(_DCT_N)[:, None]) * (np.arange(_DCT_N)[None, :] + 0.5))


def phash(thumb) -> int:
    """64-bit DCT perceptual hash of an image (the usual pHash: 32×32 grey, 8×8 low frequencies,
    bits above the median). Images a few bits apart look alike."""
    from PIL import Image

    g = thumb.convert("L").resize((_DCT_N, _DCT_N), Image.Resampling.LANCZOS)
    a = np.asarray(g, dtype=np.float64)
    d = _DCT @ a @ _DCT.T
    low = d[:8, :8].flatten()
    med = np.median(low[1:])
    bits = low > med
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def thumb_jpeg(thumb) -> bytes:
    buf = io.BytesIO()
    thumb.save(buf, "JPEG", quality=THUMB_QUALITY)
    return buf.getvalue()


def prepare(data: bytes, *, source_ext: str = "", max_pixels: int = DEFAULT_MAX_PIXELS) -> Prepared:
    """Validate ``data`` and return what to write into a dataset (see the module rules).

    Raises :class:`ImageRejected` with the user-facing reason.
    """
    from PIL import Image, ImageOps

    im = _open(data, max_pixels)
    fmt = im.format or ""
    if fmt not in KEEP_FORMATS and fmt not in CONVERT_FORMATS:
        raise ImageRejected(
            f"unsupported image format {fmt or 'unknown'} (use JPEG, PNG, WebP, BMP, TIFF or GIF)"
        )
    notes: list[str] = []
    n_frames = getattr(im, "n_frames", 1) or 1
    orient = _orientation(im)
    if fmt in ("JPEG", "MPO") and orient == 1 and im.mode != "CMYK":
        # Decoding at reduced scale still reads the whole stream, so truncation is caught.
        im.draft("RGB", (THUMB_SIDE * 2, THUMB_SIDE * 2))
    _decode(im, data)
    if fmt == "MPO" and n_frames > 1:
        notes.append("multi-picture JPEG: trainers use the first picture")
    elif n_frames > 1 and fmt != "GIF":
        notes.append(f"animated ({n_frames} frames): trainers use the first frame")
    if im.info.get("transparency") is not None or im.mode in ("RGBA", "LA", "PA"):
        notes.append("has transparency: the trainer composites it on white")

    keep = fmt in KEEP_FORMATS and im.mode in _KEEP_MODES and orient == 1
    if keep:
        w, h = im.size if fmt not in ("JPEG", "MPO") else Image.open(io.BytesIO(data)).size
        thumb = thumbnail_image(im, copy=False)
        return Prepared(
            data=data,
            ext=_keep_ext(fmt, source_ext),
            width=w,
            height=h,
            sha256=hashlib.sha256(data).hexdigest(),
            phash=phash(thumb),
            thumb_jpeg=thumb_jpeg(thumb),
            notes=notes,
        )

    reasons: list[str] = []
    if fmt in CONVERT_FORMATS:
        reasons.append(f"{fmt} saved as PNG" + (" (first frame)" if n_frames > 1 else ""))
    if orient != 1:
        reasons.append(f"EXIF orientation {orient} applied to the pixels")
        im = ImageOps.exif_transpose(im)
    before = len(notes)
    im = _normalise_pixels(im, notes)
    reasons.extend(notes[before:])
    del notes[before:]
    as_jpeg = fmt in ("JPEG", "MPO") and im.mode in ("RGB", "L")
    buf = io.BytesIO()
    if as_jpeg:
        icc = im.info.get("icc_profile")
        kw = {"icc_profile": icc} if icc else {}
        im.save(buf, "JPEG", quality=95, subsampling=0, **kw)
        ext = ".jpg"
    else:
        icc = im.info.get("icc_profile")
        kw = {"icc_profile": icc} if icc and im.mode in ("RGB", "RGBA") else {}
        im.save(buf, "PNG", compress_level=4, **kw)
        ext = ".png"
    out = buf.getvalue()
    width, height = im.size
    thumb = thumbnail_image(im, copy=False)
    return Prepared(
        data=out,
        ext=ext,
        width=width,
        height=height,
        sha256=hashlib.sha256(out).hexdigest(),
        phash=phash(thumb),
        thumb_jpeg=thumb_jpeg(thumb),
        converted="; ".join(reasons),
        notes=notes,
    )


def _keep_ext(fmt: str, source_ext: str) -> str:
    """The source's extension if it matches the content (case kept), else the format's."""
    if source_ext.lower() in FORMAT_EXTS.get(fmt, set()):
        return source_ext
    return KEEP_FORMATS[fmt]


@dataclass(frozen=True)
class Analysis:
    """Content facts about an image file already in a dataset (cached in the dataset index)."""

    sha256: str
    phash: int
    width: int
    height: int


def analyse_file(
    path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[Analysis, bytes]:
    """Hash, perceptual hash, size (after EXIF orientation) and thumbnail JPEG of a file."""
    from PIL import Image, ImageOps

    data = Path(path).read_bytes()
    im = _open(data, max_pixels)
    orient = _orientation(im)
    if im.format in ("JPEG", "MPO") and im.mode != "CMYK":
        im.draft("RGB", (THUMB_SIDE * 2, THUMB_SIDE * 2))
    _decode(im)
    w, h = Image.open(io.BytesIO(data)).size
    if orient in (5, 6, 7, 8):
        w, h = h, w
    if orient != 1:
        im = ImageOps.exif_transpose(im)
    if im.mode == "CMYK":
        im = im.convert("RGB")
    thumb = thumbnail_image(im, copy=False)
    return (Analysis(hashlib.sha256(data).hexdigest(), phash(thumb), w, h), thumb_jpeg(thumb))


# --- thumbnail disk cache ------------------------------------------------------------------------


def thumb_cache_dir() -> Path:

    return user_dirs()["cache"] / "thumbs"


def thumb_path(sha256: str, cache_dir: Path | None = None) -> Path:
    base = cache_dir if cache_dir is not None else thumb_cache_dir()
    return base / sha256[:2] / f"{sha256}-{THUMB_SIDE}.jpg"


def store_thumb(sha256: str, jpeg: bytes, cache_dir: Path | None = None) -> Path:
    """Write a thumbnail into the cache (temp + rename; no fsync: a cache can be rebuilt)."""
    target = thumb_path(sha256, cache_dir)
    if target.is_file():
        return target
    atomic_write(target, jpeg, durable=False)
    return target


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
