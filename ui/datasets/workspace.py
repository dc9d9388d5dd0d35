"""The Datasets workspace: import, caption table and grid, bulk edits with undo, statistics.

Constructor (what the main window calls)::

    DatasetsWorkspace(parent: QWidget | None = None, *,
                      folder: str | Path | None = None,        # open this dataset at start
                      tokenizer_loader=default_tokenizer_loader,  # None: no token counts
                      thumb_cache_dir: Path | None = None,     # default: user cache/thumbs
                      datasets_root: Path | None = None,       # default: user data/datasets
                      remember: bool = True,                   # reopen the last folder
                      auto_check: bool = True)                 # run the pre-flight check on open

Call :meth:`DatasetsWorkspace.shutdown` from the window's close/shutdown path: it stops timers,
waits for this workspace's workers and writes every pending caption (blocking, short).

Parts, each with one job, connected by signals: :class:`~ui.datasets.toolbar.DatasetToolbar`
(the buttons), :class:`~ui.datasets.importing.ImportController` (import job and its progress),
:class:`~ui.datasets.session.DatasetSession` (the open dataset, undo, autosave, watcher, check),
:class:`~ui.datasets.views.CaptionTable` / :class:`~ui.datasets.views.GridPanel` (the views),
:class:`~ui.datasets.stats_panel.StatsPanel` (check and statistics). This class lays them out,
wires them and keeps navigation (current row, filter, next missing caption).

Everything slow runs on private pools (:class:`ui.tasks.TaskRunner`, :mod:`ui.datasets.thumbs`):
opening (headers + captions), import, hashing, token counting, the check and caption writes.
Keys (active while the workspace has focus): Alt+↓/Alt+↑ next/previous image, F3/Shift+F3 next/
previous missing caption, F2/Enter edit caption; in the caption editor Return commits,
Shift+Return starts a new line, Esc reverts; Ctrl+S save now, Ctrl+F filter, Ctrl+B bulk edit,
Ctrl+K flag/unflag, Ctrl+E exclude from training/include, Delete move to the trash,
Ctrl+Z/Ctrl+Shift+Z undo/redo, Ctrl+Shift+G switch table/grid.

The last opened folder is kept in the app's own settings file (:func:`ui.state.window_settings`,
under ``ZITDESK_HOME``), never in Qt's default ``QSettings`` location.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QFile, QModelIndex, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemDelegate,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ui.datasets.bulk_dialog import BulkEditDialog
from ui.datasets.commands import ExcludeCommand, FlagCommand
from ui.datasets.dialogs import ConflictDialog, ImportReportDialog, import_summary
from ui.datasets.importing import ImportController
from ui.datasets.navigation import FilterBar, Navigator
from ui.datasets.session import DatasetSession, default_tokenizer_loader
from ui.datasets.stats_panel import StatsPanel
from ui.datasets.table_model import Col, DatasetTableModel, FilterMode
from ui.datasets.thumbs import ThumbnailService
from ui.datasets.toolbar import DatasetToolbar
from ui.datasets.views import CaptionTable, GridPanel
from ui.state import window_settings
from ui.widgets.banner import BannerWidget
from ui.widgets.text import plain_label, set_plain_tooltip
from zitdesk.dataset.importer import ImportReport
from zitdesk.io import user_dirs

log = logging.getLogger(__name__)

SETTINGS_KEY = "datasets/last_folder"
RECHECK_MS = 2500


def _wide_input(parent: QWidget, title: str, label: str) -> QInputDialog:
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


class _EmptyState(QWidget):
    def __init__(self, open_cb, new_cb, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("Drop images, folders or .zip archives here")
        title.setObjectName("placeholderTitle")
        body = QLabel(
            "They are copied into a dataset folder with their .txt or .caption files; "
            "the originals are never changed. Or open a folder of images and captions "
            "you already have."
        )
        body.setObjectName("muted")
        body.setWordWrap(True)
        body.setFixedWidth(560)
        # A word-wrapped label in a centred layout is otherwise given one line's height.
        body.setMinimumHeight(body.heightForWidth(560))
        b1 = QPushButton("Open dataset folder…")
        b1.clicked.connect(open_cb)
        b2 = QPushButton("New dataset…")
        b2.clicked.connect(new_cb)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(b1)
        row.addWidget(b2)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        lay.addWidget(title, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addSpacing(10)
        lay.addWidget(body, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addSpacing(14)
        lay.addLayout(row)
        lay.addStretch(2)


class DatasetsWorkspace(QWidget):
    """See the module doc for the constructor and keys."""

    folder_changed = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        folder: str | Path | None = None,
        tokenizer_loader=default_tokenizer_loader,
        thumb_cache_dir: Path | None = None,
        datasets_root: Path | None = None,
        remember: bool = True,
        auto_check: bool = True,
    ) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.remember = remember
        self.auto_check = auto_check
        self.datasets_root = datasets_root or (user_dirs()["data"] / "datasets")
        self.session = DatasetSession(tokenizer_loader, self)
        self.thumbs = ThumbnailService(cache_dir=thumb_cache_dir, parent=self)
        self.model = DatasetTableModel(self.thumbs, self)
        self.model.editor = self._edit_from_model
        self.importer = ImportController(self.thumbs.cache_dir, self)
        self.bulk_dialog: BulkEditDialog | None = None
        self.last_import: ImportReport | None = None
        self._pending_conflicts: list = []
        self._check_queued = None

        # --- parts ---------------------------------------------------------------------------
        self.undo_action = self.session.undo_stack.createUndoAction(self, "Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.session.undo_stack.createRedoAction(self, "Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for a in (self.undo_action, self.redo_action):
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(a)
        self.toolbar = DatasetToolbar(self.undo_action, self.redo_action)
        self.path_label = self.toolbar.path_label
        trigger = lambda: self.session.trigger  # noqa: E731 - read when an editor opens
        self.table = CaptionTable(self.model, self.thumbs, trigger=trigger)
        self.grid = GridPanel(self.model, self.thumbs, trigger=trigger)
        self.empty = _EmptyState(self.choose_folder, self.new_dataset)
        self.stack = QStackedWidget()
        for w in (self.empty, self.table, self.grid):
            self.stack.addWidget(w)
        self.stats = StatsPanel()
        self.stats.setMinimumWidth(300)
        self.banner = BannerWidget()
        self.progress = self.importer.bar

        self.filter_bar = FilterBar()
        self.filter_edit = self.filter_bar.edit
        self.filter_mode = self.filter_bar.mode
        self.count_label = self.filter_bar.count_label
        self.next_missing_button = self.filter_bar.next_missing_button
        self.nav = Navigator(
            self.model, self.table, self.grid, self.stack, self.toolbar, self.filter_bar, self
        )

        self.save_label = plain_label(object_name="muted")

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.filter_bar)
        lv.addWidget(self.stack, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.stats)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.addWidget(self.toolbar)
        lay.addWidget(self.banner)
        lay.addWidget(self.progress)
        lay.addWidget(self.splitter, 1)
        lay.addWidget(self.save_label)

        self._recheck = QTimer(self, singleShot=True, interval=RECHECK_MS)
        self._recheck.timeout.connect(self._run_check)

        # --- wiring --------------------------------------------------------------------------
        s = self.session
        s.opened.connect(self._on_opened)
        s.open_failed.connect(self._on_open_failed)
        s.captions_changed.connect(self._on_captions_changed)
        s.flags_changed.connect(self._on_flags_changed)
        s.images_removed.connect(self._on_images_removed)
        s.tokens_counted.connect(self._on_tokens)
        s.check_done.connect(self._on_check_done)
        s.check_progress.connect(self.stats.set_progress)
        s.conflicts_found.connect(self._on_conflicts)
        s.images_changed_outside.connect(self._on_images_outside)
        s.message.connect(self._on_message)
        s.save_state_changed.connect(self.save_label.setText)
        self.thumbs.on_analysed(self._on_analysed)
        self.importer.finished.connect(self._on_import_done)
        self.importer.failed.connect(self._on_import_failed)
        # background work steps aside while the user scrolls, filters or sorts
        gate = s.gate
        self.thumbs.gate = gate
        for bar in (self.table.verticalScrollBar(), self.grid.grid.verticalScrollBar()):
            bar.valueChanged.connect(gate.hold)
        self.filter_edit.textChanged.connect(gate.hold)
        self.filter_mode.currentIndexChanged.connect(gate.hold)
        self.table.selectionModel().currentChanged.connect(gate.hold)
        self.grid.grid.selectionModel().currentChanged.connect(gate.hold)
        self.grid.editor.textChanged.connect(gate.hold)
        self.table.horizontalHeader().sortIndicatorChanged.connect(gate.hold)
        self.stats.check_requested.connect(self._on_check_requested)
        self.stats.trigger_changed.connect(s.set_trigger)
        self.stats.issue_selected.connect(self.nav.show_issue)
        self.nav.commit_editors.connect(self._commit_editors)
        self.nav.message.connect(self._on_message)
        self.grid.caption_committed.connect(self._on_grid_commit)
        self.banner.action_clicked.connect(self._on_banner_action)
        tb = self.toolbar
        tb.open_requested.connect(self.choose_folder)
        tb.new_requested.connect(self.new_dataset)
        tb.import_files_requested.connect(self.choose_import)
        tb.import_folder_requested.connect(self.choose_import_folder)
        tb.bulk_requested.connect(self.open_bulk_edit)
        tb.snapshots_requested.connect(self.choose_snapshot)
        tb.exclude_requested.connect(self.toggle_excluded)
        tb.trash_requested.connect(self.confirm_trash)

        self.shortcuts: dict[str, QShortcut] = {}
        for name, keys, slot in (
            ("next", "Alt+Down", self.next_image),
            ("previous", "Alt+Up", self.previous_image),
            ("next_missing", "F3", self.next_missing),
            ("previous_missing", "Shift+F3", self.previous_missing),
            ("save", "Ctrl+S", self.save_now),
            ("filter", "Ctrl+F", self.focus_filter),
            ("bulk", "Ctrl+B", self.open_bulk_edit),
            ("flag", "Ctrl+K", self.toggle_flag),
            ("exclude", "Ctrl+E", self.toggle_excluded),
            ("switch_view", "Ctrl+Shift+G", self.nav.toggle_view),
        ):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
            self.shortcuts[name] = sc
        # Delete only from the views: in a text field it deletes text
        for view in (self.table, self.grid.grid):
            sc = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), view)
            sc.setContext(Qt.ShortcutContext.WidgetShortcut)
            sc.activated.connect(self.confirm_trash)
            self.shortcuts[f"trash_{view.objectName()}"] = sc

        self._set_enabled(False)
        self.stack.setCurrentWidget(self.empty)
        start = folder
        if start is None and remember:
            last = window_settings().value(SETTINGS_KEY, "")
            if last and Path(str(last)).is_dir():
                start = str(last)
        if start is not None:
            self.open_folder(start)

    # --- opening and creating ----------------------------------------------------------------

    def open_folder(self, folder: str | Path) -> None:
        self.path_label.setText(f"Opening {folder} …")
        self.session.open(folder)

    @Slot()
    def choose_folder(self) -> None:
        start = (
            str(self.session.dataset.folder) if self.session.dataset else str(self.datasets_root)
        )
        d = QFileDialog.getExistingDirectory(self, "Open dataset folder", start)
        if d:
            self.open_folder(d)

    @Slot()
    def new_dataset(self, name: str | None = None) -> Path | None:
        if not name:
            dlg = _wide_input(self, "New dataset", "Name of the new dataset:")
            if not dlg.exec() or not dlg.textValue().strip():
                return None
            name = dlg.textValue()
        from zitdesk.dataset.importer import safe_stem

        folder = self.datasets_root / safe_stem(name.strip())
        n = 2
        while folder.exists() and any(folder.iterdir()):
            folder = self.datasets_root / f"{safe_stem(name.strip())}-{n}"
            n += 1
        folder.mkdir(parents=True, exist_ok=True)
        self.open_folder(folder)
        return folder

    @Slot(object)
    def _on_opened(self, ds) -> None:
        current = self._current_name()
        self.thumbs.set_folder(ds.folder)
        self.model.set_dataset(ds)
        self.path_label.setText(str(ds.folder))
        set_plain_tooltip(self.path_label, str(ds.folder))
        self._set_enabled(True)
        self.stack.setCurrentWidget(self.grid if self.toolbar.view == "grid" else self.table)
        if current:
            self.select_name(current)
        elif self.model.rowCount():
            self.select_row(0)
        if ds.problems:
            self._on_message(
                "warning",
                f"{len(ds.problems)} file(s) cannot be read: " + " ".join(ds.problems[:2]),
            )
        if self.remember:
            window_settings().setValue(SETTINGS_KEY, str(ds.folder))
        self.folder_changed.emit(str(ds.folder))
        self.session._set_save_state("Unsaved changes…" if ds.pending else "All changes saved")
        if self.auto_check:
            self._run_check()

    @Slot(str)
    def _on_open_failed(self, msg: str) -> None:
        self.path_label.setText("No dataset open")
        self._on_message("error", f"Could not open the dataset: {msg}")

    def _set_enabled(self, on: bool) -> None:
        self.toolbar.set_dataset_open(on)
        for w in (self.filter_edit, self.filter_mode, self.next_missing_button, self.stats):
            w.setEnabled(on)

    # --- import ------------------------------------------------------------------------------

    @Slot()
    def choose_import(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self,
            "Import images into the dataset",
            str(Path.home()),
            "Images, captions and archives (*.png *.jpg *.jpeg *.webp *.bmp *.tif *.tiff *.gif "
            "*.txt *.caption *.zip);;All files (*)",
        )
        if files:
            self.import_paths(files)

    @Slot()
    def choose_import_folder(self) -> None:
        """One action for a whole folder: its images, captions and any .zip inside it."""
        d = QFileDialog.getExistingDirectory(
            self, "Import a folder into the dataset", str(Path.home())
        )
        if d:
            self.import_paths([d])

    def import_paths(self, paths: list[str | Path], target: Path | None = None) -> bool:
        """Import into the open dataset (or ``target``); False if an import is running."""
        if self.importer.active:
            self._on_message("warning", "An import is already running.")
            return False
        if target is None:
            if self.session.dataset is None:
                first = Path(paths[0]) if paths else Path("dataset")
                target = self.new_dataset(first.stem if first.suffix else first.name)
                if target is None:
                    return False
            else:
                target = self.session.dataset.folder
        return self.importer.start(paths, target)

    @Slot(object, object)
    def _on_import_done(self, target, rep: ImportReport) -> None:
        self.last_import = rep
        self.banner.show_message(
            import_summary(rep),
            "warning" if rep.skipped else "info",
            "Show report",
            "import_report",
        )
        ds = self.session.dataset
        if ds is not None and str(ds.folder) == str(target):
            self.session.reload()
        else:
            self.open_folder(target)

    @Slot(str)
    def _on_import_failed(self, msg: str) -> None:
        self._on_message("error", f"Import failed: {msg}")

    def dragEnterEvent(self, e: QDragEnterEvent) -> None:
        if e.mimeData().hasUrls() and any(u.isLocalFile() for u in e.mimeData().urls()):
            e.acceptProposedAction()
        else:
            super().dragEnterEvent(e)

    def dropEvent(self, e: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in e.mimeData().urls() if u.isLocalFile()]
        if paths:
            e.acceptProposedAction()
            self.import_paths(paths)

    # --- edits -------------------------------------------------------------------------------

    def _edit_from_model(self, label: str, changes) -> None:
        self.session.edit(label, list(changes))

    @Slot(str, object, str)
    def _on_grid_commit(self, name: str, old, new: str) -> None:
        self.session.edit(f"Edit caption of {name}", [(name, old, new)])

    @Slot(list)
    def _on_captions_changed(self, names: list) -> None:
        self.model.captions_changed(names)
        self._check_follows()

    @Slot(list)
    def _on_flags_changed(self, names: list) -> None:
        self.model.captions_changed(names)
        self._check_follows()

    def _check_follows(self) -> None:
        """The check panel follows edits: run it again after a pause (never stale)."""
        if self.auto_check and self.session.dataset is not None:
            self._recheck.start()

    @Slot()
    def open_bulk_edit(self, op: int = 0) -> BulkEditDialog | None:
        ds = self.session.dataset
        if ds is None:
            return None
        self._commit_editors()
        selected = [self.model.item(r) for r in self._selected_rows()]
        scopes = {
            "selected": [(it.name, it.caption) for it in selected],
            "filtered": [(it.name, it.caption) for it in self.model.visible_items()],
            "all": [(it.name, it.caption) for it in ds.items],
        }
        trig = self.stats.trigger.text().strip()
        dlg = BulkEditDialog(scopes, trig, self, initial_op=op, training_trigger=trig)
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
            self._on_message(
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
            self._on_message("info", "No snapshot yet: one is taken before every bulk edit.")
            return
        labels = [self._snapshot_label(p) for p in snaps]
        dlg = _wide_input(self, "Restore a snapshot of the captions", "Set every caption back to:")
        dlg.setComboBoxItems(labels)
        dlg.setComboBoxEditable(False)
        if dlg.exec():
            self.restore_snapshot(snaps[labels.index(dlg.textValue())])

    @staticmethod
    def _snapshot_label(path: Path) -> str:
        import json
        import time

        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data.get("created", 0)))
            return f"{when} — before “{data.get('label', '')}”"
        except (OSError, ValueError):
            return path.name

    def restore_snapshot(self, path: Path) -> int:
        """Bring captions back to a snapshot as one undoable edit; returns the changed count."""
        from zitdesk.dataset.history import restore_changes

        ds, hist = self.session.dataset, self.session.history
        if ds is None or hist is None:
            return 0
        changes = restore_changes(ds.captions(), hist.read_snapshot(path))
        if not changes:
            self._on_message("info", "The captions already match that snapshot.")
            return 0
        self.session.edit(
            f"Restore snapshot {path.stem} ({len(changes):,} captions)", changes, snapshot=True
        )
        self._on_message("info", f"Restored {len(changes):,} caption(s); Ctrl+Z undoes it.")
        return len(changes)

    @Slot()
    def toggle_flag(self) -> None:
        rows = self._selected_rows()
        if not rows or self.session.dataset is None:
            return
        names = [self.model.item(r).name for r in rows]
        flag = not all(self.model.item(r).flagged for r in rows)
        self.session.undo_stack.push(FlagCommand(self.session, names, flag))

    @Slot()
    def toggle_excluded(self) -> None:
        """Exclude the selected images from training (or include them again); undoable."""
        rows = self._selected_rows()
        if not rows or self.session.dataset is None:
            return
        names = [self.model.item(r).name for r in rows]
        excluded = not all(self.model.item(r).excluded for r in rows)
        self.session.undo_stack.push(ExcludeCommand(self.session, names, excluded))

    @Slot()
    def confirm_trash(self) -> None:
        rows = self._selected_rows()
        if not rows or self.session.dataset is None:
            return
        names = [self.model.item(r).name for r in rows]
        what = names[0] if len(names) == 1 else f"{len(names):,} images"
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Move to the trash",
            f"Move {what} and {'its' if len(names) == 1 else 'their'} caption to "
            "the system trash? You can restore them from there; Undo cannot.",
            QMessageBox.StandardButton.Cancel,
            self,
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
        self._commit_editors()
        return self.session.trash(names, move_to_trash)

    @Slot(list)
    def _on_images_removed(self, names: list) -> None:
        row = self._current_row()
        for n in names:
            self.thumbs.forget(n)
        self.model.set_dataset(self.session.dataset)
        if self.model.rowCount():
            self.select_row(min(max(row, 0), self.model.rowCount() - 1))
        n = len(names)
        self._on_message("info", f"Moved {names[0] if n == 1 else f'{n:,} images'} to the trash.")
        self._check_follows()

    @Slot()
    def save_now(self) -> None:
        self._commit_editors()
        self.session.flush_now()

    def _commit_editors(self) -> None:
        """Commit an open caption editor (table) or the caption pane (grid)."""
        self.grid.commit()
        editor = self.focusWidget()
        if editor is not None and editor.objectName() == "captionEditor":
            self.table.commitData(editor)
            self.table.closeEditor(editor, QAbstractItemDelegate.EndEditHint.NoHint)

    # --- navigation (ui.datasets.navigation.Navigator) ---------------------------------------

    def _current_row(self) -> int:
        return self.nav.current_row()

    def _current_name(self) -> str | None:
        return self.nav.current_name()

    def _selected_rows(self) -> list[int]:
        return self.nav.selected_rows()

    def select_row(self, row: int, edit: bool = False) -> None:
        self.nav.select_row(row, edit)

    def select_name(self, name: str) -> bool:
        return self.nav.select_name(name)

    @Slot()
    def next_image(self) -> None:
        self.nav.next_image()

    @Slot()
    def previous_image(self) -> None:
        self.nav.previous_image()

    @Slot()
    def next_missing(self) -> None:
        self.nav.next_missing()

    @Slot()
    def previous_missing(self) -> None:
        self.nav.previous_missing()

    @Slot()
    def focus_filter(self) -> None:
        self.nav.focus_filter()

    @Slot()
    def show_table(self) -> None:
        self.nav.switch(self.table)

    @Slot()
    def show_grid(self) -> None:
        self.nav.switch(self.grid)

    @Slot()
    def toggle_view(self) -> None:
        self.nav.toggle_view()

    def set_filter(self, text: str = "", mode: FilterMode = FilterMode.ALL) -> None:
        self.nav.set_filter(text, mode)

    # --- check, tokens -----------------------------------------------------------------------

    @Slot()
    def _run_check(self) -> None:
        self._on_check_requested(self.stats.options())

    @Slot(object)
    def _on_check_requested(self, opts) -> None:
        self.session.set_trigger(opts.trigger)
        if self.session.run_check(opts):
            self.stats.set_busy(True)
            self._check_queued = None
        elif self.session.checking:
            self._check_queued = opts  # run again as soon as this one finishes

    def _on_analysed(self, facts: list) -> None:
        for name, sha, ph in facts:
            self.session.record_analysis(name, sha, ph)

    @Slot(object)
    def _on_check_done(self, rep) -> None:
        queued, self._check_queued = self._check_queued, None
        self.stats.set_report(rep)
        self.model.set_check_flags(rep.flags)
        self.grid.set_resolution(max(rep.options.resolutions) if rep.options.resolutions else None)
        if queued is not None:
            self._on_check_requested(queued)

    @Slot(dict, int)
    def _on_tokens(self, counts: dict, limit: int) -> None:
        self.model.set_tokens(counts, limit)

    # --- messages, conflicts -----------------------------------------------------------------

    @Slot(str, str)
    def _on_message(self, level: str, text: str) -> None:
        self.banner.show_message(text, level)

    @Slot(list)
    def _on_conflicts(self, conflicts: list) -> None:
        self._pending_conflicts = list(conflicts)
        n = len(conflicts)
        self.banner.show_message(
            f"{n} caption file(s) were changed by another program while you edited them. Their "
            "version is kept; yours is saved beside it (.zitdesk-conflict).",
            "warning",
            "Review…",
            "conflicts",
        )

    def review_conflicts(self) -> ConflictDialog | None:
        if not self._pending_conflicts:
            return None
        dlg = ConflictDialog(self._pending_conflicts, self)
        dlg.resolved.connect(self.session.resolve_conflict)
        dlg.finished.connect(dlg.deleteLater)
        self._pending_conflicts = []
        dlg.open()
        return dlg

    @Slot()
    def _on_images_outside(self) -> None:
        self.banner.show_message(
            "Images were added or removed in this folder outside zitdesk.",
            "info",
            "Reload",
            "reload",
        )

    @Slot(str)
    def _on_banner_action(self, key: str) -> None:
        if key == "conflicts":
            self.review_conflicts()
        elif key == "reload":
            self.session.reload()
        elif key == "import_report" and self.last_import is not None:
            dlg = ImportReportDialog(self.last_import, self)
            dlg.finished.connect(dlg.deleteLater)
            dlg.open()

    # --- shutdown ----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop timers and workers and write everything pending (call before closing)."""
        self._commit_editors()
        self.nav.stop()
        self._recheck.stop()
        self.session.gate.release()
        self.importer.shutdown()
        self.thumbs.shutdown()
        self.session.shutdown()

    def index_of(self, name: str, col: Col = Col.CAPTION) -> QModelIndex:
        r = self.model.row_of(name)
        return self.model.index(r, col) if r is not None else QModelIndex()
