"""The Library's views: the card grid, the list and the empty-state page, in one stack.

:class:`CardGrid` widens its cards so a row fills the viewport (no strip of unused space while
titles are cut). :class:`LibraryViews` keeps the grid and the list on the same proxy, carries the
current item across a grid/list switch and reports the current entry and double-clicks as signals.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QAbstractItemModel,
    QItemSelectionModel,
    QModelIndex,
    QSize,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListView,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ui.library.delegates import CARD_H, CARD_W, CardDelegate, RowDelegate
from ui.library.model import EntryRole

GRID_GAP = 6
CARD_MAX_W = int(CARD_W * 1.5)


class CardGrid(QListView):
    """Icon-mode list of cards whose width is stretched so the columns fill the row."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setSpacing(0)
        self.setWordWrap(False)
        self.setItemDelegate(CardDelegate(self))
        self.setGridSize(QSize(CARD_W + GRID_GAP, CARD_H + GRID_GAP))

    def card_width(self) -> int:
        return self.gridSize().width() - GRID_GAP

    def _fit(self) -> None:
        avail = max(CARD_W + GRID_GAP, self.viewport().width() - 8)  # slack: no early wrap
        cols = max(1, avail // (CARD_W + GRID_GAP))
        cell = min(CARD_MAX_W + GRID_GAP, avail // cols - 1)
        if cell != self.gridSize().width():
            self.setGridSize(QSize(cell, CARD_H + GRID_GAP))

    def resizeEvent(self, event) -> None:
        self._fit()
        super().resizeEvent(event)


class LibraryViews(QStackedWidget):
    """Grid (page 0), list (page 1) and the empty-state page (page 2)."""

    current_entry_changed = Signal(object)  # LoraEntry | None
    entry_activated = Signal(object)  # LoraEntry (double-click)
    add_folder_clicked = Signal()
    clear_filters_clicked = Signal()

    GRID, LIST, EMPTY = 0, 1, 2

    def __init__(self, model: QAbstractItemModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = CardGrid()
        self.listv = QListView()
        self.listv.setUniformItemSizes(True)
        self.listv.setItemDelegate(RowDelegate(self.listv))
        for v in (self.grid, self.listv):
            v.setModel(model)
            v.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
            v.setMouseTracking(True)
            v.setLayoutMode(QListView.LayoutMode.Batched)
            v.setBatchSize(200)
            v.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
            v.doubleClicked.connect(self._on_double_click)
            v.selectionModel().currentChanged.connect(self._on_current)
        self.empty = QLabel()
        self.empty.setTextFormat(Qt.TextFormat.PlainText)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setObjectName("muted")
        self.add_button = QPushButton("Add a LoRA folder…")
        self.add_button.clicked.connect(self.add_folder_clicked)
        self.clear_button = QPushButton("Clear filters")
        self.clear_button.clicked.connect(self.clear_filters_clicked)
        empty_page = QWidget()
        el = QVBoxLayout(empty_page)
        el.addStretch(1)
        el.addWidget(self.empty)
        el.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignHCenter)
        el.addWidget(self.clear_button, 0, Qt.AlignmentFlag.AlignHCenter)
        el.addStretch(2)
        self.addWidget(self.grid)
        self.addWidget(self.listv)
        self.addWidget(empty_page)
        self._mode = "grid"

    @property
    def mode(self) -> str:
        return self._mode

    def current_view(self) -> QListView:
        return self.grid if self._mode == "grid" else self.listv

    def set_mode(self, mode: str) -> None:
        """Switch grid/list; the current item follows."""
        if mode == self._mode:
            return
        old = self.current_view()
        self._mode = mode
        new = self.current_view()
        cur = old.selectionModel().currentIndex()
        if cur.isValid():
            new.selectionModel().setCurrentIndex(
                cur, QItemSelectionModel.SelectionFlag.ClearAndSelect
            )
            new.scrollTo(cur)

    def select(self, index: QModelIndex) -> None:
        view = self.current_view()
        view.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect
        )
        view.scrollTo(index)

    def show_items(self) -> None:
        self.add_button.setVisible(False)
        self.clear_button.setVisible(False)
        self.setCurrentIndex(self.GRID if self._mode == "grid" else self.LIST)

    def show_empty(self, text: str, *, offer_add: bool, offer_clear: bool) -> None:
        self.empty.setText(text)
        self.add_button.setVisible(offer_add)
        self.clear_button.setVisible(offer_clear)
        self.setCurrentIndex(self.EMPTY)

    @Slot(QModelIndex, QModelIndex)
    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.current_entry_changed.emit(current.data(EntryRole) if current.isValid() else None)

    @Slot(QModelIndex)
    def _on_double_click(self, index: QModelIndex) -> None:
        e = index.data(EntryRole)
        if e is not None:
            self.entry_activated.emit(e)
