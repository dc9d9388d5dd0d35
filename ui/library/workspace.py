"""The LoRA Library workspace: composes the parts and connects them with signals.

* :class:`ui.library.toolbar.LibraryToolbar`: search, filters, sort, grid/list, Folders button;
* :class:`ui.library.views.LibraryViews`: card grid, list and empty page over the filter proxy;
* :class:`ui.library.presenter.DetailsPresenter` over :class:`ui.library.details.DetailsPanel`:
  the current entry, favourites/ratings/notes, previews, sidecars, apply;
* :class:`ui.library.folders.FolderActions`: add/open/remove library folders;
* :class:`ui.library.controller.LibraryController`: scans, hashing, watching (the pool).

The workspace keeps the page and status line in step with the model. See :mod:`ui.library` for
the constructor and the ``apply_requested`` contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QListView, QSplitter, QVBoxLayout, QWidget

from ui.library.controller import LibraryController
from ui.library.details import DetailsPanel
from ui.library.folders import FolderActions
from ui.library.model import LibraryFilterProxy, LibraryModel
from ui.library.presenter import DetailsPresenter, safe_emit
from ui.library.toolbar import LibraryToolbar
from ui.library.views import LibraryViews
from zitdesk.library.index import LibraryIndex, LoraEntry, ScanResult
from zitdesk.library.store import LibraryStore


class _ShapeSignals(QObject):
    done = Signal(object, object)  # (model path, shapes dict | error sentence str)


class _ShapeJob(QRunnable):
    """Read the active model's Linear shapes from its DiT header (torch-free) on the pool."""

    def __init__(self, signals: _ShapeSignals, model: str) -> None:
        super().__init__()
        self.signals, self.model = signals, model

    def run(self) -> None:
        from zitdesk.errors import user_message
        from zitdesk.lora.fit import model_linear_shapes

        try:
            result: Any = model_linear_shapes(self.model)
        except Exception as exc:  # noqa: BLE001 - shown as one sentence; coverage stays by name
            result = user_message(exc, self.model)
        safe_emit(self.signals.done, self.model, result)


