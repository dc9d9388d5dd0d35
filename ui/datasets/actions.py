"""What the user does to the images of the open dataset: bulk edit, snapshots, flag, exclude
from training, move to the trash (and crop, :mod:`ui.datasets.crop`).

:class:`DatasetActions` is the one place for these actions. Each is a slot the toolbar's
signal or a shortcut is connected to; it reads the selection from the
:class:`~ui.datasets.navigation.Navigator`, changes the dataset through the
:class:`~ui.datasets.session.DatasetSession` (undoable) and reports through
``message(level, text)``. Before it reads captions it emits ``commit_editors`` (a direct
connection: an open caption editor is committed first).

**Adding an action** (e.g. "Caption…"): a button + signal in
:class:`~ui.datasets.toolbar.DatasetToolbar` (its ``extra`` row takes more buttons without
touching the rest), a slot here (or in your own module, given ``actions.session`` and
``actions.selected_names()``), and one ``connect`` in the workspace's ``_wire_actions``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QFile, QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QInputDialog, QMessageBox, QWidget

from ui.datasets.bulk_dialog import BulkEditDialog
from ui.datasets.commands import ExcludeCommand, FlagCommand
from ui.datasets.crop import CropDialog, load_upright
from ui.datasets.navigation import Navigator
from ui.datasets.session import DatasetSession
from ui.datasets.table_model import DatasetTableModel


def wide_input(parent: QWidget, title: str, label: str) -> QInputDialog:
    """A QInputDialog wide enough that its title is never cut short."""
    dlg = QInputDialog(parent)
    dlg.setWindowTitle(title)
    dlg.setLabelText(label)
    dlg.setMinimumWidth(max(460, dlg.fontMetrics().horizontalAdvance(title) + 160))
    return dlg


def move_to_trash(path: Path) -> bool:
    """The system trash through Qt (``send2trash`` is the usual library; not a dependency)."""
    if not path.exists():
        return True
    ok = QFile.moveToTrash(str(path))
    return bool(ok[0] if isinstance(ok, tuple) else ok)


def snapshot_label(path: Path) -> str:
    """ "2026-12-04 21:00:00 — before “Add trigger word”" for a snapshot file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data.get("created", 0)))
        return f"{when} — before “{data.get('label', '')}”"
    except (OSError, ValueError):
        return path.name


