"""The LoRA stack of the Generate form: path, weight, on/off and a coverage badge per LoRA."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor

from ui.models.rows import Index as _Index
from ui.models.rows import RowTableModel
from ui.theme import BAD, OK
from ui.widgets.text import plain_tooltip
from zitdesk.engine.requests import LoraSpec

COL_NAME, COL_WEIGHT, COL_COVERAGE = range(3)
HEADERS = ("LoRA", "Weight", "Coverage")
ItemRole = Qt.ItemDataRole.UserRole + 1
WEIGHT_MIN, WEIGHT_MAX = -2.0, 3.0


@dataclass
class LoraEntry:
    path: str
    weight: float = 1.0
    enabled: bool = True
    badge: str = "checking…"
    compatible: bool | None = None  # None: not known yet
    message: str = ""
    trigger_words: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return Path(self.path).stem

    def spec(self) -> LoraSpec:
        return LoraSpec(self.path, float(self.weight), self.enabled)


def badge_from_inspect(info: dict[str, Any]) -> tuple[str, bool | None, str, list[str]]:
    """(badge, compatible, message, trigger words) from ``zitdesk.lora.inspect.inspect_json``."""
    cov = info.get("coverage") or {}
    matched, total = cov.get("matched"), cov.get("total_in_file")
    if isinstance(matched, int) and isinstance(total, int) and total:
        badge = f"{matched}/{total} modules"
    else:
        badge = info.get("arch_label") or info.get("arch") or "unknown"
    words = [w["word"] if isinstance(w, dict) else str(w) for w in info.get("trigger_words") or []]
    return badge, info.get("compatible"), str(info.get("message") or ""), words


class LoraStackModel(RowTableModel):
    HEADERS = HEADERS

    def __init__(self, parent=None) -> None:
        super().__init__(None, parent)
        self._rows: list[LoraEntry] = []

    # -- access --------------------------------------------------------------------------------
    @property
    def entries(self) -> list[LoraEntry]:
        return list(self._rows)

    def specs(self) -> tuple[LoraSpec, ...]:
        return tuple(e.spec() for e in self._rows)

    def row_of(self, path: str) -> int:
        return next((i for i, e in enumerate(self._rows) if e.path == path), -1)

    # -- Qt model ------------------------------------------------------------------------------
    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        e = self._rows[index.row()]
        col = index.column()
        if role == ItemRole:
            return e
        if role == Qt.ItemDataRole.DisplayRole:
            return (e.name, f"{e.weight:.2f}", e.badge)[col]
        if role == Qt.ItemDataRole.EditRole and col == COL_WEIGHT:
            return float(e.weight)
        if role == Qt.ItemDataRole.CheckStateRole and col == COL_NAME:
            return Qt.CheckState.Checked if e.enabled else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = [e.path]
            if e.message:
                tip.append(e.message)
            if e.trigger_words:
                tip.append("Trigger words: " + ", ".join(e.trigger_words))
            return plain_tooltip("\n".join(tip))
        if role == Qt.ItemDataRole.ForegroundRole and col == COL_COVERAGE:
            if e.compatible is None:
                return None
            return QColor(OK if e.compatible else BAD)
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        f = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == COL_NAME:
            f |= Qt.ItemFlag.ItemIsUserCheckable
        if index.column() == COL_WEIGHT:
            f |= Qt.ItemFlag.ItemIsEditable
        return f

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if not index.isValid():
            return False
        e = self._rows[index.row()]
        if role == Qt.ItemDataRole.CheckStateRole and index.column() == COL_NAME:
            state = value.value if hasattr(value, "value") else value
            e.enabled = state == Qt.CheckState.Checked.value
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole])
            return True
        if role == Qt.ItemDataRole.EditRole and index.column() == COL_WEIGHT:
            try:
                w = float(value)
            except (TypeError, ValueError):
                return False
            e.weight = round(min(max(w, WEIGHT_MIN), WEIGHT_MAX), 3)
            self.dataChanged.emit(
                index, index, [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole]
            )
            return True
        return False

    # -- edits ---------------------------------------------------------------------------------
    def add(self, path: str, weight: float = 1.0, enabled: bool = True) -> int:
        """Append a LoRA (a path already in the stack is not added twice); returns its row."""
        existing = self.row_of(path)
        if existing >= 0:
            return existing
        row = len(self._rows)
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.append(LoraEntry(path, weight, enabled))
        self.endInsertRows()
        return row

    def remove(self, row: int) -> bool:
        if not 0 <= row < len(self._rows):
            return False
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        self.endRemoveRows()
        return True

    def clear(self) -> None:
        self.beginResetModel()
        self._rows.clear()
        self.endResetModel()

    def move(self, row: int, delta: int) -> bool:
        dest = row + delta
        if delta == 0 or not (0 <= row < len(self._rows) and 0 <= dest < len(self._rows)):
            return False
        if not self.beginMoveRows(
            QModelIndex(), row, row, QModelIndex(), dest + 1 if delta > 0 else dest
        ):
            return False
        self._rows.insert(dest, self._rows.pop(row))
        self.endMoveRows()
        return True

    def set_weight(self, row: int, weight: float) -> None:
        self.setData(self.index(row, COL_WEIGHT), weight)

    def set_badge(
        self,
        path: str,
        badge: str,
        compatible: bool | None,
        message: str = "",
        trigger_words: list[str] | None = None,
    ) -> None:
        row = self.row_of(path)
        if row < 0:
            return
        e = self._rows[row]
        e.badge, e.compatible, e.message = badge, compatible, message
        if trigger_words is not None:
            e.trigger_words = trigger_words
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(HEADERS) - 1))
