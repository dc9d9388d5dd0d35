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

Parts, each with one job, connected by signals:

* :class:`~ui.datasets.toolbar.DatasetToolbar` — the buttons (says what was asked, decides
  nothing);
* :class:`~ui.datasets.actions.DatasetActions` — the actions on images: bulk edit, snapshots,
  flag, exclude, trash, crop (the place to add one: see its module doc);
* :class:`~ui.datasets.navigation.Navigator` — current row, filter, next missing caption,
  table/grid;
* :class:`~ui.datasets.importing.ImportController` — the import job and its progress;
* :class:`~ui.datasets.session.DatasetSession` — the open dataset, undo, autosave, watcher;
* :class:`~ui.datasets.checking.CheckFollower` — the check, kept in step with edits;
* :class:`~ui.datasets.messages.DatasetMessages` — the banner, conflicts, the import report;
* :class:`~ui.datasets.views.CaptionTable` / :class:`~ui.datasets.views.GridPanel` (the views)
  and :class:`~ui.datasets.stats_panel.StatsPanel` (check and statistics).

This class lays them out, wires them, opens folders and starts imports.

Everything slow runs on private pools (:class:`ui.tasks.TaskRunner`, :mod:`ui.datasets.thumbs`):
opening (headers + captions), import, hashing, token counting, the check and caption writes.
Keys (active while the workspace has focus): Alt+↓/Alt+↑ next/previous image, F3/Shift+F3 next/
previous missing caption, F2/Enter edit caption; in the caption editor Return commits,
Shift+Return starts a new line, Esc reverts; Ctrl+S save now, Ctrl+F filter, Ctrl+B bulk edit,
Ctrl+K flag/unflag, Ctrl+E exclude from training/include, Ctrl+Shift+R crop, Delete move to
the trash,
Ctrl+Z/Ctrl+Shift+Z undo/redo, Ctrl+Shift+G switch table/grid.

The last opened folder is kept in the app's own settings file (:func:`ui.state.window_settings`,
under ``ZITDESK_HOME``), never in Qt's default ``QSettings`` location.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemDelegate,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ui.datasets.actions import DatasetActions, move_to_trash, wide_input
from ui.datasets.bulk_dialog import BulkEditDialog
from ui.datasets.checking import CheckFollower
from ui.datasets.crop import CropDialog
from ui.datasets.dialogs import ConflictDialog
from ui.datasets.importing import ImportController
from ui.datasets.messages import DatasetMessages
from ui.datasets.navigation import FilterBar, Navigator
from ui.datasets.session import DatasetSession, default_tokenizer_loader
from ui.datasets.stats_panel import StatsPanel
from ui.datasets.table_model import Col, DatasetTableModel, FilterMode
from ui.datasets.thumbs import ThumbnailService
from ui.datasets.toolbar import DatasetToolbar
from ui.datasets.views import CaptionTable, GridPanel
from ui.state import window_settings
from ui.widgets.text import plain_label, set_plain_tooltip
from zitdesk.dataset.importer import ImportReport
from zitdesk.io import user_dirs

log = logging.getLogger(__name__)

__all__ = ["SETTINGS_KEY", "DatasetsWorkspace", "move_to_trash"]

