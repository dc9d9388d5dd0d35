"""The Library's toolbar: search, architecture/folder filters, favourites/trigger/duplicate
checks, sort, grid/list switch and the Folders menu button.

It owns no data: every change is a signal that :class:`ui.library.workspace.LibraryWorkspace`
connects to the filter proxy and the views.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QToolButton,
    QWidget,
)

from ui.library.model import ARCH_GROUPS, SORT_LABELS, SORT_MODES
from zitdesk.library.index import LoraEntry
from zitdesk.library.roots import Root


class LibraryToolbar(QWidget):
    """Filter, sort and view controls (one row)."""

    search_changed = Signal(str)
    arch_changed = Signal(str)  # an ARCH_GROUPS key or an architecture id ("" = all)
    folder_changed = Signal(str)  # a root path ("" = all folders)
    favourites_toggled = Signal(bool)
    has_trigger_toggled = Signal(bool)
    duplicates_toggled = Signal(bool)
    sort_changed = Signal(str)  # a SORT_MODES value
    view_mode_changed = Signal(str)  # "grid" | "list"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search LoRAs…")  # fits the field at the window's minimum
        self.search.setToolTip(
            "Searches names, trigger words, tags, authors and your notes (Ctrl+F)"
        )
        self.search.setClearButtonEnabled(True)
        self.search.setMinimumWidth(120)
        self.search.textChanged.connect(self.search_changed)
        self.arch_combo = QComboBox()
        for value, label in ARCH_GROUPS.items():
            self.arch_combo.addItem(label, value)
        self.arch_combo.currentIndexChanged.connect(
            lambda _i: self.arch_changed.emit(str(self.arch_combo.currentData() or ""))
        )
        self.folder_combo = QComboBox()
        self.folder_combo.addItem("All folders", "")
        self.folder_combo.setMinimumContentsLength(14)
        self.folder_combo.currentIndexChanged.connect(
            lambda _i: self.folder_changed.emit(str(self.folder_combo.currentData() or ""))
        )
        self.fav_check = QCheckBox("★ Favourites")
        self.fav_check.toggled.connect(self.favourites_toggled)
        self.trigger_check = QCheckBox("Has trigger words")
        self.trigger_check.toggled.connect(self.has_trigger_toggled)
        self.dup_check = QCheckBox("Duplicates")
        self.dup_check.setToolTip(
            "Files whose sha256 equals another file's (hashes are computed in the background)"
        )
        self.dup_check.toggled.connect(self.duplicates_toggled)
        self.sort_combo = QComboBox()
        for mode in SORT_MODES:
            self.sort_combo.addItem(SORT_LABELS[mode], mode)
        self.sort_combo.currentIndexChanged.connect(
            lambda _i: self.sort_changed.emit(str(self.sort_combo.currentData()))
        )
        self.grid_button = QToolButton()
        self.grid_button.setText("Grid")
        self.list_button = QToolButton()
        self.list_button.setText("List")
        group = QButtonGroup(self)
        for b in (self.grid_button, self.list_button):
            b.setCheckable(True)
            group.addButton(b)
        self.grid_button.setChecked(True)
        self.grid_button.toggled.connect(self._on_grid_toggled)
        # a push button with a menu keeps room for its arrow (a tool button drew it over "s")
        self.folders_button = QPushButton("Folders")
        self.folders_button.setToolTip("Add, remove or rescan the folders the Library watches")
        self.folders_menu = QMenu(self)
        self.folders_button.setMenu(self.folders_menu)

        bar = QHBoxLayout(self)
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.search, 2)
        bar.addWidget(self.arch_combo)
        bar.addWidget(self.folder_combo)
        bar.addWidget(self.fav_check)
        bar.addWidget(self.trigger_check)
        bar.addWidget(self.dup_check)
        bar.addStretch(1)
        bar.addWidget(QLabel("Sort"))
        bar.addWidget(self.sort_combo)
        bar.addWidget(self.grid_button)
        bar.addWidget(self.list_button)
        bar.addWidget(self.folders_button)

    @property
    def view_mode(self) -> str:
        return "grid" if self.grid_button.isChecked() else "list"

    def set_view_mode(self, mode: str) -> None:
        (self.grid_button if mode == "grid" else self.list_button).setChecked(True)

    @Slot(bool)
    def _on_grid_toggled(self, grid: bool) -> None:
        self.view_mode_changed.emit("grid" if grid else "list")

    @Slot()
    def clear_filters(self) -> None:
        self.search.clear()
        self.arch_combo.setCurrentIndex(0)
        self.folder_combo.setCurrentIndex(0)
        for box in (self.fav_check, self.trigger_check, self.dup_check):
            box.setChecked(False)

    def sync_choices(self, entries: Iterable[LoraEntry], roots: Iterable[Root]) -> None:
        """Offer "<arch> only" for each foreign architecture found and each scanned folder."""
        archs = sorted(
            {
                (e.arch, e.arch_label)
                for e in entries
                if e.status == "ok" and e.arch not in ("zimage",)
            },
            key=lambda a: a[1],
        )
        have = {self.arch_combo.itemData(i) for i in range(self.arch_combo.count())}
        for arch, label in archs:
            if arch not in have:
                self.arch_combo.addItem(f"{label} only", arch)
        have = {self.folder_combo.itemData(i) for i in range(self.folder_combo.count())}
        for r in roots:
            if r.path not in have:
                self.folder_combo.addItem(r.label, r.path)
