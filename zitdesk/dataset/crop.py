"""Cropping a dataset image, with the original kept and the trainer's bucket known in advance.

A crop rewrites the image file in place (same name, same format), so the caption sidecar stays
with it and every trainer reads the cropped pixels. Before the file is rewritten, the bytes it
had are kept in ``.zitdesk/crops/`` (hidden: trainers never read it) with a small JSON record
(image name, box, time); :func:`undo_crop` writes them back, :func:`original_of` finds the
oldest one kept for an image (the file as it was before its first crop). Every write goes
through :func:`zitdesk.io.atomic_write`.

Boxes are in the pixels of the image as shown (after its EXIF orientation). The saved crop has
no orientation tag (the pixels are upright); a JPEG is written at quality 95 with 4:4:4 chroma
and its ICC profile, as import does when it has to re-save one.

:func:`crop_bucket` is the bucket the trainer (:func:`zitdesk.train.dataset.bucket_for`) will
give the cropped region: the UI shows it while the box is dragged.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from zitdesk.dataset.fsnames import SaveFailed, shown
from zitdesk.errors import ZitdeskError
from zitdesk.io import atomic_write

CROPS_DIR = "crops"
META_DIR = ".zitdesk"

#: Aspect presets offered in the crop tool (None: free).
ASPECTS: dict[str, tuple[int, int] | None] = {
    "Free": None,
    "1:1": (1, 1),
    "4:3": (4, 3),
    "3:4": (3, 4),
    "3:2": (3, 2),
    "2:3": (2, 3),
    "16:9": (16, 9),
    "9:16": (9, 16),
}


class CropError(ZitdeskError):
    """A crop cannot be made (box outside the image, too small, unreadable file)."""


@dataclass(frozen=True)
class Box:
    """A crop rectangle in image pixels: ``left, top, width, height``."""

    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


@dataclass(frozen=True)
class CropDone:
    """A crop that was written: ``backup`` holds the bytes the file had before."""

    name: str
    box: Box
    backup: Path
    before: tuple[int, int]
    after: tuple[int, int]
    restored_from: Path | None = None  # a restore of an earlier copy, not a crop


def clamp_box(box: Box, width: int, height: int) -> Box:
    """``box`` moved and cut to lie inside a ``width × height`` image (at least 1×1)."""
    w = max(1, min(box.width, width))
    h = max(1, min(box.height, height))
    left = max(0, min(box.left, width - w))
    top = max(0, min(box.top, height - h))
    return Box(left, top, w, h)


def aspect_box(width: int, height: int, aspect: tuple[int, int] | None) -> Box:
    """The largest box of ``aspect`` (``(w, h)``) centred in the image; the whole image if None."""
    if aspect is None:
        return Box(0, 0, width, height)
    aw, ah = aspect
    if width * ah >= height * aw:  # the image is wider than the aspect: full height
        h = height
        w = max(1, min(width, round(height * aw / ah)))
    else:
        w = width
        h = max(1, min(height, round(width * ah / aw)))
    return Box((width - w) // 2, (height - h) // 2, w, h)


def fit_aspect(box: Box, aspect: tuple[int, int] | None, width: int, height: int) -> Box:
    """``box`` narrowed (or lowered) to ``aspect`` around its centre, inside the image."""
    if aspect is None:
        return clamp_box(box, width, height)
    inner = aspect_box(box.width, box.height, aspect)
    return clamp_box(
        Box(box.left + inner.left, box.top + inner.top, inner.width, inner.height), width, height
    )


def crop_bucket(box: Box, resolution: int) -> tuple[int, int] | None:
    """The bucket the trainer gives the cropped region at ``resolution`` (None: too small)."""
    from zitdesk.train.dataset import bucket_for

    return bucket_for(box.width, box.height, resolution)


def min_side() -> int:
    """The smallest crop side the trainer can use (one bucket step)."""
    from zitdesk.train.dataset import BUCKET_STEP

    return BUCKET_STEP


def _crops_dir(folder: Path) -> Path:
    return folder / META_DIR / CROPS_DIR


def _encode(im, fmt: str, info: dict) -> bytes:
    buf = io.BytesIO()
    icc = info.get("icc_profile")
    if fmt in ("JPEG", "MPO"):
        if im.mode not in ("RGB", "L"):
            im = im.convert("RGB")
        kw = {"icc_profile": icc} if icc else {}
        im.save(buf, "JPEG", quality=95, subsampling=0, **kw)
    elif fmt == "WEBP":
        im.save(buf, "WEBP", quality=95, method=4, **({"icc_profile": icc} if icc else {}))
    elif fmt == "BMP":
        im.save(buf, "BMP")
    else:
        kw = {"icc_profile": icc} if icc and im.mode in ("RGB", "RGBA") else {}
        im.save(buf, "PNG", optimize=False, **kw)
    return buf.getvalue()


def _cropped_bytes(src: bytes, box: Box, what: str) -> tuple[bytes, tuple[int, int]]:
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(src)) as im:
            fmt = im.format or "PNG"
            info = dict(im.info)
            im.load()
            up = ImageOps.exif_transpose(im)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is one sentence
        raise CropError(f"{what} cannot be read as an image ({exc}); it was not cropped.") from exc
    w, h = up.size
    if box.left < 0 or box.top < 0 or box.right > w or box.bottom > h:
        raise CropError(
            f"The crop box {box.width}×{box.height} at ({box.left}, {box.top}) lies outside "
            f"{what} ({w}×{h}); draw it inside the picture."
        )
    side = min_side()
    if box.width < side or box.height < side:
        raise CropError(
            f"A crop of {box.width}×{box.height} is too small to train on (at least "
            f"{side}×{side} px); draw a larger box."
        )
    out = up.crop((box.left, box.top, box.right, box.bottom))
    info.pop("exif", None)  # the pixels are upright now: no orientation tag
    return _encode(out, fmt, info), (w, h)


def crop_image(folder: str | Path, name: str, box: Box, *, source: Path | None = None) -> CropDone:
    """Crop ``folder/name`` to ``box`` in place, keeping its previous bytes in ``.zitdesk/crops``.

    ``source``: crop these bytes (a backup from an earlier :func:`crop_image`, for redo) instead
    of the current file; then no new backup is written. Raises :class:`CropError` (bad box or
    file) or :class:`~zitdesk.dataset.fsnames.SaveFailed` (the disk), each one sentence."""
    root = Path(folder)
    path = root / name
    what = shown(name)
    try:
        src = (source or path).read_bytes()
    except OSError as exc:
        raise CropError(
            f"{what} cannot be read ({exc.strerror or exc}); it was not cropped."
        ) from exc
    data, before = _cropped_bytes(src, box, what)
    backup = source if source is not None else _keep_copy(root, name, src, box)
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise SaveFailed(exc, f"the cropped {what}") from exc
    return CropDone(name, box, backup, before, (box.width, box.height))


def _keep_copy(root: Path, name: str, src: bytes, box: Box | None) -> Path:
    """Keep ``src`` (the bytes ``name`` has now) in ``.zitdesk/crops`` with its record."""
    crops = _crops_dir(root)
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    backup = crops / f"{stem}{Path(name).suffix.lower()}"
    record = {
        "name": name,
        "box": None if box is None else [box.left, box.top, box.width, box.height],
        "created": time.time(),
        "image": backup.name,
    }
    try:
        crops.mkdir(parents=True, exist_ok=True)
        atomic_write(backup, src)
        atomic_write(crops / f"{stem}.json", json.dumps(record, ensure_ascii=False))
    except OSError as exc:
        raise SaveFailed(exc, f"the copy of {shown(name)} kept before changing it") from exc
    return backup


def restore_original(folder: str | Path, name: str, *, backup: Path | None = None) -> CropDone:
    """Put back the copy of ``name`` from before its first crop (itself undoable: the current
    bytes are kept first, or ``backup`` is reused on redo)."""
    root = Path(folder)
    path = root / name
    original = original_of(root, name)
    if original is None:
        raise CropError(f"No copy of {shown(name)} from before a crop is kept.")
    from zitdesk.folder import image_size

    try:
        now = path.read_bytes()
        before = image_size(path)
        after = image_size(original)
        data = original.read_bytes()
    except OSError as exc:
        raise CropError(f"{shown(name)} cannot be read ({exc.strerror or exc}).") from exc
    kept = backup if backup is not None else _keep_copy(root, name, now, None)
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise SaveFailed(exc, f"the original of {shown(name)}") from exc
    return CropDone(name, Box(0, 0, *after), kept, before, after, restored_from=original)


def redo(folder: str | Path, done: CropDone) -> CropDone:
    """Do ``done`` again after :func:`undo_crop` (the same crop or restore, same backup)."""
    if done.restored_from is not None:
        return restore_original(folder, done.name, backup=done.backup)
    return crop_image(folder, done.name, done.box, source=done.backup)


def undo_crop(folder: str | Path, done: CropDone) -> None:
    """Write back the bytes ``done.name`` had before the crop (the backup stays, for redo)."""
    path = Path(folder) / done.name
    try:
        atomic_write(path, done.backup.read_bytes())
    except OSError as exc:
        raise SaveFailed(exc, f"{shown(done.name)} as it was before the crop") from exc


def _records(folder: Path, name: str) -> list[tuple[Path, object]]:
    """(kept copy, its box or None for a restore) of ``name``, oldest first."""
    d = _crops_dir(folder)
    out: list[tuple[float, str, Path, object]] = []
    if not d.is_dir():
        return []
    for rec in d.glob("*.json"):
        try:
            data = json.loads(rec.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("name") == name:
            img = d / str(data.get("image", ""))
            if img.is_file():
                out.append((float(data.get("created", 0)), rec.name, img, data.get("box")))
    return [(p, box) for _, _, p, box in sorted(out, key=lambda t: (t[0], t[1]))]


def crops_of(folder: str | Path, name: str) -> list[Path]:
    """Every kept copy of ``name`` (before each crop or restore), oldest first."""
    return [p for p, _ in _records(Path(folder), name)]


def original_of(folder: str | Path, name: str) -> Path | None:
    """The copy of ``name`` from before its first crop, if one is kept."""
    kept = [p for p, box in _records(Path(folder), name) if box is not None]
    return kept[0] if kept else None
