"""Searchable prompt history with the latest image of each prompt beside it."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QSize, Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.models.history_model import HistoryFilter, HistoryModel, ItemRole


class HistoryPanel(QWidget):
    prompt_requested = Signal(str)  # use only the prompt
    reuse_requested = Signal(object)  # HistoryEntry: every parameter

    def __init__(self, model: HistoryModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.proxy = HistoryFilter(self)
        self.proxy.setSourceModel(model)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search prompts…")
        self.search.setClearButtonEnabled(True)
        self.view = QListView()
        self.view.setModel(self.proxy)
        self.view.setIconSize(QSize(64, 64))
        self.view.setWordWrap(True)
        self.view.setSpacing(2)
        self.view.setUniformItemSizes(False)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.use_button = QPushButton("Use prompt")
        self.reuse_button = QPushButton("Reuse all")
        self.reuse_button.setToolTip("Prompt, size, steps, seed and LoRAs of that job")
        title = QLabel("Prompt history")
        title.setObjectName("sectionTitle")
        self.empty = QLabel("Prompts you generate are kept here.")
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.reuse_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(title)
        lay.addWidget(self.search)
        lay.addWidget(self.empty)
        lay.addWidget(self.view, 1)
        lay.addLayout(buttons)
        self.search.textChanged.connect(self.proxy.set_text)
        self.view.doubleClicked.connect(self._on_double_click)
        self.use_button.clicked.connect(self._use)
        self.reuse_button.clicked.connect(self._reuse)
        self.view.selectionModel().selectionChanged.connect(self._update)
        for sig in (model.rowsInserted, model.rowsRemoved, model.modelReset):
            sig.connect(self._update)
        self._update()

    def _current(self):
        idx = self.view.currentIndex()
        return idx.data(ItemRole) if idx.isValid() else None

    def _update(self, *_args) -> None:
        has = self._current() is not None
        self.use_button.setEnabled(has)
        self.reuse_button.setEnabled(has)
        self.empty.setVisible(self.model.rowCount() == 0)

    @Slot(QModelIndex)
    def _on_double_click(self, _index: QModelIndex) -> None:
        self._reuse()

    @Slot()
    def _use(self) -> None:
        entry = self._current()
        if entry is not None:
            self.prompt_requested.emit(entry.prompt)

    @Slot()
    def _reuse(self) -> None:
        entry = self._current()
        if entry is not None:
            self.reuse_requested.emit(entry)
