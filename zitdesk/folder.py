"""The image + caption folder model, shared by the dataset manager and the trainer.

* **Images** ``.png .jpg .jpeg .webp .bmp`` in the folder (not recursive, no hidden files), EXIF
  orientation applied; the caption is ``<stem><caption_ext>`` beside the image (missing = empty
  caption), decoded by :mod:`zitdesk.captions` (the one decoder) so the trainer reads the text
  the dataset manager shows.
* Names listed in ``.zitdesk/exclude`` (one file name a line, written by the dataset manager's
  "Exclude from training") are left out.
* **Trigger word:** ``[trigger]`` in a caption is replaced by the trigger; a caption without the
  placeholder gets ``"<trigger>, "`` prepended (ai-toolkit's behaviour).

Torch-free (Pillow only, imported lazily). Buckets, plans and batches are training's own
(:mod:`zitdesk.train.dataset`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zitdesk.captions import read_caption

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
TRIGGER_PLACEHOLDER = "[trigger]"
EXCLUDE_FILE = ".zitdesk/exclude"


def read_excluded(folder: str | Path) -> frozenset[str]:
    """Image names excluded from training (``.zitdesk/exclude``; missing or unreadable: none)."""
    try:
        text = (Path(folder) / EXCLUDE_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


@dataclass(frozen=True)
class DatasetItem:
    """One image of the folder; ``width``/``height`` are after EXIF orientation."""

    image: Path
    caption: str
    caption_path: Path | None
    width: int
    height: int


@dataclass(frozen=True)
class ScanResult:
    items: tuple[DatasetItem, ...]
    problems: tuple[str, ...]  # plain sentences about skipped files
    excluded: int = 0  # images left out by .zitdesk/exclude

    @property
    def captioned(self) -> int:
        return sum(1 for it in self.items if it.caption_path is not None)


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` after EXIF orientation, from the header only."""
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
        try:
            orient = im.getexif().get(0x0112, 1)
        except Exception:  # noqa: BLE001 - broken EXIF: use the stored orientation
            orient = 1
    return (h, w) if orient in (5, 6, 7, 8) else (w, h)


def scan_folder(folder: str | Path, caption_ext: str = ".txt") -> ScanResult:
    """List the images of ``folder`` with their captions; unreadable files become ``problems``."""
    root = Path(folder)
    if not root.is_dir():
        from zitdesk.errors import RequestError

        raise RequestError(f"The dataset folder {root} does not exist.")
    items: list[DatasetItem] = []
    problems: list[str] = []
    excluded = read_excluded(root)
    n_excluded = 0
    for p in sorted(root.iterdir(), key=lambda q: q.name):
        if not p.is_file() or p.suffix.lower() not in IMAGE_EXTS or p.name.startswith("."):
            continue
        if p.name in excluded:
            n_excluded += 1
            continue
        try:
            w, h = image_size(p)
        except Exception as exc:  # noqa: BLE001 - any decoder error means "skip this file"
            problems.append(f"{p.name} is not a readable image ({type(exc).__name__}); skipped.")
            continue
        cap_path = p.with_suffix(caption_ext)
        caption = ""
        if cap_path.is_file():
            try:
                caption = read_caption(cap_path)
            except OSError as exc:
                problems.append(
                    f"{cap_path.name} cannot be read ({exc.strerror}); empty caption used."
                )
        items.append(DatasetItem(p, caption, cap_path if cap_path.is_file() else None, w, h))
    return ScanResult(tuple(items), tuple(problems), n_excluded)


def apply_trigger(caption: str, trigger: str) -> str:
    """Put the trigger word into a caption (placeholder replaced, else prepended)."""
    trigger = trigger.strip()
    if not trigger:
        return caption.replace(TRIGGER_PLACEHOLDER, "").strip()
    if TRIGGER_PLACEHOLDER in caption:
        return caption.replace(TRIGGER_PLACEHOLDER, trigger)
    if not caption:
        return trigger
    return f"{trigger}, {caption}"
