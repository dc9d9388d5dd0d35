"""Thumbnail cache: images are decoded and scaled on the thread pool, never in ``data()``.

``pixmap(path)`` returns a cached ``QPixmap`` or None and queues a decode; when it is ready
``thumbnail_ready(path)`` fires and models emit ``dataChanged(DecorationRole)`` for that row.
The worker makes a ``QImage`` (thread-safe); the ``QPixmap`` is made here, on the GUI thread.
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


class ThumbnailCache(QObject):
    thumbnail_ready = Signal(str)

    def __init__(
        self, size: int = THUMB_SIZE, capacity: int = 600, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.size = size
        self._capacity = capacity
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()
        self._loading: set[str] = set()
        self._failed: set[str] = set()
        self._tasks = TaskSignals(self)
        self._tasks.succeeded.connect(self._on_loaded)
        self._tasks.failed.connect(self._on_failed)

    def pixmap(self, path: str) -> QPixmap | None:
        if not path:
            return None
        pm = self._cache.get(path)
        if pm is not None:
            self._cache.move_to_end(path)
            return pm
        if path not in self._loading and path not in self._failed:
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
        self._cache.pop(path, None)
        self._failed.discard(path)

    def _store(self, path: str, pm: QPixmap) -> None:
        self._cache[path] = pm
        self._cache.move_to_end(path)
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        self.thumbnail_ready.emit(path)

    @Slot(object, object)
    def _on_loaded(self, path: object, image: object) -> None:
        self._loading.discard(str(path))
        self._store(str(path), QPixmap.fromImage(image))  # type: ignore[arg-type]

    @Slot(object, object)
    def _on_failed(self, path: object, _message: object) -> None:
        self._loading.discard(str(path))
        self._failed.add(str(path))
