"""Table model of the characters in the structured-prompt editor."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QModelIndex, Qt

from ui.models.rows import Index as _Index
from ui.models.rows import RowTableModel
from ui.structured_prompt import Character

COLUMNS = ("Who", "Attributes", "Position")


class CharacterModel(RowTableModel):
    """Columns: who, attributes (comma-separated when edited), position."""

    HEADERS = COLUMNS

    def __init__(self, characters: list[Character] | None = None, parent=None) -> None:
        super().__init__(characters, parent)

    @property
    def characters(self) -> list[Character]:
        return list(self._rows)

    def set_characters(self, characters: list[Character]) -> None:
        self.beginResetModel()
        self._rows = list(characters)
        self.endResetModel()

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        c = self.row_at(index)
        if c is None:
            return None
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return (c.who, ", ".join(c.attributes), c.position)[index.column()]
        if role == Qt.ItemDataRole.ToolTipRole and index.column() == 1:
            return "Separate attributes with commas, e.g. short brown hair, red coat"
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if not index.isValid() or role != Qt.ItemDataRole.EditRole:
            return False
        c = self._rows[index.row()]
        text = str(value or "")
        if index.column() == 0:
            c.who = text.strip()
        elif index.column() == 1:
            c.attributes = [a.strip() for a in text.replace("--", ",").split(",") if a.strip()]
        else:
            c.position = text.strip()
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole])
        return True

    def insertRows(self, row: int, count: int, parent: _Index = QModelIndex()) -> bool:  # noqa: N802, B008
        if parent.isValid() or not 0 <= row <= len(self._rows) or count < 1:
            return False
        self.beginInsertRows(QModelIndex(), row, row + count - 1)
        for _ in range(count):
            self._rows.insert(row, Character())
        self.endInsertRows()
        return True

    def removeRows(self, row: int, count: int, parent: _Index = QModelIndex()) -> bool:  # noqa: N802, B008
        if parent.isValid() or row < 0 or count < 1 or row + count > len(self._rows):
            return False
        self.beginRemoveRows(QModelIndex(), row, row + count - 1)
        del self._rows[row : row + count]
        self.endRemoveRows()
        return True

    def add(self, character: Character | None = None) -> int:
        row = len(self._rows)
        self.insertRows(row, 1)
        if character is not None:
            self._rows[row] = character
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
        return row

    def move(self, row: int, delta: int) -> bool:
        dest = row + delta
        if not (0 <= row < len(self._rows) and 0 <= dest < len(self._rows)) or delta == 0:
            return False
        qt_dest = dest + 1 if delta > 0 else dest
        if not self.beginMoveRows(QModelIndex(), row, row, QModelIndex(), qt_dest):
            return False
        self._rows.insert(dest, self._rows.pop(row))
        self.endMoveRows()
        return True
