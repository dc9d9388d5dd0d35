"""The LoRA Library workspace: toolbar (search, filters, sort, grid/list), views, details pane.

See :mod:`ui.library` for the constructor and the ``apply_requested`` contract.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QObject, QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.library.controller import LibraryController, _emit
from ui.library.delegates import CARD_H, CARD_W, CardDelegate, RowDelegate
from ui.library.details import DetailsPanel
from ui.library.model import (
    ARCH_GROUPS,
    SORT_LABELS,
    SORT_MODES,
    EntryRole,
    LibraryFilterProxy,
    LibraryModel,
)
from ui.widgets.text import menu_text
from zitdesk.library import ApplyLoraRequest
from zitdesk.library.index import LibraryIndex, LoraEntry, ScanResult
from zitdesk.library.store import LibraryStore

log = logging.getLogger(__name__)


def _read_full_metadata(path: str) -> dict[str, str]:
    from zitdesk.st_header import read_header

    return dict(read_header(path, check_size=False).metadata)


class _MetaSignals(QObject):
    loaded = Signal(str, object)


class LibraryWorkspace(QWidget):
    """Grid/list of every LoRA found, filters, details and "apply to Generate"."""

    apply_requested = Signal(object)      # zitdesk.library.ApplyLoraRequest
    status_message = Signal(str)

    def __init__(self, parent: QWidget | None = None, *, store: LibraryStore | None = None,
                 index: LibraryIndex | None = None, folders: Iterable[str] = (), auto_roots: bool = True,
                 module_names: Iterable[str] | None = None, watch: bool = True, auto_hash: bool = True,
                 thumbnails: Any = None, watcher_backend: str = "auto") -> None:
        super().__init__(parent)
        from ui.thumbnails import ThumbnailCache

        self.store = store or LibraryStore()
        self.index = index or LibraryIndex(module_names=module_names)
        if index is not None and module_names is not None:
            self.index.set_module_names(module_names)
        self.thumbnails = thumbnails or ThumbnailCache(size=256, parent=self)
        self.controller = LibraryController(self.index, self.store, folders=folders, auto_roots=auto_roots,
                                            watch=watch, auto_hash=auto_hash, watcher_backend=watcher_backend,
                                            parent=self)
        self.model = LibraryModel(self.store, self.thumbnails, self)
        self.proxy = LibraryFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._started = False
        self._meta = _MetaSignals(self)
        self._meta.loaded.connect(self._on_meta_loaded)
        self._full_meta: dict[str, dict[str, str]] = {}

        # -- toolbar --------------------------------------------------------------------------
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search name, trigger word, tag, author, notes…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self.proxy.set_search)
        self.arch_combo = QComboBox()
        for value, label in ARCH_GROUPS.items():
            self.arch_combo.addItem(label, value)
        self.arch_combo.currentIndexChanged.connect(self._on_arch)
        self.folder_combo = QComboBox()
        self.folder_combo.addItem("All folders", "")
        self.folder_combo.setMinimumContentsLength(14)
        self.folder_combo.currentIndexChanged.connect(self._on_folder)
        self.fav_check = QCheckBox("★ Favourites")
        self.fav_check.toggled.connect(self.proxy.set_favourites_only)
        self.trigger_check = QCheckBox("Has trigger words")
        self.trigger_check.toggled.connect(self.proxy.set_has_trigger)
        self.dup_check = QCheckBox("Duplicates")
        self.dup_check.setToolTip("Files whose sha256 equals another file's (hashes are computed in the background)")
        self.dup_check.toggled.connect(self.proxy.set_duplicates_only)
        self.sort_combo = QComboBox()
        for mode in SORT_MODES:
            self.sort_combo.addItem(SORT_LABELS[mode], mode)
        self.sort_combo.currentIndexChanged.connect(self._on_sort)
        self.grid_button = QToolButton()
        self.grid_button.setText("Grid")
        self.list_button = QToolButton()
        self.list_button.setText("List")
        group = QButtonGroup(self)
        for b in (self.grid_button, self.list_button):
            b.setCheckable(True)
            group.addButton(b)
        self.grid_button.setChecked(True)
        self.grid_button.toggled.connect(self._on_view_mode)
        self.folders_button = QToolButton()
        self.folders_button.setText("Folders")
        self.folders_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.folders_menu = QMenu(self)
        self.folders_menu.aboutToShow.connect(self._fill_folders_menu)
        self.folders_button.setMenu(self.folders_menu)

        bar = QHBoxLayout()
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

        # -- views ----------------------------------------------------------------------------
        self.grid = QListView()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setGridSize(QSize(CARD_W + 6, CARD_H + 6))
        self.grid.setSpacing(0)
        self.grid.setWordWrap(False)
        self.grid.setItemDelegate(CardDelegate(self.grid))
        self.listv = QListView()
        self.listv.setUniformItemSizes(True)
        self.listv.setItemDelegate(RowDelegate(self.listv))
        for v in (self.grid, self.listv):
            v.setModel(self.proxy)
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
        self.add_button.clicked.connect(self.choose_folder)
        self.clear_button = QPushButton("Clear filters")
        self.clear_button.clicked.connect(self.clear_filters)
        empty_page = QWidget()
        el = QVBoxLayout(empty_page)
        el.addStretch(1)
        el.addWidget(self.empty)
        el.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignHCenter)
        el.addWidget(self.clear_button, 0, Qt.AlignmentFlag.AlignHCenter)
        el.addStretch(2)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.grid)
        self.stack.addWidget(self.listv)
        self.stack.addWidget(empty_page)
        self.details = DetailsPanel()
        self.details.apply_requested.connect(self._on_apply)
        self.details.favourite_toggled.connect(self._on_favourite)
        self.details.rating_changed.connect(self._on_rating)
        self.details.notes_changed.connect(self._on_notes)
        self.details.set_preview_requested.connect(self.choose_preview)
        self.details.open_folder_requested.connect(self.open_folder)
        self.details.write_sidecar_requested.connect(self.write_sidecar)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.stack)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([900, 380])
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setObjectName("muted")
        lay = QVBoxLayout(self)
        lay.addLayout(bar)
        lay.addWidget(self.splitter, 1)
        lay.addWidget(self.status)
        find = QShortcut(QKeySequence.StandardKey.Find, self, activated=self.search.setFocus)
        find.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)   # no clash with other tabs

        # -- wiring ---------------------------------------------------------------------------
        c = self.controller
        c.scan_started.connect(self._on_scan_started)
        c.scan_progress.connect(self._on_scan_progress)
        c.entries_batch.connect(self._on_batch)
        c.scan_finished.connect(self._on_scan_finished)
        c.entry_hashed.connect(self._on_hashed)
        c.hash_progress.connect(self._on_hash_progress)
        c.message.connect(self.status_message)
        self.thumbnails.thumbnail_ready.connect(self._on_thumbnail)
        for sig in (self.proxy.rowsInserted, self.proxy.rowsRemoved, self.proxy.modelReset,
                    self.proxy.layoutChanged):
            sig.connect(self._update_page)
        self._scan_text = ""
        self._hash_text = ""
        self._update_page()

    # -- public API ----------------------------------------------------------------------------
    def start(self) -> None:
        """Load the index (cached entries appear at once), scan, then watch. Idempotent."""
        if self._started:
            return
        self._started = True
        self.controller.rescan()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.start()

    def rescan(self) -> None:
        self.controller.rescan()

    def shutdown(self) -> None:
        """Save notes, cancel background work, stop watching (call from the window's closeEvent)."""
        self.details.flush_notes()
        self.controller.shutdown()

    def set_model_module_names(self, names: Iterable[str] | None) -> None:
        """Measure coverage against the configured model's Linear module names (None: full
        Z-Image Turbo); rescans every header on the pool."""
        self.controller.set_module_names(names)

    def add_folder(self, folder: str) -> bool:
        return self.controller.add_folder(folder)

    @Slot()
    def clear_filters(self) -> None:
        self.search.clear()
        self.arch_combo.setCurrentIndex(0)
        self.folder_combo.setCurrentIndex(0)
        for box in (self.fav_check, self.trigger_check, self.dup_check):
            box.setChecked(False)

    @property
    def view_mode(self) -> str:
        return "grid" if self.grid_button.isChecked() else "list"

    def set_view_mode(self, mode: str) -> None:
        (self.grid_button if mode == "grid" else self.list_button).setChecked(True)

    def current_view(self) -> QListView:
        return self.grid if self.view_mode == "grid" else self.listv

    def current_entry(self) -> LoraEntry | None:
        return self.details.entry

    def select(self, path: str) -> bool:
        """Select the card of ``path`` (if it is not filtered out)."""
        row = self.model.row_of(path)
        if row < 0:
            return False
        idx = self.proxy.mapFromSource(self.model.index(row))
        if not idx.isValid():
            return False
        view = self.current_view()
        view.selectionModel().setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        view.scrollTo(idx)
        return True

    def set_preview_from_image(self, lora_path: str, image_path: str) -> bool:
        """Use ``image_path`` (e.g. a gallery image) as the preview of ``lora_path``."""
        try:
            self.store.set_preview_from_image(lora_path, image_path)
        except (OSError, ValueError) as exc:
            self.status_message.emit(f"Cannot use {os.path.basename(image_path)} as a preview: {exc}")
            return False
        self.model.update_record(lora_path)
        self._refresh_details()
        return True

    def apply(self, path: str, weight: float | None = None, insert_triggers: bool | None = None) -> bool:
        """Apply ``path`` programmatically (same request as the button)."""
        if not self.select(path):
            return False
        if weight is not None:
            self.details.weight.setValue(weight)
        if insert_triggers is not None:
            self.details.insert_triggers.setChecked(insert_triggers)
        req = self.details.make_request()
        if req is None:
            return False
        self._on_apply(req)
        return True

    # -- folders -------------------------------------------------------------------------------
    @Slot()
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a LoRA folder")
        if folder:
            self.add_folder(folder)

    @Slot()
    def _fill_folders_menu(self) -> None:
        m = self.folders_menu
        m.clear()
        m.addAction("Add folder…", self.choose_folder)
        roots = self.controller.roots or self.controller.current_roots()
        if roots:
            m.addSeparator()
        for r in roots:
            label = f"{r.path}" + ("" if r.origin == "user" else f"  (auto: {r.origin})")
            sub = m.addMenu(menu_text(label))
            sub.addAction("Open", lambda p=r.path: self._open_url(p))
            if r.path in self.store.folders:
                sub.addAction("Remove from library", lambda p=r.path: self.controller.remove_folder(p))

    def _open_url(self, folder: str) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    @Slot()
    def open_folder(self) -> None:
        e = self.details.entry
        if e is not None:
            self._open_url(e.folder)

    @Slot()
    def write_sidecar(self) -> bool:
        """Save the checked trigger words, weight and notes to the A1111/Forge ``name.json``
        beside the LoRA (other keys in it are kept; the LoRA file itself is never written)."""
        from zitdesk.library.sidecars import write_a1111_json

        e = self.details.entry
        if e is None:
            return False
        self.details.flush_notes()
        words = self.details.checked_triggers()
        try:
            target = write_a1111_json(e.path, activation_text=", ".join(words) if words else None,
                                      preferred_weight=round(float(self.details.weight.value()), 3),
                                      notes=self.store.get(e.path).notes or None)
        except (OSError, ValueError) as exc:
            self.status_message.emit(f"Cannot write the .json sidecar: {exc}")
            return False
        self.status_message.emit(f"Saved {target.name}.")
        self.controller.rescan()
        return True

    @Slot()
    def choose_preview(self) -> None:
        e = self.details.entry
        if e is None:
            return
        from zitdesk.io import default_output_dir

        start = str(default_output_dir()) if default_output_dir().is_dir() else ""
        path, _ = QFileDialog.getOpenFileName(self, "Choose a preview image", start,
                                              "Images (*.png *.jpg *.jpeg *.webp)")
        if path:
            self.set_preview_from_image(e.path, path)

    # -- filters -------------------------------------------------------------------------------
    @Slot(int)
    def _on_arch(self, _i: int) -> None:
        self.proxy.set_arch(str(self.arch_combo.currentData() or ""))
        self._update_page()

    @Slot(int)
    def _on_folder(self, _i: int) -> None:
        self.proxy.set_folder(str(self.folder_combo.currentData() or ""))
        self._update_page()

    @Slot(int)
    def _on_sort(self, _i: int) -> None:
        self.proxy.set_sort_mode(str(self.sort_combo.currentData()))

    @Slot(bool)
    def _on_view_mode(self, grid: bool) -> None:
        old, new = (self.listv, self.grid) if grid else (self.grid, self.listv)
        cur = old.selectionModel().currentIndex()
        if cur.isValid():
            new.selectionModel().setCurrentIndex(cur, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            new.scrollTo(cur)
        self._update_page()

    def _sync_filter_choices(self) -> None:
        archs = sorted({(e.arch, e.arch_label) for e in self.model.entries if e.status == "ok"
                        and e.arch not in ("zimage",)}, key=lambda a: a[1])
        have = {self.arch_combo.itemData(i) for i in range(self.arch_combo.count())}
        for arch, label in archs:
            if arch not in have:
                self.arch_combo.addItem(f"{label} only", arch)
        roots = self.controller.roots
        have = {self.folder_combo.itemData(i) for i in range(self.folder_combo.count())}
        for r in roots:
            if r.path not in have:
                self.folder_combo.addItem(r.label, r.path)

    # -- background results --------------------------------------------------------------------
    @Slot()
    def _on_scan_started(self) -> None:
        self._scan_text = "Scanning…"
        self._update_status()

    @Slot(int, int)
    def _on_scan_progress(self, done: int, total: int) -> None:
        self._scan_text = f"Reading {done:,}/{total:,} files…" if done < total else ""
        self._update_status()

    @Slot(object)
    def _on_batch(self, entries: object) -> None:
        self.model.upsert(entries)  # type: ignore[arg-type]

    @Slot(object)
    def _on_scan_finished(self, result: object) -> None:
        assert isinstance(result, ScanResult)
        self.model.set_entries(result.entries)
        for _old, new in result.moved:
            self.model.update_record(new)
        self._scan_text = ""
        self._sync_filter_choices()
        self._update_page()
        self._refresh_details()

    @Slot(object)
    def _on_hashed(self, entry: object) -> None:
        assert isinstance(entry, LoraEntry)
        cur = self.model.entry(entry.path)
        if cur is not None and cur.size == entry.size and cur.mtime_ns == entry.mtime_ns:
            # Only the hash fields: a rescan may have refreshed the rest (sidecars) meanwhile.
            self.model.upsert([replace(cur, sha256=entry.sha256, addnet=entry.addnet,
                                       hash_error=entry.hash_error)])
            self.model.update_record(entry.path)
            d = self.details.entry
            if d is not None and (d.path == entry.path or (entry.sha256 and d.sha256 == entry.sha256)):
                self._refresh_details()

    @Slot(int, int)
    def _on_hash_progress(self, done: int, total: int) -> None:
        self._hash_text = f"hashing {done:,}/{total:,}" if total and done < total else ""
        self._update_status()

    @Slot(str)
    def _on_thumbnail(self, path: str) -> None:
        e = self.details.entry
        if e is not None and self.model.preview_path(e) == path:
            self.details.set_pixmap(self.thumbnails.pixmap(path))

    # -- selection and details -----------------------------------------------------------------
    @Slot(QModelIndex, QModelIndex)
    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        entry = current.data(EntryRole) if current.isValid() else None
        self._show(entry)

    def _show(self, entry: LoraEntry | None) -> None:
        if entry is None:
            self.details.show_entry(None)
            return
        pm = self._pixmap_for(entry)
        self.details.show_entry(entry, self.store.get(entry.path), pm, self.model.duplicates_of(entry.path),
                                self.controller.hashing)
        if not entry.sha256 and not entry.hash_error:
            self.controller.request_hashes([entry.path], front=True)
        meta = self._full_meta.get(entry.path)
        if meta is not None:
            self.details.full_metadata_loaded(entry.path, meta, self.store.get(entry.path),
                                              self.model.duplicates_of(entry.path), self.controller.hashing)
        elif entry.status == "ok" and entry.has_metadata:
            from PySide6.QtCore import QThreadPool

            self._meta_job_path = entry.path
            QThreadPool.globalInstance().start(_MetaJob(self._meta, entry.path))

    def _pixmap_for(self, entry: LoraEntry):
        p = self.model.preview_path(entry)
        return self.thumbnails.pixmap(p) if p else None

    def _refresh_details(self) -> None:
        e = self.details.entry
        if e is None:
            return
        fresh = self.model.entry(e.path)
        if fresh is None:
            self.details.show_entry(None)
            return
        self._show(fresh)

    @Slot(str, object)
    def _on_meta_loaded(self, path: str, meta: object) -> None:
        if not isinstance(meta, dict):
            return
        if len(self._full_meta) > 20:
            self._full_meta.pop(next(iter(self._full_meta)))
        self._full_meta[path] = meta
        self.details.full_metadata_loaded(path, meta, self.store.get(path), self.model.duplicates_of(path),
                                          self.controller.hashing)

    # -- user actions --------------------------------------------------------------------------
    @Slot(QModelIndex)
    def _on_double_click(self, index: QModelIndex) -> None:
        e = index.data(EntryRole)
        if e is not None and e.compatible and self.details.entry is not None and self.details.entry.path == e.path:
            self.details.request_apply()

    @Slot(object)
    def _on_apply(self, request: object) -> None:
        assert isinstance(request, ApplyLoraRequest)
        self.apply_requested.emit(request)
        self.status_message.emit(f"Added {os.path.basename(request.path)} at {request.weight:g} to the LoRA stack.")

    @Slot(bool)
    def _on_favourite(self, on: bool) -> None:
        e = self.details.entry
        if e is not None:
            self.store.set_favourite(e.path, on)
            self.model.update_record(e.path)

    @Slot(int)
    def _on_rating(self, n: int) -> None:
        e = self.details.entry
        if e is not None:
            self.store.set_rating(e.path, n)
            self.model.update_record(e.path)

    @Slot(str, str)
    def _on_notes(self, path: str, text: str) -> None:
        self.store.set_notes(path, text)
        self.model.update_record(path)

    # -- status --------------------------------------------------------------------------------
    @Slot()
    def _update_page(self, *_args) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        self.add_button.setVisible(total == 0)
        self.clear_button.setVisible(total > 0 and shown == 0)
        if total and not shown:
            self.empty.setText("No LoRA matches the search and filters.")
            self.stack.setCurrentIndex(2)
        elif total == 0:
            roots = self.controller.roots
            if self.controller.scanning or not self._started:
                self.empty.setText("Looking for LoRAs…")
            elif roots:
                self.empty.setText("No LoRA files in:\n" + "\n".join(r.path for r in roots)
                                   + "\n\nDrop .safetensors files there, or add another folder.")
            else:
                self.empty.setText("No LoRA folders yet.\nzitdesk looks in ComfyUI, Forge/A1111, SwarmUI and "
                                   "StabilityMatrix folders automatically; none were found on this computer.")
            self.stack.setCurrentIndex(2)
        else:
            self.stack.setCurrentIndex(0 if self.view_mode == "grid" else 1)
        self._update_status(total, shown)

    def _update_status(self, total: int | None = None, shown: int | None = None) -> None:
        total = self.model.rowCount() if total is None else total
        shown = self.proxy.rowCount() if shown is None else shown
        entries = self.model.entries
        usable = sum(1 for e in entries if e.compatible)
        broken = sum(1 for e in entries if e.status != "ok")
        parts = [f"{total:,} files" + (f" ({shown:,} shown)" if shown != total else ""), f"{usable:,} usable"]
        if total - usable - broken:
            parts.append(f"{total - usable - broken:,} for other models")
        if broken:
            parts.append(f"{broken:,} unreadable or unsupported")
        if self._scan_text:
            parts.append(self._scan_text)
        if self._hash_text:
            parts.append(self._hash_text)
        w = self.controller.watcher
        if w is not None and w.running:
            parts.append(f"watching folders ({w.backend})")
        self.status.setText(" · ".join(parts))


class _MetaJob:
    """Read one header's full metadata on the pool (the index keeps only cut values)."""

    def __init__(self, signals: _MetaSignals, path: str) -> None:
        self.signals, self.path = signals, path

    def __call__(self) -> None:
        try:
            meta: Any = _read_full_metadata(self.path)
        except Exception:  # noqa: BLE001 - the cut metadata from the index stays shown
            return
        _emit(self.signals.loaded, self.path, meta)
