"""The Library's details presenter: shows the current entry in :class:`DetailsPanel` and turns the
panel's intents into store writes, sidecar writes and apply requests.

It reads the full header metadata of the shown file on the thread pool (the index keeps only cut
values), keeps a small cache of it, follows hashing and thumbnail results, and reports with
signals: ``apply_requested(ApplyLoraRequest)``, ``status_message(str)``, ``rescan_requested()``.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QWidget

from ui.library.controller import LibraryController
from ui.library.details import DetailsPanel
from ui.library.folders import open_in_file_manager
from ui.library.model import LibraryModel
from zitdesk.library import ApplyLoraRequest
from zitdesk.library.index import LoraEntry
from zitdesk.library.store import LibraryStore

FULL_META_CACHE = 20


def safe_emit(signal: Any, *args: Any) -> None:
    """Emit from a pool job; the receiver may have been deleted while the job ran."""
    try:
        signal.emit(*args)
    except RuntimeError:
        pass


def _read_full_metadata(path: str) -> dict[str, str]:
    from zitdesk.st_header import read_header

    return dict(read_header(path, check_size=False).metadata)


class _MetaSignals(QObject):
    loaded = Signal(str, object)


class _MetaJob:
    """Read one header's full metadata on the pool (the index keeps only cut values)."""

    def __init__(self, signals: _MetaSignals, path: str) -> None:
        self.signals, self.path = signals, path

    def __call__(self) -> None:
        try:
            meta: Any = _read_full_metadata(self.path)
        except Exception:  # noqa: BLE001 - the cut metadata from the index stays shown
            return
        safe_emit(self.signals.loaded, self.path, meta)


class DetailsPresenter(QObject):
    apply_requested = Signal(object)  # ApplyLoraRequest
    status_message = Signal(str)
    rescan_requested = Signal()

    def __init__(
        self,
        details: DetailsPanel,
        model: LibraryModel,
        store: LibraryStore,
        controller: LibraryController,
        thumbnails: Any,
        dialog_parent: QWidget,
    ) -> None:
        super().__init__(dialog_parent)
        self.details, self.model, self.store = details, model, store
        self.controller, self.thumbnails = controller, thumbnails
        self._dialog_parent = dialog_parent
        self._meta = _MetaSignals(self)
        self._meta.loaded.connect(self._on_meta_loaded)
        self._full_meta: dict[str, dict[str, str]] = {}
        d = details
        d.apply_requested.connect(self._on_apply)
        d.favourite_toggled.connect(self._on_favourite)
        d.rating_changed.connect(self._on_rating)
        d.notes_changed.connect(self._on_notes)
        d.set_preview_requested.connect(self.choose_preview)
        d.open_folder_requested.connect(self.open_folder)
        d.write_sidecar_requested.connect(self.write_sidecar)
        thumbnails.thumbnail_ready.connect(self._on_thumbnail)

    @property
    def entry(self) -> LoraEntry | None:
        return self.details.entry

    # -- showing -------------------------------------------------------------------------------
    @Slot(object)
    def show(self, entry: object) -> None:
        if not isinstance(entry, LoraEntry):
            self.details.show_entry(None)
            return
        path = entry.path
        self.details.show_entry(
            entry,
            self.store.get(path),
            self._pixmap_for(entry),
            self.model.duplicates_of(path),
            self.controller.hashing,
        )
        if not entry.sha256 and not entry.hash_error:
            self.controller.request_hashes([path], front=True)
        meta = self._full_meta.get(path)
        if meta is not None:
            self.details.full_metadata_loaded(
                path,
                meta,
                self.store.get(path),
                self.model.duplicates_of(path),
                self.controller.hashing,
            )
        elif entry.status == "ok" and entry.has_metadata:
            QThreadPool.globalInstance().start(_MetaJob(self._meta, path))

    def refresh(self) -> None:
        """Show the current entry again from the model (after a scan, a hash, a preview)."""
        e = self.details.entry
        if e is None:
            return
        fresh = self.model.entry(e.path)
        self.show(fresh)

    def _pixmap_for(self, entry: LoraEntry):
        p = self.model.preview_path(entry)
        return self.thumbnails.pixmap(p) if p else None

    @Slot(str)
    def _on_thumbnail(self, path: str) -> None:
        e = self.details.entry
        if e is not None and self.model.preview_path(e) == path:
            self.details.set_pixmap(self.thumbnails.pixmap(path))

    def entry_hashed(self, entry: LoraEntry) -> None:
        d = self.details.entry
        if d is not None and (d.path == entry.path or (entry.sha256 and d.sha256 == entry.sha256)):
            self.refresh()

    @Slot(str, object)
    def _on_meta_loaded(self, path: str, meta: object) -> None:
        if not isinstance(meta, dict):
            return
        if len(self._full_meta) > FULL_META_CACHE:
            self._full_meta.pop(next(iter(self._full_meta)))
        self._full_meta[path] = meta
        self.details.full_metadata_loaded(
            path,
            meta,
            self.store.get(path),
            self.model.duplicates_of(path),
            self.controller.hashing,
        )

    # -- intents -------------------------------------------------------------------------------
    @Slot(object)
    def _on_apply(self, request: object) -> None:
        assert isinstance(request, ApplyLoraRequest)
        self.apply_requested.emit(request)
        self.status_message.emit(
            f"Added {os.path.basename(request.path)} at {request.weight:g} to the LoRA stack."
        )

    def apply_current(self) -> bool:
        req = self.details.make_request()
        if req is None:
            return False
        self._on_apply(req)
        return True

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

    @Slot()
    def open_folder(self) -> None:
        e = self.details.entry
        if e is not None:
            open_in_file_manager(e.folder)

    def set_preview_from_image(self, lora_path: str, image_path: str) -> bool:
        try:
            self.store.set_preview_from_image(lora_path, image_path)
        except (OSError, ValueError) as exc:
            self.status_message.emit(
                f"Cannot use {os.path.basename(image_path)} as a preview: {exc}"
            )
            return False
        self.model.update_record(lora_path)
        self.refresh()
        return True

    @Slot()
    def choose_preview(self) -> None:
        e = self.details.entry
        if e is None:
            return
        from zitdesk.io import default_output_dir

        start = str(default_output_dir()) if default_output_dir().is_dir() else ""
        path, _ = QFileDialog.getOpenFileName(
            self._dialog_parent,
            "Choose a preview image",
            start,
            "Images (*.png *.jpg *.jpeg *.webp)",
        )
        if path:
            self.set_preview_from_image(e.path, path)

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
            target = write_a1111_json(
                e.path,
                activation_text=", ".join(words) if words else None,
                preferred_weight=round(float(self.details.weight.value()), 3),
                notes=self.store.get(e.path).notes or None,
            )
        except (OSError, ValueError) as exc:
            self.status_message.emit(f"Cannot write the .json sidecar: {exc}")
            return False
        self.status_message.emit(f"Saved {target.name}.")
        self.rescan_requested.emit()
        return True
