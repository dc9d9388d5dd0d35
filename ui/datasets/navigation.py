"""Navigation in the Datasets workspace: the filter row, the current image, next/previous
(missing caption), table/grid switching.

:class:`FilterBar` holds the filter widgets; :class:`Navigator` owns the "where am I" logic over
the model and both views. Before it moves away from an image it emits ``commit_editors``
(a direct connection: the open caption editor is committed first); ``message(level, text)`` says
things like "Every image shown has a caption."
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QWidget,
)

from ui.datasets.table_model import Col, DatasetTableModel, FilterMode
from ui.datasets.toolbar import DatasetToolbar
from ui.datasets.views import CaptionTable, GridPanel
from ui.widgets.text import plain_label, set_plain_tooltip


class FilterBar(QWidget):
    """Filter text, filter mode, "n of N images", "Next missing caption"."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText("Filter by file name or caption words (Ctrl+F)")
        self.edit.setClearButtonEnabled(True)
        self.mode = QComboBox()
        for m in FilterMode:
            self.mode.addItem(m.value, m)
        self.mode.model().item(list(FilterMode).index(FilterMode.ISSUE)).setEnabled(False)
        self.count_label = plain_label(object_name="muted")
        self.next_missing_button = QPushButton("Next missing caption (F3)")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 2)
        row.addWidget(self.mode)
        row.addWidget(self.count_label, 1)
        row.addWidget(self.next_missing_button)


class Navigator(QObject):
    """See the module doc."""

    commit_editors = Signal()
    message = Signal(str, str)

    def __init__(
        self,
        model: DatasetTableModel,
        table: CaptionTable,
        grid: GridPanel,
        stack: QStackedWidget,
        toolbar: DatasetToolbar,
        bar: FilterBar,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.model, self.table, self.grid, self.stack = model, table, grid, stack
        self.toolbar, self.bar = toolbar, bar
        self._filter_timer = QTimer(self, singleShot=True, interval=200)
        self._filter_timer.timeout.connect(self.apply_filter)
        bar.edit.textChanged.connect(self._filter_timer.start)
        bar.mode.currentIndexChanged.connect(self.apply_filter)
        bar.next_missing_button.clicked.connect(self.next_missing)
        model.visible_changed.connect(self.update_count)
        toolbar.view_requested.connect(self._on_view_requested)

    def stop(self) -> None:
        self._filter_timer.stop()

    # --- where am I ----------------------------------------------------------------------------

    def active_view(self):
        return self.grid.grid if self.stack.currentWidget() is self.grid else self.table

    def current_row(self) -> int:
        ix = self.active_view().currentIndex()
        return ix.row() if ix.isValid() else -1

    def current_name(self) -> str | None:
        r = self.current_row()
        return self.model.item(r).name if 0 <= r < self.model.rowCount() else None

    def selected_rows(self) -> list[int]:
        view = self.active_view()
        rows = sorted({ix.row() for ix in view.selectionModel().selectedIndexes()})
        if not rows and self.current_row() >= 0:
            rows = [self.current_row()]
        return rows

    def editing(self) -> bool:
        f = self.table.window().focusWidget()
        return f is not None and f.objectName() in ("captionEditor", "captionPane")

    # --- moving --------------------------------------------------------------------------------

    def select_row(self, row: int, edit: bool = False) -> None:
        if not 0 <= row < self.model.rowCount():
            return
        view = self.active_view()
        col = Col.NAME if view is self.grid.grid else Col.CAPTION
        ix = self.model.index(row, col)
        view.setCurrentIndex(ix)
        view.scrollTo(ix)
        if edit:
            if view is self.table:
                self.table.edit(ix)
            else:
                self.grid.editor.setFocus()

    def select_name(self, name: str) -> bool:
        r = self.model.row_of(name)
        if r is None:
            return False
        self.select_row(r)
        return True

    @Slot()
    def next_image(self) -> None:
        self.commit_editors.emit()
        self.select_row(min(self.current_row() + 1, self.model.rowCount() - 1), edit=self.editing())

    @Slot()
    def previous_image(self) -> None:
        self.commit_editors.emit()
        self.select_row(max(self.current_row() - 1, 0), edit=self.editing())

    def _find_missing(self, step: int) -> int | None:
        n = self.model.rowCount()
        start = self.current_row()
        for k in range(1, n + 1):
            r = (start + step * k) % n
            if self.model.item(r).missing_caption:
                return r
        return None

    @Slot()
    def next_missing(self) -> None:
        self._jump_missing(1)

    @Slot()
    def previous_missing(self) -> None:
        self._jump_missing(-1)

    def _jump_missing(self, step: int) -> None:
        self.commit_editors.emit()
        if not self.model.rowCount():
            return
        r = self._find_missing(step)
        if r is None:
            self.message.emit("info", "Every image shown has a caption.")
            return
        self.select_row(r, edit=True)

    # --- table / grid --------------------------------------------------------------------------

    @Slot(str)
    def _on_view_requested(self, view: str) -> None:
        self.switch(self.grid if view == "grid" else self.table)

    def toggle_view(self) -> None:
        self.switch(self.table if self.stack.currentWidget() is self.grid else self.grid)

    def switch(self, target: QWidget) -> None:
        self.commit_editors.emit()
        name = self.current_name()
        self.toolbar.set_view("grid" if target is self.grid else "table")
        if self.model.dataset is None:
            return
        self.stack.setCurrentWidget(target)
        if name:
            self.select_name(name)

    # --- filter --------------------------------------------------------------------------------

    @Slot()
    def focus_filter(self) -> None:
        self.bar.edit.setFocus()
        self.bar.edit.selectAll()

    @Slot()
    def apply_filter(self) -> None:
        mode = self.bar.mode.currentData()
        name = self.current_name()
        self.model.set_filter(self.bar.edit.text(), mode)
        if name and not self.select_name(name) and self.model.rowCount():
            self.select_row(0)

    def set_filter(self, text: str = "", mode: FilterMode = FilterMode.ALL) -> None:
        self.bar.edit.blockSignals(True)
        self.bar.edit.setText(text)
        self.bar.edit.blockSignals(False)
        self.bar.mode.blockSignals(True)
        self.bar.mode.setCurrentIndex(list(FilterMode).index(mode))
        self.bar.mode.blockSignals(False)
        self.apply_filter()

    @Slot(str, list)
    def show_issue(self, msg: str, names: list) -> None:
        """Show only the images of one check finding."""
        self.bar.mode.blockSignals(True)
        self.bar.mode.setCurrentIndex(list(FilterMode).index(FilterMode.ISSUE))
        self.bar.mode.blockSignals(False)
        self.model.set_filter(mode=FilterMode.ISSUE, issue_names=names)
        set_plain_tooltip(self.bar.count_label, msg)
        if self.model.rowCount():
            self.select_row(0)

    @Slot()
    def update_count(self) -> None:
        n, total = self.model.rowCount(), self.model.total
        self.bar.count_label.setText(
            f"{n:,} of {total:,} images" if n != total else f"{total:,} images"
        )