class LibraryWorkspace(QWidget):
    """Grid/list of every LoRA found, filters, details and "apply to Generate"."""

    apply_requested = Signal(object)  # zitdesk.library.ApplyLoraRequest
    status_message = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        store: LibraryStore | None = None,
        index: LibraryIndex | None = None,
        folders: Iterable[str] = (),
        auto_roots: bool = True,
        module_names: Iterable[str] | None = None,
        watch: bool = True,
        auto_hash: bool = True,
        thumbnails: Any = None,
        watcher_backend: str = "auto",
    ) -> None:
        super().__init__(parent)
        from ui.thumbnails import ThumbnailCache

        self.store = store or LibraryStore()
        self.index = index or LibraryIndex(module_names=module_names)
        if index is not None and module_names is not None:
            self.index.set_module_names(module_names)
        self.thumbnails = thumbnails or ThumbnailCache(size=256, parent=self)
        self.controller = LibraryController(
            self.index,
            self.store,
            folders=folders,
            auto_roots=auto_roots,
            watch=watch,
            auto_hash=auto_hash,
            watcher_backend=watcher_backend,
            parent=self,
        )
        self.model = LibraryModel(self.store, self.thumbnails, self)
        self.proxy = LibraryFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self._started = False
        self._scan_text = ""
        self._hash_text = ""
        self._model_path: str | None = None
        self._shapes = _ShapeSignals(self)
        self._shapes.done.connect(self._on_shapes)

        # -- parts ----------------------------------------------------------------------------
        self.toolbar = LibraryToolbar()
        self.views = LibraryViews(self.proxy)
        self.details = DetailsPanel()
        self.presenter = DetailsPresenter(
            self.details, self.model, self.store, self.controller, self.thumbnails, self
        )
        self.folders = FolderActions(self.controller, self.store, self.toolbar.folders_menu, self)
        # The parts' widgets under the names callers and tests use.
        tb, vw = self.toolbar, self.views
        self.search, self.arch_combo, self.folder_combo = tb.search, tb.arch_combo, tb.folder_combo
        self.fav_check, self.trigger_check, self.dup_check = (
            tb.fav_check,
            tb.trigger_check,
            tb.dup_check,
        )
        self.sort_combo, self.grid_button, self.list_button = (
            tb.sort_combo,
            tb.grid_button,
            tb.list_button,
        )
        self.folders_button, self.folders_menu = tb.folders_button, tb.folders_menu
        self.grid, self.listv, self.stack = vw.grid, vw.listv, vw
        self.empty, self.add_button, self.clear_button = vw.empty, vw.add_button, vw.clear_button

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.views)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.splitter.setSizes([900, 380])
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setObjectName("muted")
        lay = QVBoxLayout(self)
        lay.addWidget(self.toolbar)
        lay.addWidget(self.splitter, 1)
        lay.addWidget(self.status)
        find = QShortcut(QKeySequence.StandardKey.Find, self, activated=self.search.setFocus)
        find.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)  # no clash with other tabs

        # -- wiring ---------------------------------------------------------------------------
        p = self.proxy
        tb.search_changed.connect(p.set_search)
        tb.arch_changed.connect(p.set_arch)
        tb.folder_changed.connect(p.set_folder)
        tb.favourites_toggled.connect(p.set_favourites_only)
        tb.has_trigger_toggled.connect(p.set_has_trigger)
        tb.duplicates_toggled.connect(p.set_duplicates_only)
        tb.sort_changed.connect(p.set_sort_mode)
        tb.view_mode_changed.connect(self._on_view_mode)
        for sig in (tb.arch_changed, tb.folder_changed):
            sig.connect(self._update_page)
        vw.current_entry_changed.connect(self.presenter.show)
        vw.entry_activated.connect(self._on_activated)
        vw.add_folder_clicked.connect(self.folders.choose_folder)
        vw.clear_filters_clicked.connect(self.clear_filters)
        self.presenter.apply_requested.connect(self.apply_requested)
        self.presenter.status_message.connect(self.status_message)
        self.presenter.rescan_requested.connect(self.rescan)
        c = self.controller
        c.scan_started.connect(self._on_scan_started)
        c.scan_progress.connect(self._on_scan_progress)
        c.entries_batch.connect(self._on_batch)
        c.scan_finished.connect(self._on_scan_finished)
        c.entry_hashed.connect(self._on_hashed)
        c.hash_progress.connect(self._on_hash_progress)
        c.message.connect(self.status_message)
        for sig in (p.rowsInserted, p.rowsRemoved, p.modelReset, p.layoutChanged):
            sig.connect(self._update_page)
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

    def set_model_module_names(
        self, names: Iterable[str] | Mapping[str, tuple[int, int]] | None
    ) -> None:
        """Measure coverage against the configured model's Linear module names, or its
        ``{module: (out, in)}`` shapes to check layer sizes too (None: full Z-Image Turbo);
        rescans every header on the pool."""
        self.controller.set_module_names(names)

    def set_model(self, model_path: str | None) -> None:
        """Check compatibility against this model's layer shapes (read from its DiT header on the
        pool; the same check Generate makes at "Add"). None or "": the real Z-Image Turbo sizes."""
        model_path = model_path or None
        if model_path == self._model_path:
            return
        self._model_path = model_path
        if model_path is None:
            from zitdesk.lora.fit import model_linear_shapes

            self.set_model_module_names(model_linear_shapes(None))
            return
        QThreadPool.globalInstance().start(_ShapeJob(self._shapes, model_path))

    @Slot(object, object)
    def _on_shapes(self, model: object, result: object) -> None:
        if model != self._model_path:
            return  # another model was chosen meanwhile
        if isinstance(result, dict):
            self.set_model_module_names(result)
        else:
            self.status_message.emit(f"LoRA sizes are not checked against the model: {result}")

    def add_folder(self, folder: str) -> bool:
        return self.folders.add_folder(folder)

    @Slot()
    def choose_folder(self) -> None:
        self.folders.choose_folder()

    @Slot()
    def clear_filters(self) -> None:
        self.toolbar.clear_filters()

    @property
    def view_mode(self) -> str:
        return self.toolbar.view_mode

    def set_view_mode(self, mode: str) -> None:
        self.toolbar.set_view_mode(mode)

    def current_view(self) -> QListView:
        return self.views.current_view()

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
        self.views.select(idx)
        return True

    def set_preview_from_image(self, lora_path: str, image_path: str) -> bool:
        """Use ``image_path`` (e.g. a gallery image) as the preview of ``lora_path``."""
        return self.presenter.set_preview_from_image(lora_path, image_path)

    def apply(
        self, path: str, weight: float | None = None, insert_triggers: bool | None = None
    ) -> bool:
        """Apply ``path`` programmatically (same request as the button)."""
        if not self.select(path):
            return False
        if weight is not None:
            self.details.weight.setValue(weight)
        if insert_triggers is not None:
            self.details.insert_triggers.setChecked(insert_triggers)
        return self.presenter.apply_current()

    @Slot()
    def write_sidecar(self) -> bool:
        return self.presenter.write_sidecar()

    @Slot()
    def choose_preview(self) -> None:
        self.presenter.choose_preview()

    @Slot()
    def open_folder(self) -> None:
        self.presenter.open_folder()

    @Slot()
    def _fill_folders_menu(self) -> None:
        self.folders.fill_menu()

    # -- view ----------------------------------------------------------------------------------
    @Slot(str)
    def _on_view_mode(self, mode: str) -> None:
        self.views.set_mode(mode)
        self._update_page()

    @Slot(object)
    def _on_activated(self, e: object) -> None:
        d = self.details.entry
        if isinstance(e, LoraEntry) and e.compatible and d is not None and d.path == e.path:
            self.details.request_apply()

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
        self.toolbar.sync_choices(self.model.entries, self.controller.roots)
        self._update_page()
        self.presenter.refresh()

    @Slot(object)
    def _on_hashed(self, entry: object) -> None:
        assert isinstance(entry, LoraEntry)
        cur = self.model.entry(entry.path)
        if cur is not None and cur.size == entry.size and cur.mtime_ns == entry.mtime_ns:
            # Only the hash fields: a rescan may have refreshed the rest (sidecars) meanwhile.
            self.model.upsert(
                [
                    replace(
                        cur, sha256=entry.sha256, addnet=entry.addnet, hash_error=entry.hash_error
                    )
                ]
            )
            self.model.update_record(entry.path)
            self.presenter.entry_hashed(entry)

    @Slot(int, int)
    def _on_hash_progress(self, done: int, total: int) -> None:
        self._hash_text = f"hashing {done:,}/{total:,}" if total and done < total else ""
        self._update_status()

    # -- page and status -----------------------------------------------------------------------
    @Slot()
    def _update_page(self, *_args) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        if total and not shown:
            self.views.show_empty(
                "No LoRA matches the search and filters.", offer_add=False, offer_clear=True
            )
        elif total == 0:
            roots = self.controller.roots
            if self.controller.scanning or not self._started:
                text = "Looking for LoRAs…"
            elif roots:
                text = (
                    "No LoRA files in:\n"
                    + "\n".join(r.path for r in roots)
                    + "\n\nDrop .safetensors files there, or add another folder."
                )
            else:
                text = (
                    "No LoRA folders yet.\nzitdesk looks in ComfyUI, Forge/A1111, SwarmUI and "
                    "StabilityMatrix folders automatically; none were found on this computer."
                )
            self.views.show_empty(text, offer_add=True, offer_clear=False)
        else:
            self.views.show_items()
        self._update_status(total, shown)

    def _update_status(self, total: int | None = None, shown: int | None = None) -> None:
        total = self.model.rowCount() if total is None else total
        shown = self.proxy.rowCount() if shown is None else shown
        entries = self.model.entries
        usable = sum(1 for e in entries if e.compatible)
        broken = sum(1 for e in entries if e.status != "ok")
        parts = [
            f"{total:,} files" + (f" ({shown:,} shown)" if shown != total else ""),
            f"{usable:,} usable",
        ]
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