SETTINGS_KEY = "datasets/last_folder"


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
        self.datasets_root = datasets_root or (user_dirs()["data"] / "datasets")
        self.session = s = DatasetSession(tokenizer_loader, self)
        self.thumbs = ThumbnailService(cache_dir=thumb_cache_dir, parent=self)
        self.model = DatasetTableModel(self.thumbs, self, direct_edits=False)
        self.importer = ImportController(self.thumbs.cache_dir, self)

        # --- parts ---------------------------------------------------------------------------
        self.undo_action = s.undo_stack.createUndoAction(self, "Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = s.undo_stack.createRedoAction(self, "Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for a in (self.undo_action, self.redo_action):
            a.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(a)
        self.toolbar = DatasetToolbar(self.undo_action, self.redo_action)
        self.path_label = self.toolbar.path_label
        trigger = lambda: s.trigger  # noqa: E731 - read when an editor opens
        self.table = CaptionTable(self.model, self.thumbs, trigger=trigger)
        self.grid = GridPanel(self.model, self.thumbs, trigger=trigger)
        self.empty = _EmptyState(self.choose_folder, self.new_dataset)
        self.stack = QStackedWidget()
        for w in (self.empty, self.table, self.grid):
            self.stack.addWidget(w)
        self.stats = StatsPanel()
        self.stats.setMinimumWidth(300)
        self.messages = DatasetMessages(s, self, self)
        self.banner = self.messages.banner
        self.progress = self.importer.bar
        self.filter_bar = FilterBar()
        self.filter_edit = self.filter_bar.edit
        self.filter_mode = self.filter_bar.mode
        self.count_label = self.filter_bar.count_label
        self.next_missing_button = self.filter_bar.next_missing_button
        self.nav = Navigator(
            self.model, self.table, self.grid, self.stack, self.toolbar, self.filter_bar, self
        )
        self.check = CheckFollower(s, self.stats, self.model, self.grid, auto_check, self)
        self.image_actions = DatasetActions(
            s, self.model, self.nav, self, lambda: self.stats.trigger.text().strip(), self
        )
        self.save_label = plain_label(object_name="muted")
        self._layout()
        self._wire()
        self._wire_actions()

        self._set_enabled(False)
        self.stack.setCurrentWidget(self.empty)
        start = folder
        if start is None and remember:
            last = window_settings().value(SETTINGS_KEY, "")
            if last and Path(str(last)).is_dir():
                start = str(last)
        if start is not None:
            self.open_folder(start)

    def _layout(self) -> None:
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

    def _wire(self) -> None:
        s = self.session
        s.opened.connect(self._on_opened)
        s.open_failed.connect(self._on_open_failed)
        s.captions_changed.connect(self.model.captions_changed)
        s.flags_changed.connect(self.model.captions_changed)
        s.images_removed.connect(self._on_images_removed)
        s.images_rewritten.connect(self._on_images_rewritten)
        s.tokens_counted.connect(self.model.set_tokens)
        s.save_state_changed.connect(self.save_label.setText)
        self.model.caption_edited.connect(s.edit)
        self.grid.caption_committed.connect(self._on_grid_commit)
        self.thumbs.analysed.connect(s.record_analyses)
        self.importer.finished.connect(self._on_import_done)
        self.importer.failed.connect(lambda m: self.messages.show("error", f"Import failed: {m}"))
        self.nav.commit_editors.connect(self.commit_editors)
        self.nav.message.connect(self.messages.show)
        self.stats.issue_selected.connect(self.nav.show_issue)
        tb = self.toolbar
        tb.open_requested.connect(self.choose_folder)
        tb.new_requested.connect(self.new_dataset)
        tb.import_files_requested.connect(self.choose_import)
        tb.import_folder_requested.connect(self.choose_import_folder)
        # background work steps aside while the user scrolls, filters or sorts
        gate = s.gate
        self.thumbs.gate = gate
        for sig in (
            self.table.verticalScrollBar().valueChanged,
            self.grid.grid.verticalScrollBar().valueChanged,
            self.filter_edit.textChanged,
            self.filter_mode.currentIndexChanged,
            self.table.selectionModel().currentChanged,
            self.grid.grid.selectionModel().currentChanged,
            self.grid.editor.textChanged,
            self.table.horizontalHeader().sortIndicatorChanged,
        ):
            sig.connect(gate.hold)
        self.shortcuts: dict[str, QShortcut] = {}
        nav = self.nav
        for name, keys, slot in (
            ("next", "Alt+Down", nav.next_image),
            ("previous", "Alt+Up", nav.previous_image),
            ("next_missing", "F3", nav.next_missing),
            ("previous_missing", "Shift+F3", nav.previous_missing),
            ("save", "Ctrl+S", self.save_now),
            ("filter", "Ctrl+F", nav.focus_filter),
            ("switch_view", "Ctrl+Shift+G", nav.toggle_view),
        ):
            self._shortcut(name, keys, slot)

    def _wire_actions(self) -> None:
        """The actions part: toolbar buttons and keys → :class:`DatasetActions` slots."""
        a, tb = self.image_actions, self.toolbar
        a.commit_editors.connect(self.commit_editors)
        a.message.connect(self.messages.show)
        tb.bulk_requested.connect(a.open_bulk_edit)
        tb.snapshots_requested.connect(a.choose_snapshot)
        tb.exclude_requested.connect(a.toggle_excluded)
        tb.trash_requested.connect(a.confirm_trash)
        tb.crop_requested.connect(a.open_crop)
        self.grid.crop_requested.connect(a.open_crop)
        self.caption_button = QPushButton("Caption…")  # auto-captioning (#18)
        self.caption_button.setToolTip("Caption with a local tagger or vision-language model")
        tb.add_action_button(self.caption_button)
        self.caption_button.clicked.connect(self.open_caption_dialog)
        a.resolution = lambda: self.grid.resolution
        self._shortcut("bulk", "Ctrl+B", a.open_bulk_edit)
        self._shortcut("flag", "Ctrl+K", a.toggle_flag)
        self._shortcut("exclude", "Ctrl+E", a.toggle_excluded)
        self._shortcut("crop", "Ctrl+Shift+R", a.open_crop)
        # Delete only from the views: in a text field it deletes text
        for view in (self.table, self.grid.grid):
            sc = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), view)
            sc.setContext(Qt.ShortcutContext.WidgetShortcut)
            sc.activated.connect(a.confirm_trash)
            self.shortcuts[f"trash_{view.objectName()}"] = sc

    def _shortcut(self, name: str, keys: str, slot) -> QShortcut:
        sc = QShortcut(QKeySequence(keys), self)
        sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        sc.activated.connect(slot)
        self.shortcuts[name] = sc
        return sc

    # --- opening and creating ----------------------------------------------------------------

    def open_folder(self, folder: str | Path) -> None:
        self.path_label.setText(f"Opening {folder} …")
        self.session.open(folder)

    @Slot()
    def choose_folder(self) -> None:
        ds = self.session.dataset
        start = str(ds.folder) if ds else str(self.datasets_root)
        d = QFileDialog.getExistingDirectory(self, "Open dataset folder", start)
        if d:
            self.open_folder(d)

    @Slot()
    def new_dataset(self, name: str | None = None) -> Path | None:
        if not name:
            dlg = wide_input(self, "New dataset", "Name of the new dataset:")
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
        current = self.nav.current_name()
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
            self.messages.show(
                "warning",
                f"{len(ds.problems)} file(s) cannot be read: " + " ".join(ds.problems[:2]),
            )
        if self.remember:
            window_settings().setValue(SETTINGS_KEY, str(ds.folder))
        self.folder_changed.emit(str(ds.folder))
        self.session._set_save_state("Unsaved changes…" if ds.pending else "All changes saved")
        self.check.opened()

    @Slot(str)
    def _on_open_failed(self, msg: str) -> None:
        self.path_label.setText("No dataset open")
        self.messages.show("error", f"Could not open the dataset: {msg}")

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

    def import_paths(self, paths: Sequence[str | Path], target: Path | None = None) -> bool:
        """Import into the open dataset (or ``target``); False if an import is running."""
        if self.importer.active:
            self.messages.show("warning", "An import is already running.")
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

    @property
    def last_import(self) -> ImportReport | None:
        return self.messages.last_import

    @Slot(object, object)
    def _on_import_done(self, target, rep: ImportReport) -> None:
        self.messages.import_done(rep)
        ds = self.session.dataset
        if ds is not None and str(ds.folder) == str(target):
            self.session.reload()
        else:
            self.open_folder(target)

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

    @Slot(str, object, str)
    def _on_grid_commit(self, name: str, old, new: str) -> None:
        self.session.edit(f"Edit caption of {name}", [(name, old, new)])

    @Slot(list)
    def _on_images_removed(self, names: list) -> None:
        row = self.nav.current_row()
        for n in names:
            self.thumbs.forget(n)
        self.model.set_dataset(self.session.dataset)
        if self.model.rowCount():
            self.select_row(min(max(row, 0), self.model.rowCount() - 1))
        n = len(names)
        self.messages.show("info", f"Moved {names[0] if n == 1 else f'{n:,} images'} to the trash.")

    @Slot(list)
    def _on_images_rewritten(self, names: list) -> None:
        for n in names:  # new pixels: a new thumbnail (its mtime changed too)
            self.thumbs.forget(n)
        self.model.captions_changed(names)

    @Slot()
    def save_now(self) -> None:
        self.commit_editors()
        self.session.flush_now()

    @Slot()
    def commit_editors(self) -> None:
        """Commit an open caption editor (table) or the caption pane (grid)."""
        self.grid.commit()
        editor = self.focusWidget()
        if editor is not None and editor.objectName() == "captionEditor":
            self.table.commitData(editor)
            self.table.closeEditor(editor, QAbstractItemDelegate.EndEditHint.NoHint)

    # --- the parts' entry points, for the window, scripts and tests --------------------------

    def open_bulk_edit(self, op: int = 0) -> BulkEditDialog | None:
        return self.image_actions.open_bulk_edit(op)

    @Slot()
    def open_caption_dialog(self):
        from ui.datasets.caption_dialog import open_caption_dialog

        return open_caption_dialog(self.image_actions, self)

    def restore_snapshot(self, path: Path) -> int:
        return self.image_actions.restore_snapshot(path)

    def toggle_flag(self) -> None:
        self.image_actions.toggle_flag()

    def toggle_excluded(self) -> None:
        self.image_actions.toggle_excluded()

    def trash(self, names: list[str]) -> list[str]:
        return self.image_actions.trash(names)

    def confirm_trash(self) -> None:
        self.image_actions.confirm_trash()

    def choose_snapshot(self) -> None:
        self.image_actions.choose_snapshot()

    def open_crop(self) -> CropDialog | None:
        return self.image_actions.open_crop()

    def review_conflicts(self) -> ConflictDialog | None:
        return self.messages.review_conflicts()

    def _run_check(self) -> None:
        self.check.run()

    def _selected_rows(self) -> list[int]:
        return self.nav.selected_rows()

    def _current_row(self) -> int:
        return self.nav.current_row()

    def select_row(self, row: int, edit: bool = False) -> None:
        self.nav.select_row(row, edit)

    def select_name(self, name: str) -> bool:
        return self.nav.select_name(name)

    def next_image(self) -> None:
        self.nav.next_image()

    def previous_image(self) -> None:
        self.nav.previous_image()

    def next_missing(self) -> None:
        self.nav.next_missing()

    def previous_missing(self) -> None:
        self.nav.previous_missing()

    def focus_filter(self) -> None:
        self.nav.focus_filter()

    def toggle_view(self) -> None:
        self.nav.toggle_view()

    def show_table(self) -> None:
        self.nav.switch(self.table)

    def show_grid(self) -> None:
        self.nav.switch(self.grid)

    def set_filter(self, text: str = "", mode: FilterMode = FilterMode.ALL) -> None:
        self.nav.set_filter(text, mode)

    def index_of(self, name: str, col: Col = Col.CAPTION) -> QModelIndex:
        r = self.model.row_of(name)
        return self.model.index(r, col) if r is not None else QModelIndex()

    # --- shutdown ----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop timers and workers and write everything pending (call before closing)."""
        self.commit_editors()
        self.nav.stop()
        self.check.stop()
        self.session.gate.release()
        self.importer.shutdown()
        self.thumbs.shutdown()
        self.session.shutdown()
