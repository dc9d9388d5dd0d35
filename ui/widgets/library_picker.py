"""'From library…' in the LoRA stack: pick a LoRA from the Library (search, cards), read-only.

It reuses the Library's own model (:class:`ui.library.model.LibraryModel`) through a private
:class:`~ui.library.model.LibraryFilterProxy` and the card delegate, so the picker shows what the
Library shows without changing its filters. Incompatible files stay visible (greyed by the
delegate); the stack's shape check refuses them at "Add" with the sentence why.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QSize, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListView,
    QVBoxLayout,
    QWidget,
)


class LibraryPickerDialog(QDialog):
    def __init__(self, library_model, parent: QWidget | None = None) -> None:
        from ui.library.delegates import CARD_H, CARD_W, CardDelegate
        from ui.library.model import LibraryFilterProxy

        super().__init__(parent)
        self.setWindowTitle("Add a LoRA from the library")
        self.resize(860, 600)
        self.chosen = ""
        self.proxy = LibraryFilterProxy(self)
        self.proxy.setSourceModel(library_model)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search names, trigger words, folders…")
        self.search.setClearButtonEnabled(True)
        self.view = QListView()
        self.view.setModel(self.proxy)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)
        self.view.setGridSize(QSize(CARD_W + 8, CARD_H + 8))
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setItemDelegate(CardDelegate(self.view))
        self.count = QLabel("")
        self.count.setObjectName("muted")
        self.box = QDialogButtonBox()
        self.add_button = self.box.addButton("Add", QDialogButtonBox.ButtonRole.AcceptRole)
        self.box.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.add_button.setEnabled(False)
        lay = QVBoxLayout(self)
        lay.addWidget(self.search)
        lay.addWidget(self.count)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.box)
        self.search.textChanged.connect(self.proxy.set_search)
        self.search.textChanged.connect(self._update_count)
        self.view.selectionModel().currentChanged.connect(self._on_current)
        self.view.doubleClicked.connect(self._on_double_click)
        self.box.accepted.connect(self.accept)
        self.box.rejected.connect(self.reject)
        for sig in (
            library_model.rowsInserted,
            library_model.rowsRemoved,
            library_model.modelReset,
        ):
            sig.connect(self._update_count)
        self._update_count()

    def shown_paths(self) -> list[str]:
        from ui.library.model import PathRole

        return [str(self.proxy.index(r, 0).data(PathRole)) for r in range(self.proxy.rowCount())]

    def select_path(self, path: str) -> bool:
        for r, p in enumerate(self.shown_paths()):
            if p == path:
                self.view.setCurrentIndex(self.proxy.index(r, 0))
                return True
        return False

    @Slot()
    def _update_count(self, *_args) -> None:
        n = self.proxy.rowCount()
        self.count.setText(
            f"{n} LoRA file(s)" if n else "No LoRAs here yet: add folders in the LoRA Library tab."
        )

    @Slot(QModelIndex, QModelIndex)
    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        from ui.library.model import PathRole

        self.chosen = str(current.data(PathRole) or "") if current.isValid() else ""
        self.add_button.setEnabled(bool(self.chosen))

    @Slot(QModelIndex)
    def _on_double_click(self, index: QModelIndex) -> None:
        self._on_current(index, QModelIndex())
        if self.chosen:
            self.accept()
