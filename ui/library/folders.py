"""Folder management for the Library: "Add a LoRA folder…", the Folders menu (open / remove each
scanned folder) and opening a LoRA's folder in the file manager."""

from __future__ import annotations

from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from ui.library.controller import LibraryController
from ui.widgets.text import menu_text
from zitdesk.library.store import LibraryStore


def open_in_file_manager(folder: str) -> None:
    QDesktopServices.openUrl(QUrl.fromLocalFile(folder))


class FolderActions(QObject):
    """Fills ``menu`` on each show; adds and removes library folders through the controller."""

    def __init__(
        self,
        controller: LibraryController,
        store: LibraryStore,
        menu: QMenu,
        dialog_parent: QWidget,
    ) -> None:
        super().__init__(dialog_parent)
        self.controller, self.store, self.menu = controller, store, menu
        self._dialog_parent = dialog_parent
        menu.aboutToShow.connect(self.fill_menu)

    def add_folder(self, folder: str) -> bool:
        return self.controller.add_folder(folder)

    @Slot()
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self._dialog_parent, "Add a LoRA folder")
        if folder:
            self.add_folder(folder)

    @Slot()
    def fill_menu(self) -> None:
        m = self.menu
        m.clear()
        m.addAction("Add folder…", self.choose_folder)
        roots = self.controller.roots or self.controller.current_roots()
        if roots:
            m.addSeparator()
        for r in roots:
            label = f"{r.path}" + ("" if r.origin == "user" else f"  (auto: {r.origin})")
            sub = m.addMenu(menu_text(label))
            sub.addAction("Open", lambda p=r.path: open_in_file_manager(p))
            if r.path in self.store.folders:
                sub.addAction(
                    "Remove from library", lambda p=r.path: self.controller.remove_folder(p)
                )
