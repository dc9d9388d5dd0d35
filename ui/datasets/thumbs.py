"""Asynchronous, disk-cached thumbnails for the dataset table and grid.

``pixmap(record)`` never decodes: it returns a cached ``QPixmap`` or ``None`` and queues the
image. Two pool workers take the *newest* requests first (what is on screen after a fast scroll)
and drop the oldest when more than :data:`MAX_PENDING` wait, so a flick through 10,000 rows
never builds a backlog. A worker reads the JPEG from the shared thumbnail cache
(:func:`zitdesk.dataset.images.thumb_path`, keyed by content hash), or decodes the image once
(:func:`~zitdesk.dataset.images.analyse_file`), stores the thumbnail and reports the content
hashes so the dataset index learns them while the user browses. ``thumbnail_ready(name)`` fires
on the GUI thread, where the ``QPixmap`` is made.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage, QPixmap

from zitdesk.dataset.images import analyse_file, store_thumb, thumb_path
from zitdesk.dataset.store import ImageRecord

DISPLAY_SIDE = 128
MAX_PENDING = 256
CAPACITY = 1500


def load_thumbnail(path: str, sha256: str | None, side: int = DISPLAY_SIDE,
                   cache_dir: Path | None = None) -> tuple[QImage, str | None, int | None]:
    """Pool side: the thumbnail as a ``QImage`` ≤ ``side`` px, plus (sha256, phash) when the
    image had to be decoded (None when the cache already had it)."""
    if sha256:
        p = thumb_path(sha256, cache_dir)
        if p.is_file():
            img = QImage(str(p))
            if not img.isNull():
                return _fit(img, side), None, None
    an, jpeg = analyse_file(path)
    try:
        store_thumb(an.sha256, jpeg, cache_dir)
    except OSError:
        pass
    img = QImage.fromData(jpeg)
    return _fit(img, side), an.sha256, an.phash


def _fit(img: QImage, side: int) -> QImage:
    if img.width() > side or img.height() > side:
        return img.scaled(QSize(side, side), Qt.AspectRatioMode.KeepAspectRatio,
                          Qt.TransformationMode.SmoothTransformation)
    return img


class _Signals(QObject):
    loaded = Signal(str, object, object, object, object)   # name, mtime_ns, QImage, sha, phash
    failed = Signal(str, object, str)   # mtime_ns is 64-bit: never a Qt int


class _Loop(QRunnable):
    def __init__(self, service: ThumbnailService) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.s = service

    def run(self) -> None:
        s = self.s
        while True:
            with s._lock:
                if s._stopped or not s._pending:
                    s._loops -= 1
                    return
                name, (path, sha, mtime) = s._pending.popitem(last=True)
                s._inflight.add(name)
            try:
                img, new_sha, ph = load_thumbnail(path, sha, s.side, s.cache_dir)
            except Exception as exc:  # noqa: BLE001 - unreadable image: shown as such
                s._signals.failed.emit(name, mtime, str(exc) or type(exc).__name__)
            else:
                s._signals.loaded.emit(name, mtime, img, new_sha, ph)


class ThumbnailService(QObject):
    """Thumbnail cache + loader for one dataset view (see the module doc)."""

    thumbnail_ready = Signal(str)
    analysed = Signal(str, str, object)       # name, sha256, phash (64-bit: not a Qt int)

    def __init__(self, side: int = DISPLAY_SIDE, threads: int = 2, cache_dir: Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.side = side
        self.cache_dir = cache_dir
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, tuple[str, str | None, int]] = OrderedDict()
        self._inflight: set[str] = set()
        self._loops = 0
        self._max_loops = threads
        self._stopped = False
        self._cache: OrderedDict[str, tuple[int, QPixmap]] = OrderedDict()
        self._failed: dict[str, int] = {}
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._pool.setObjectName("zitdesk-thumbnails")
        self._signals = _Signals(self)
        self._signals.loaded.connect(self._on_loaded)
        self._signals.failed.connect(self._on_failed)
        self.folder: Path | None = None

    def set_folder(self, folder: Path | None) -> None:
        with self._lock:
            self._pending.clear()
        self._cache.clear()
        self._failed.clear()
        self.folder = folder

    def pixmap(self, rec: ImageRecord) -> QPixmap | None:
        hit = self._cache.get(rec.name)
        if hit is not None and hit[0] == rec.mtime_ns:
            self._cache.move_to_end(rec.name)
            return hit[1]
        if self.folder is None or self._failed.get(rec.name) == rec.mtime_ns:
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
            self._pool.start(_Loop(self))
        return None

    def failed(self, rec: ImageRecord) -> bool:
        return self._failed.get(rec.name) == rec.mtime_ns

    @Slot(str, object, object, object, object)
    def _on_loaded(self, name: str, mtime: int, img: QImage, sha, ph) -> None:
        with self._lock:
            self._inflight.discard(name)
        self._cache[name] = (mtime, QPixmap.fromImage(img))
        self._cache.move_to_end(name)
        while len(self._cache) > CAPACITY:
            self._cache.popitem(last=False)
        if sha is not None and ph is not None:
            self.analysed.emit(name, sha, int(ph))
        self.thumbnail_ready.emit(name)

    @Slot(str, object, str)
    def _on_failed(self, name: str, mtime: int, _msg: str) -> None:
        with self._lock:
            self._inflight.discard(name)
        self._failed[name] = mtime
        self.thumbnail_ready.emit(name)

    @property
    def busy(self) -> bool:
        with self._lock:
            return bool(self._pending or self._inflight or self._loops)

    def shutdown(self, msecs: int = 10_000) -> bool:
        with self._lock:
            self._stopped = True
            self._pending.clear()
        return self._pool.waitForDone(msecs)
