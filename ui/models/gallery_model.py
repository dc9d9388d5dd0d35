"""Results of this session's jobs, newest first, with lazily loaded thumbnails."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt, Slot

from ui.thumbnails import ThumbnailCache
from ui.widgets.text import plain_tooltip

ItemRole = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex


@dataclass
class GalleryItem:
    path: str
    seed: int
    prompt: str
    width: int = 0
    height: int = 0
    request: dict[str, Any] = field(default_factory=dict)  # GenerateRequest.to_dict() of this image

    @property
    def name(self) -> str:
        return Path(self.path).name


class GalleryModel(QAbstractListModel):
    def __init__(self, thumbnails: ThumbnailCache, parent=None) -> None:
        super().__init__(parent)
        self._items: list[GalleryItem] = []
        self._thumbs = thumbnails
        thumbnails.thumbnail_ready.connect(self._on_thumbnail)

    @property
    def items(self) -> list[GalleryItem]:
        return list(self._items)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == ItemRole:
            return item
        if role == Qt.ItemDataRole.DisplayRole:
            return f"seed {item.seed}"
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbs.icon(item.path)
        if role == Qt.ItemDataRole.ToolTipRole:
            return plain_tooltip(
                f"{item.prompt[:300]}\n\nSeed {item.seed} · {item.width}×{item.height}\n{item.path}"
            )
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def add(self, item: GalleryItem) -> None:
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._items.insert(0, item)
        self.endInsertRows()

    def append(self, items: list[GalleryItem]) -> None:
        """Older results (a page from the outputs folder) at the end; paths already shown skipped."""
        known = {i.path for i in self._items}
        items = [i for i in items if i.path not in known]
        if not items:
            return
        first = len(self._items)
        self.beginInsertRows(QModelIndex(), first, first + len(items) - 1)
        self._items.extend(items)
        self.endInsertRows()

    def remove_path(self, path: str) -> bool:
        for row, item in enumerate(self._items):
            if item.path == path:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._items[row]
                self.endRemoveRows()
                return True
        return False

    @Slot(str)
    def _on_thumbnail(self, path: str) -> None:
        for row, item in enumerate(self._items):
            if item.path == path:
                idx = self.index(row)
                self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