class DatasetActions(QObject):
    """See the module doc. ``dialog_parent``: the widget dialogs open over."""

    message = Signal(str, str)
    commit_editors = Signal()

    def __init__(
        self,
        session: DatasetSession,
        model: DatasetTableModel,
        nav: Navigator,
        dialog_parent: QWidget,
        training_trigger=lambda: "",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.model, self.nav = session, model, nav
        self.dialog_parent = dialog_parent
        self.training_trigger = training_trigger
        self.bulk_dialog: BulkEditDialog | None = None
        self.trash_box: QMessageBox | None = None
        self.crop_dialog: CropDialog | None = None
        session.image_changed.connect(self._on_image_changed)
        # the check's largest training resolution, if known (the workspace sets it)
        self.resolution: Callable[[], int | None] = lambda: None

    def selected_names(self) -> list[str]:
        return [self.model.item(r).name for r in self.nav.selected_rows()]

    # --- bulk edit, snapshots ------------------------------------------------------------------

    @Slot()
    def open_bulk_edit(self, op: int = 0) -> BulkEditDialog | None:
        ds = self.session.dataset
        if ds is None:
            return None
        self.commit_editors.emit()
        selected = [self.model.item(r) for r in self.nav.selected_rows()]
        scopes = {
            "selected": [(it.name, it.caption) for it in selected],
            "filtered": [(it.name, it.caption) for it in self.model.visible_items()],
            "all": [(it.name, it.caption) for it in ds.items],
        }
        trig = self.training_trigger()
        dlg = BulkEditDialog(scopes, trig, self.dialog_parent, initial_op=op, training_trigger=trig)
        dlg.accepted.connect(self._on_bulk_accepted)
        dlg.finished.connect(dlg.deleteLater)
        self.bulk_dialog = dlg
        dlg.open()
        return dlg

    @Slot()
    def _on_bulk_accepted(self) -> None:
        dlg = self.sender()
        if isinstance(dlg, BulkEditDialog) and dlg.changes:
            self.session.edit(dlg.label, dlg.changes, snapshot=True)
            self.message.emit(
                "info",
                f"{dlg.label}. A snapshot of all captions was saved first; Ctrl+Z undoes it.",
            )

    @Slot()
    def choose_snapshot(self) -> None:
        hist = self.session.history
        if hist is None:
            return
        hist.flush()
        snaps = list(reversed(hist.list_snapshots()))
        if not snaps:
            self.message.emit("info", "No snapshot yet: one is taken before every bulk edit.")
            return
        labels = [snapshot_label(p) for p in snaps]
        dlg = wide_input(
            self.dialog_parent, "Restore a snapshot of the captions", "Set every caption back to:"
        )
        dlg.setComboBoxItems(labels)
        dlg.setComboBoxEditable(False)
        if dlg.exec():
            self.restore_snapshot(snaps[labels.index(dlg.textValue())])

    def restore_snapshot(self, path: Path) -> int:
        """Bring captions back to a snapshot as one undoable edit; returns the changed count."""
        from zitdesk.dataset.history import restore_changes

        ds, hist = self.session.dataset, self.session.history
        if ds is None or hist is None:
            return 0
        changes = restore_changes(ds.captions(), hist.read_snapshot(path))
        if not changes:
            self.message.emit("info", "The captions already match that snapshot.")
            return 0
        self.session.edit(
            f"Restore snapshot {path.stem} ({len(changes):,} captions)", changes, snapshot=True
        )
        self.message.emit("info", f"Restored {len(changes):,} caption(s); Ctrl+Z undoes it.")
        return len(changes)

    # --- curation ------------------------------------------------------------------------------

    @Slot()
    def toggle_flag(self) -> None:
        rows = self.nav.selected_rows()
        if not rows or self.session.dataset is None:
            return
        names = [self.model.item(r).name for r in rows]
        flag = not all(self.model.item(r).flagged for r in rows)
        self.session.undo_stack.push(FlagCommand(self.session, names, flag))

    @Slot()
    def toggle_excluded(self) -> None:
        """Exclude the selected images from training (or include them again); undoable."""
        rows = self.nav.selected_rows()
        if not rows or self.session.dataset is None:
            return
        names = [self.model.item(r).name for r in rows]
        excluded = not all(self.model.item(r).excluded for r in rows)
        self.session.undo_stack.push(ExcludeCommand(self.session, names, excluded))

    @Slot()
    def confirm_trash(self) -> None:
        names = self.selected_names()
        if not names or self.session.dataset is None:
            return
        what = names[0] if len(names) == 1 else f"{len(names):,} images"
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Move to the trash",
            f"Move {what} and {'its' if len(names) == 1 else 'their'} caption to "
            "the system trash? You can restore them from there; Undo cannot.",
            QMessageBox.StandardButton.Cancel,
            self.dialog_parent,
        )
        box.setTextFormat(Qt.TextFormat.PlainText)
        ok = box.addButton("Move to trash", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.finished.connect(lambda _r: self.trash(names) if box.clickedButton() is ok else None)
        box.finished.connect(box.deleteLater)
        self.trash_box = box
        box.open()

    def trash(self, names: list[str]) -> list[str]:
        """Move images (and their captions) to the system trash now; returns those removed."""
        self.commit_editors.emit()
        return self.session.trash(names, move_to_trash)

    @Slot()
    def open_crop(self) -> CropDialog | None:
        """The crop tool for the current image (see :mod:`ui.datasets.crop`)."""
        ds = self.session.dataset
        name = self.nav.current_name()
        rec = self.session.record(name) if name else None
        if ds is None or rec is None:
            return None
        from zitdesk.dataset.crop import original_of

        try:
            img, w, h = load_upright(str(ds.image_path(rec)))
        except OSError as exc:
            self.message.emit("error", f"{rec.name} cannot be shown for cropping: {exc}.")
            return None
        dlg = CropDialog(
            rec.name,
            img,
            (w, h),
            resolution=self.resolution(),
            has_original=original_of(ds.folder, rec.name) is not None,
            parent=self.dialog_parent,
        )
        dlg.accepted.connect(lambda: self._on_crop_accepted(rec.name, dlg))
        dlg.restore_requested.connect(lambda: self.session.restore_original(rec.name))
        dlg.finished.connect(dlg.deleteLater)
        self.crop_dialog = dlg
        dlg.open()
        return dlg

    def _on_crop_accepted(self, name: str, dlg: CropDialog) -> None:
        self.session.crop(name, dlg.box)

    @Slot(object)
    def _on_image_changed(self, done) -> None:
        w, h = done.after
        if done.restored_from is not None:
            text = (
                f"Put back {done.name} as it was before its first crop ({w}×{h}); Ctrl+Z undoes it."
            )
        else:
            text = (
                f"Cropped {done.name} to {w}×{h}; the picture as it was is kept, "
                "Ctrl+Z brings it back."
            )
        self.message.emit("info", text)
