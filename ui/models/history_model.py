"""Prompt history as a list model (thumbnail beside each prompt) and a search filter."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Slot,
)

from ui.models.history_store import HistoryEntry, HistoryStore
from ui.thumbnails import ThumbnailCache
from ui.widgets.text import plain_tooltip

ItemRole = Qt.ItemDataRole.UserRole + 1
_Index = QModelIndex | QPersistentModelIndex


def _age(ts: float) -> str:
    d = max(time.time() - ts, 0)
    if d < 90:
        return "just now"
    if d < 3600:
        return f"{int(d // 60)} min ago"
    if d < 86400:
        return f"{int(d // 3600)} h ago"
    return time.strftime("%Y-%m-%d", time.localtime(ts))


class HistoryModel(QAbstractListModel):
    def __init__(self, store: HistoryStore, thumbnails: ThumbnailCache, parent=None) -> None:
        super().__init__(parent)
        self.store = store
        self._thumbs = thumbnails
        thumbnails.thumbnail_ready.connect(self._on_thumbnail)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.store.entries)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.store.entries):
            return None
        e = self.store.entries[index.row()]
        if role == ItemRole:
            return e
        if role == Qt.ItemDataRole.DisplayRole:
            first = " ".join(e.prompt.split())
            if len(first) > 140:
                first = first[:137] + "…"
            return f"{first}\n{_age(e.timestamp)}" + (f" · used {e.uses}×" if e.uses > 1 else "")
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbs.icon(e.thumbnail) if e.thumbnail else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return plain_tooltip(e.prompt[:1000])
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    def record(self, prompt: str, request: dict[str, Any], thumbnail: str = "") -> HistoryEntry:
        """Add a prompt at the top (an existing one moves up)."""
        old = next((i for i, e in enumerate(self.store.entries) if e.prompt == prompt), -1)
        if old > 0:
            self.beginMoveRows(QModelIndex(), old, old, QModelIndex(), 0)
            entry, _ = self.store.record(prompt, request, thumbnail)
            self.endMoveRows()
        elif old == 0:
            entry, _ = self.store.record(prompt, request, thumbnail)
        else:
            limit = max(self.store.limit, 1)
            if len(self.store.entries) >= limit:
                self.beginRemoveRows(QModelIndex(), limit - 1, len(self.store.entries) - 1)
                del self.store.entries[limit - 1 :]
                self.endRemoveRows()
            self.beginInsertRows(QModelIndex(), 0, 0)
            entry, _ = self.store.record(prompt, request, thumbnail)
            self.endInsertRows()
        idx = self.index(0)
        self.dataChanged.emit(idx, idx)
        return entry

    def set_thumbnail(self, prompt: str, path: str) -> None:
        for row, e in enumerate(self.store.entries):
            if e.prompt == prompt:
                e.thumbnail = path
                idx = self.index(row)
                self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
                return

    @Slot(str)
    def _on_thumbnail(self, path: str) -> None:
        for row, e in enumerate(self.store.entries):
            if e.thumbnail == path:
                idx = self.index(row)
                self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class HistoryFilter(QSortFilterProxyModel):
    """Keeps entries whose prompt contains every word of the search text (case-insensitive)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._words: list[str] = []

    @property
    def text(self) -> str:
        return " ".join(self._words)

    def set_text(self, text: str) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt ≥ 6.9
            self.beginFilterChange()
            self._words = text.lower().split()
            self.endFilterChange()
        else:
            self._words = text.lower().split()
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:  # noqa: N802
        if not self._words:
            return True
        model = self.sourceModel()
        entry = model.data(model.index(source_row, 0, source_parent), ItemRole)
        prompt = entry.prompt.lower() if entry is not None else ""
        return all(w in prompt for w in self._words)
