"""Structured-prompt helper: a scene plus characters (attributes, position) → markdown list."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QStyledItemDelegate,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ui.models.character_model import CharacterModel
from ui.structured_prompt import POSITIONS, Character, StructuredPrompt, parse_markdown


class PositionDelegate(QStyledItemDelegate):
    """An editable combo with the usual positions."""

    def createEditor(self, parent: QWidget, option, index: QModelIndex) -> QWidget:  # noqa: N802
        combo = QComboBox(parent)
        combo.setEditable(True)
        combo.addItems(list(POSITIONS))
        return combo

    def setEditorData(self, editor: QWidget, index: QModelIndex) -> None:  # noqa: N802
        editor.setCurrentText(str(index.data(Qt.ItemDataRole.EditRole) or ""))

    def setModelData(self, editor: QWidget, model, index: QModelIndex) -> None:  # noqa: N802
        model.setData(index, editor.currentText(), Qt.ItemDataRole.EditRole)


class StructuredPromptDialog(QDialog):
    def __init__(self, prompt: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Structured prompt")
        self.resize(720, 560)
        intro = QLabel(
            "Z-Image keeps details attached to the right subject when the prompt is a markdown "
            "list: one line for the scene, one per character with its attributes and position. "
            "The result stays editable as plain text."
        )
        intro.setWordWrap(True)
        intro.setObjectName("hint")
        self.scene = QPlainTextEdit()
        self.scene.setPlaceholderText(
            "The scene: place, time, light, style (e.g. a rainy street "
            "in Tokyo at night, neon signs, film photo)"
        )
        self.scene.setFixedHeight(70)
        self.model = CharacterModel(parent=self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setItemDelegateForColumn(2, PositionDelegate(self.table))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().resizeSection(0, 170)
        self.table.horizontalHeader().resizeSection(2, 150)
        self.table.verticalHeader().hide()
        self.add_button = QPushButton("Add character")
        self.remove_button = QPushButton("Remove")
        self.up_button = QPushButton("Move up")
        self.down_button = QPushButton("Move down")
        buttons = QHBoxLayout()
        for b in (self.add_button, self.remove_button, self.up_button, self.down_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setFixedHeight(110)
        self.box = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.box.button(QDialogButtonBox.StandardButton.Ok).setText("Use this prompt")
        self.note = QLabel()
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)
        self.note.hide()

        lay = QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addWidget(self.note)
        lay.addWidget(QLabel("Scene"))
        lay.addWidget(self.scene)
        lay.addWidget(QLabel("Characters (double-click a cell to edit)"))
        lay.addWidget(self.table, 1)
        lay.addLayout(buttons)
        lay.addWidget(QLabel("Prompt"))
        lay.addWidget(self.preview)
        lay.addWidget(self.box)

        self.add_button.clicked.connect(self._add)
        self.remove_button.clicked.connect(self._remove)
        self.up_button.clicked.connect(self._up)
        self.down_button.clicked.connect(self._down)
        self.scene.textChanged.connect(self._refresh)
        self.model.dataChanged.connect(self._refresh)
        self.model.rowsInserted.connect(self._refresh)
        self.model.rowsRemoved.connect(self._refresh)
        self.model.rowsMoved.connect(self._refresh)
        self.model.modelReset.connect(self._refresh)
        self.box.accepted.connect(self.accept)
        self.box.rejected.connect(self.reject)
        self.load(prompt)

    def load(self, prompt: str) -> None:
        parsed = parse_markdown(prompt)
        if parsed is None and prompt.strip():
            parsed = StructuredPrompt(scene=" ".join(prompt.split()))
            self.note.setText("Your prompt was not a list yet, so all of it was put in the scene.")
            self.note.show()
        parsed = parsed or StructuredPrompt()
        self.scene.setPlainText(parsed.scene)
        self.model.set_characters(parsed.characters or [Character()])
        self._refresh()

    def structured(self) -> StructuredPrompt:
        return StructuredPrompt(self.scene.toPlainText(), self.model.characters)

    def markdown(self) -> str:
        return self.structured().to_markdown()

    @Slot()
    def _refresh(self) -> None:
        self.preview.setPlainText(self.markdown())

    def _selected_row(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    @Slot()
    def _add(self) -> None:
        row = self.model.add()
        self.table.selectRow(row)
        self.table.edit(self.model.index(row, 0))

    @Slot()
    def _remove(self) -> None:
        row = self._selected_row()
        if row >= 0:
            self.model.removeRows(row, 1)

    @Slot()
    def _up(self) -> None:
        row = self._selected_row()
        if self.model.move(row, -1):
            self.table.selectRow(row - 1)

    @Slot()
    def _down(self) -> None:
        row = self._selected_row()
        if self.model.move(row, 1):
            self.table.selectRow(row + 1)
