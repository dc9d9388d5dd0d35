"""Training datasets: aspect-ratio buckets, plans and batches over the folder model.

The folder itself (images, captions, exclusions, trigger word) is :mod:`zitdesk.folder`, shared
with the dataset manager; its names are re-exported here for the trainer's modules. Torch-free
(Pillow only); nothing here imports the trainer. Rules (engine notes §13 B):

* **Buckets:** per training resolution R, the bucket is the aspect-preserving size with sides
  multiple of 16 and area ≤ R² closest to ``min(image area, R²)``, and it **never upscales**
  (both sides ≤ the image's). The image is resized to cover the bucket and centre-cropped.
  One copy of the dataset per resolution; an image too small to differ between two resolutions
  gets one entry, not two (else small images would be trained twice as often).
* **Batches** hold one bucket each; the order of an epoch is a pure function of (seed, epoch), so
  a resumed run sees exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from zitdesk.captions import read_caption as read_caption  # the one caption decoder
from zitdesk.folder import (  # the folder model (zitdesk/folder.py), re-exported for the trainer
    EXCLUDE_FILE as EXCLUDE_FILE,
)
from zitdesk.folder import (
    IMAGE_EXTS as IMAGE_EXTS,
)
from zitdesk.folder import (
    TRIGGER_PLACEHOLDER as TRIGGER_PLACEHOLDER,
)
from zitdesk.folder import (
    DatasetItem as DatasetItem,
)
from zitdesk.folder import (
    ScanResult as ScanResult,
)
from zitdesk.folder import (
    apply_trigger as apply_trigger,
)
from zitdesk.folder import (
    image_size as image_size,
)
from zitdesk.folder import (
    read_excluded as read_excluded,
)
from zitdesk.folder import (
    scan_folder as scan_folder,
)

BUCKET_STEP = 16


@dataclass(frozen=True)
class Entry:
    """One training sample: an item at one resolution, in its bucket (width, height)."""

    item: int
    resolution: int
    bucket: tuple[int, int]


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts (the same on every platform and Python run)."""
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & ((1 << 63) - 1)


def bucket_for(
    width: int, height: int, resolution: int, step: int = BUCKET_STEP
) -> tuple[int, int] | None:
    """The bucket ``(w, h)`` of a ``width × height`` image at ``resolution``; None if too small."""
    if width < step or height < step:
        return None
    target = min(width * height, resolution * resolution)
    aspect = width / height
    ideal_w, ideal_h = math.sqrt(target * aspect), math.sqrt(target / aspect)
    base_w, base_h = int(ideal_w) // step * step, int(ideal_h) // step * step
    best: tuple[float, int, int, int] | None = None
    for dw in (-2, -1, 0, 1):
        for dh in (-2, -1, 0, 1):
            bw, bh = base_w + dw * step, base_h + dh * step
            if bw < step or bh < step or bw > width or bh > height:
                continue
            if bw * bh > resolution * resolution:
                continue
            aspect_err = abs(math.log((bw / bh) / aspect))
            deficit = 1.0 - (bw * bh) / target
            key = (2.0 * aspect_err + deficit, -(bw * bh), bw, bh)
            if best is None or key < best:
                best = key
    return None if best is None else (best[2], best[3])


def plan_entries(items: Sequence[DatasetItem], resolutions: Iterable[int]) -> list[Entry]:
    """Every (item, resolution) with its bucket; identical (item, bucket) pairs appear once."""
    out: list[Entry] = []
    for i, it in enumerate(items):
        seen: set[tuple[int, int]] = set()
        for r in sorted(set(resolutions)):
            b = bucket_for(it.width, it.height, r)
            if b is None or b in seen:
                continue
            seen.add(b)
            out.append(Entry(i, r, b))
    return out


def epoch_batches(
    entries: Sequence[Entry], batch_size: int, seed: int, epoch: int
) -> list[tuple[int, ...]]:
    """Batches (tuples of entry indices) of one epoch: one bucket per batch, order from the seed."""
    rng = random.Random(derive_seed("epoch", seed, epoch))
    order = list(range(len(entries)))
    rng.shuffle(order)
    by_bucket: dict[tuple[int, int], list[int]] = {}
    for idx in order:
        by_bucket.setdefault(entries[idx].bucket, []).append(idx)
    batches = [
        tuple(group[i : i + batch_size])
        for _, group in sorted(by_bucket.items())
        for i in range(0, len(group), batch_size)
    ]
    rng.shuffle(batches)
    return batches


def load_bucket_image(path: Path, bucket: tuple[int, int]):
    """The image as RGB, resized to cover ``bucket`` (never up) and centre-cropped to it."""
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        im: Image.Image = ImageOps.exif_transpose(opened)
        if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, rgba)
        im = im.convert("RGB")
        if im.size == bucket:
            return im.copy()
        return ImageOps.fit(im, bucket, method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def tag_frequency(captions: Iterable[str]) -> dict[str, int]:
    """Comma-separated tag counts (kohya's ``ss_tag_frequency`` inner mapping)."""
    counts: Counter[str] = Counter()
    for c in captions:
        for tag in c.split(","):
            tag = tag.strip()
            if tag:
                counts[tag] += 1
    return dict(counts.most_common())


class BatchCursor:
    """Walks :func:`epoch_batches` epoch after epoch; its state is ``{"epoch", "pos"}``."""

    def __init__(
        self, entries: Sequence[Entry], batch_size: int, seed: int, epoch: int = 0, pos: int = 0
    ) -> None:
        if not entries:
            raise ValueError("no entries to batch")
        self.entries = entries
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = epoch
        self.pos = pos
        self._cache: tuple[int, list[tuple[int, ...]]] | None = None

    def _batches(self, epoch: int) -> list[tuple[int, ...]]:
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, epoch_batches(self.entries, self.batch_size, self.seed, epoch))
        return self._cache[1]

    def next(self) -> tuple[int, ...]:
        while True:
            batches = self._batches(self.epoch)
            if self.pos < len(batches):
                self.pos += 1
                return batches[self.pos - 1]
            self.epoch, self.pos = self.epoch + 1, 0

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}
