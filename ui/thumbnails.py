"""Thumbnails for every workspace: one in-memory cache, decoded on the thread pool, never in
``data()``.

:class:`PixmapCache` is the one cache (an LRU of ``QPixmap`` by key, with an optional stamp such
as a file's mtime so a changed file is reloaded, and the keys that failed to decode). Both
loaders keep their pixmaps in it:

* :class:`ThumbnailCache` (Generate, Train, LoRA Library): ``pixmap(path)`` returns a cached
  ``QPixmap`` or None and queues a decode; when it is ready ``thumbnail_ready(path)`` fires and
  models emit ``dataChanged(DecorationRole)`` for that row.
* :class:`ui.datasets.thumbs.ThumbnailService` (Datasets): the same cache, with a newest-first
  loader over the content-hashed disk cache and batched signals.

Workers make a ``QImage`` (thread-safe); the ``QPixmap`` is made on the GUI thread.
"""

from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QObject, QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon, QImage, QImageReader, QPixmap

from ui.tasks import TaskSignals, run_task

THUMB_SIZE = 160


def load_scaled(path: str, size: int) -> QImage:
    reader = QImageReader(path)
    reader.setAutoTransform(True)
    src = reader.size()
    if src.isValid() and (src.width() > size or src.height() > size):
        reader.setScaledSize(src.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        raise OSError(reader.errorString() or f"cannot read {path}")
    return image


def fit_image(img: QImage, side: int) -> QImage:
    """``img`` scaled down to fit a ``side``² square (aspect kept); small images unchanged."""
    if img.width() > side or img.height() > side:
        return img.scaled(
            QSize(side, side),
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    return img


class PixmapCache:
    """LRU of pixmaps by key (GUI thread only). ``stamp``: a version (e.g. mtime); an entry or a
    failure recorded under another stamp does not count."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[object, QPixmap]] = OrderedDict()
        self._failed: dict[str, object] = {}

    def get(self, key: str, stamp: object = None) -> QPixmap | None:
        hit = self._items.get(key)
        if hit is None or hit[0] != stamp:
            return None
        self._items.move_to_end(key)
        return hit[1]

    def put(self, key: str, pm: QPixmap, stamp: object = None) -> None:
        self._failed.pop(key, None)
        self._items[key] = (stamp, pm)
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def fail(self, key: str, stamp: object = None) -> None:
        self._failed[key] = stamp

    def failed(self, key: str, stamp: object = None) -> bool:
        return key in self._failed and self._failed[key] == stamp

    def forget(self, key: str) -> None:
        self._items.pop(key, None)
        self._failed.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
        self._failed.clear()

    def __len__(self) -> int:
        return len(self._items)


class ThumbnailCache(QObject):
    """Thumbnails of image files by path, decoded on the global pool (see the module doc)."""

    thumbnail_ready = Signal(str)

    def __init__(
        self, size: int = THUMB_SIZE, capacity: int = 600, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.size = size
        self.cache = PixmapCache(capacity)
        self._loading: set[str] = set()
        self._tasks = TaskSignals(self)
        self._tasks.succeeded.connect(self._on_loaded)
        self._tasks.failed.connect(self._on_failed)

    def pixmap(self, path: str) -> QPixmap | None:
        if not path:
            return None
        pm = self.cache.get(path)
        if pm is not None:
            return pm
        if path not in self._loading and not self.cache.failed(path):
            self._loading.add(path)
            run_task(self._tasks, path, load_scaled, path, self.size)
        return None

    def icon(self, path: str) -> QIcon | None:
        """The thumbnail as an icon (views scale icons to their ``iconSize``)."""
        pm = self.pixmap(path)
        return QIcon(pm) if pm is not None else None

    def put_image(self, path: str, image: QImage) -> None:
        """Insert an image that is already decoded (GUI thread)."""
        self._store(path, QPixmap.fromImage(image))

    def forget(self, path: str) -> None:
        self.cache.forget(path)

    def _store(self, path: str, pm: QPixmap) -> None:
        self.cache.put(path, pm)
        self.thumbnail_ready.emit(path)

    @Slot(object, object)
    def _on_loaded(self, path: object, image: object) -> None:
        self._loading.discard(str(path))
        self._store(str(path), QPixmap.fromImage(image))  # type: ignore[arg-type]

    @Slot(object, object)
    def _on_failed(self, path: object, _message: object) -> None:
        self._loading.discard(str(path))
        self.cache.fail(str(path))
