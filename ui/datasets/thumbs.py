"""Asynchronous, disk-cached thumbnails for the dataset table and grid.

``pixmap(record)`` never decodes: it returns a cached ``QPixmap`` or ``None`` and queues the
image. Two pool workers take the *newest* requests first (what is on screen after a fast scroll)
and drop the oldest when more than :data:`MAX_PENDING` wait, so a flick through 10,000 rows
never builds a backlog. A worker reads the JPEG from the shared thumbnail cache
(:func:`zitdesk.dataset.images.thumb_path`, keyed by content hash), or decodes the image once
(:func:`~zitdesk.dataset.images.analyse_file`), stores the thumbnail and reports the content
hashes so the dataset index learns them while the user browses.

Results reach the GUI thread through a deque: a worker that finds it empty emits ``_wake``
(queued), and the GUI side drains it in batches of :data:`MAX_PER_DRAIN` (bounded GUI work per
event-loop turn), makes the ``QPixmap``, keeps it in the app's one
:class:`ui.thumbnails.PixmapCache` kind (keyed by image name, stamped with its mtime) and emits
once per batch: ``analysed([(name, sha256, phash)])`` then ``ready(names)``. Workers run on a
:class:`ui.tasks.TaskPool`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QImage, QPixmap

from ui.tasks import InteractionGate, TaskPool
from ui.thumbnails import PixmapCache, fit_image
from zitdesk.dataset.images import analyse_file, store_thumb, thumb_path
from zitdesk.dataset.store import ImageRecord

DISPLAY_SIDE = 128
MAX_PENDING = 256
CAPACITY = 1500
MAX_PER_DRAIN = 48  # QPixmap conversions per timer tick (bounded GUI work per tick)


def load_thumbnail(
    path: str, sha256: str | None, side: int = DISPLAY_SIDE, cache_dir: Path | None = None
) -> tuple[QImage, str | None, int | None]:
    """Pool side: the thumbnail as a ``QImage`` ≤ ``side`` px, plus (sha256, phash) when the
    image had to be decoded (None when the cache already had it)."""
    if sha256:
        p = thumb_path(sha256, cache_dir)
        if p.is_file():
            img = QImage(str(p))
            if not img.isNull():
                return fit_image(img, side), None, None
    an, jpeg = analyse_file(path)
    try:
        store_thumb(an.sha256, jpeg, cache_dir)
    except OSError:
        pass
    img = QImage.fromData(jpeg)
    return fit_image(img, side), an.sha256, an.phash


def _loop(s: ThumbnailService) -> None:
    """Pool side: take the newest pending request until none is left."""
    while True:
        if s.gate is not None:
            s.gate.wait()
        with s._lock:
            if s._stopped or not s._pending:
                s._loops -= 1
                return
            name, (path, sha, mtime) = s._pending.popitem(last=True)
            s._inflight.add(name)
        try:
            img, new_sha, ph = load_thumbnail(path, sha, s.side, s.cache_dir)
        except Exception:  # noqa: BLE001 - unreadable image: shown as such
            result: tuple = (name, mtime, None, None, None)
        else:
            result = (name, mtime, img, new_sha, ph)
        with s._lock:
            wake = not s._done and not s._stopped
            s._done.append(result)
        if wake:
            try:
                s._wake.emit()
            except RuntimeError:  # the service was deleted meanwhile
                return


class ThumbnailService(QObject):
    """Thumbnail cache + loader for one dataset view (see the module doc)."""

    _wake = Signal()
    ready = Signal(list)  # image names whose thumbnail (or failure) is new
    analysed = Signal(list)  # [(name, sha256, phash)] learnt while decoding

    def __init__(
        self,
        side: int = DISPLAY_SIDE,
        threads: int = 2,
        cache_dir: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.side = side
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, tuple[str, str | None, int]] = OrderedDict()
        self._inflight: set[str] = set()
        self._done: deque = deque()
        self._loops = 0
        self._max_loops = threads
        self._stopped = False
        self.cache = PixmapCache(CAPACITY)
        self._pool = TaskPool(threads, "zitdesk-thumbnails", self, nice=True)
        self._wake.connect(self._drain)
        self.folder: Path | None = None
        self.gate: InteractionGate | None = None  # workers pause between images while set

    def set_folder(self, folder: Path | None) -> None:
        with self._lock:
            self._pending.clear()
        self.cache.clear()
        self.folder = folder

    def pixmap(self, rec: ImageRecord) -> QPixmap | None:
        hit = self.cache.get(rec.name, rec.mtime_ns)
        if hit is not None:
            return hit
        if self.folder is None or self.cache.failed(rec.name, rec.mtime_ns):
            return None
        with self._lock:
            if self._stopped or rec.name in self._inflight:
                return None
            self._pending[rec.name] = (str(self.folder / rec.name), rec.sha256, rec.mtime_ns)
            self._pending.move_to_end(rec.name)
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
            start = self._loops < self._max_loops
            if start:
                self._loops += 1
        if start:
            self._pool.start(_loop, self)
        return None

    def forget(self, name: str) -> None:
        """Drop a cached thumbnail (the image was removed)."""
        self.cache.forget(name)

    def failed(self, rec: ImageRecord) -> bool:
        return self.cache.failed(rec.name, rec.mtime_ns)

    @Slot()
    def _drain(self) -> None:
        ready: list[str] = []
        analysed: list[tuple[str, str, int]] = []
        for _ in range(MAX_PER_DRAIN):
            with self._lock:
                if not self._done:
                    break
                name, mtime, img, sha, ph = self._done.popleft()
                self._inflight.discard(name)
            if img is None:
                self.cache.fail(name, mtime)
            else:
                self.cache.put(name, QPixmap.fromImage(img), mtime)
                if sha is not None and ph is not None:
                    analysed.append((name, sha, int(ph)))
            ready.append(name)
        if analysed:
            self.analysed.emit(analysed)
        if ready:
            self.ready.emit(ready)
        with self._lock:
            more = bool(self._done) and not self._stopped
        if more:  # the rest on the next event-loop turn
            QTimer.singleShot(0, self._drain)

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._pending or self._inflight or self._loops or self._done)

    def shutdown(self, msecs: int = 10_000) -> bool:
        with self._lock:
            self._stopped = True
            self._pending.clear()
        ok = self._pool.wait(msecs)
        with self._lock:
            self._done.clear()
        return ok
