"""Background side of the library UI: scans, hashes and folder watching off the GUI thread.

:class:`LibraryController` (a QObject living on the GUI thread) owns the Qt-free
:class:`~zitdesk.library.index.LibraryIndex`, :class:`~zitdesk.library.store.LibraryStore` and
:class:`~zitdesk.library.watcher.FolderWatcher`. Scans and hashing run as plain callables on the
controller's own :class:`ui.tasks.TaskPool` (two threads, so the global pool stays free for
thumbnails);
they report through a :class:`_JobSignals` object created on the GUI
thread, so every result arrives on the GUI thread by queued connection (no lambdas on those
connections, ``@Slot`` on every receiver). The watcher's own thread emits
:attr:`_WatchBridge.changed`; a 300 ms single-shot timer then starts an incremental rescan.

Cancel: :meth:`shutdown` sets the jobs' cancel events (polled between files and every 4 MB of
hashing), closes the watcher and waits for the jobs to end.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from ui.tasks import TaskPool
from zitdesk.library.hashing import HashCancelled
from zitdesk.library.index import LibraryIndex, ScanResult
from zitdesk.library.roots import Root, merge_roots
from zitdesk.library.store import LibraryStore
from zitdesk.library.watcher import FolderWatcher

log = logging.getLogger(__name__)


class _JobSignals(QObject):
    scan_progress = Signal(int, int)
    scan_batch = Signal(object)  # list[LoraEntry]
    scan_done = Signal(object)  # ScanResult
    scan_failed = Signal(str)
    hashed = Signal(object)  # LoraEntry with hashes (or hash_error)
    hash_progress = Signal(int, int)
    hash_done = Signal()


class _WatchBridge(QObject):
    changed = Signal(object)  # list[str], emitted from the watcher thread


class LibraryController(QObject):
    """Runs the library's scans, hashing and watching; see the module docstring.

    Signals (all on the GUI thread): ``scan_started``, ``scan_progress(done, total)``,
    ``entries_batch(list)`` during a cold scan, ``scan_finished(ScanResult)``,
    ``entry_hashed(LoraEntry)``, ``hash_progress(done, total)``, ``message(str)``.
    """

    scan_started = Signal()
    scan_progress = Signal(int, int)
    entries_batch = Signal(object)
    scan_finished = Signal(object)
    entry_hashed = Signal(object)
    hash_progress = Signal(int, int)
    message = Signal(str)

    def __init__(
        self,
        index: LibraryIndex,
        store: LibraryStore,
        *,
        folders: Iterable[str] = (),
        auto_roots: bool = True,
        watch: bool = True,
        auto_hash: bool = True,
        watcher_backend: str = "auto",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.index = index
        self.store = store
        self.extra_folders = [str(f) for f in folders]
        self.auto_roots = auto_roots
        self.auto_hash = auto_hash
        self.roots: list[Root] = []
        self._sig = _JobSignals(self)
        self._sig.scan_progress.connect(self._on_scan_progress)
        self._sig.scan_batch.connect(self._on_scan_batch)
        self._sig.scan_done.connect(self._on_scan_done)
        self._sig.scan_failed.connect(self._on_scan_failed)
        self._sig.hashed.connect(self._on_hashed)
        self._sig.hash_progress.connect(self._on_hash_progress)
        self._sig.hash_done.connect(self._on_hash_done)
        self._bridge = _WatchBridge(self)
        self._bridge.changed.connect(self._on_fs_changed)
        self.watcher: FolderWatcher | None = (
            FolderWatcher(self._bridge.changed.emit, debounce_s=0.4, backend=watcher_backend)
            if watch
            else None
        )
        self._rescan_timer = QTimer(self)
        self._rescan_timer.setSingleShot(True)
        self._rescan_timer.setInterval(300)
        self._rescan_timer.timeout.connect(self.rescan)
        self._scan_cancel = threading.Event()
        self._hash_cancel = threading.Event()
        # Our own pool: a cold scan or a long hashing run must not hold the global pool's few
        # threads (thumbnails, header reads of the other workspaces run there).
        self.pool = TaskPool(2, "zitdesk-library", self)
        self._scanning = False
        self._rescan_pending = False
        self._hashing = False
        self._hash_lock = threading.Lock()
        self._hash_queue: deque[str] = deque()
        self._hash_total = 0
        self._hash_done_count = 0
        self._closed = False

    # -- state ---------------------------------------------------------------------------------
    @property
    def scanning(self) -> bool:
        return self._scanning

    @property
    def hashing(self) -> bool:
        return self._hashing

    def current_roots(self) -> list[Root]:
        return merge_roots(self.extra_folders + self.store.folders, include_auto=self.auto_roots)

    def _start(self, fn: Callable[[], None]) -> None:
        self.pool.start(fn)

    def wait(self, msecs: int = 10_000) -> bool:
        """Block until this controller's jobs have ended (tests, shutdown)."""
        return self.pool.wait(msecs)

    # -- scanning ------------------------------------------------------------------------------
    @Slot()
    def rescan(self) -> None:
        """Start an incremental scan now (or right after the one that is running)."""
        if self._closed:
            return
        if self._scanning:
            self._rescan_pending = True
            return
        self._scanning = True
        self._rescan_pending = False
        self._scan_cancel.clear()
        self.scan_started.emit()
        self._start(self._scan_job)

    def _scan_job(self) -> None:
        sig, cancel = self._sig, self._scan_cancel
        try:
            roots = self.current_roots()
            result = self.index.scan(
                roots,
                cancel=cancel.is_set,
                progress=sig.scan_progress.emit,
                on_batch=sig.scan_batch.emit,
            )
            for old, new in result.moved:
                self.store.move(old, new)
            if self.watcher is not None and not cancel.is_set():
                wanted = [r.path for r in roots]
                if wanted != self.watcher.folders or not self.watcher.running:
                    self.watcher.start(wanted)
        except Exception as exc:
            log.exception("library scan failed")
            _emit(sig.scan_failed, f"The library scan failed: {exc}")
            return
        _emit(sig.scan_done, result)

    @Slot(int, int)
    def _on_scan_progress(self, done: int, total: int) -> None:
        self.scan_progress.emit(done, total)

    @Slot(object)
    def _on_scan_batch(self, entries: object) -> None:
        self.entries_batch.emit(entries)

    @Slot(object)
    def _on_scan_done(self, result: object) -> None:
        assert isinstance(result, ScanResult)
        self._scanning = False
        self.roots = result.roots
        self.scan_finished.emit(result)
        if result.missing_roots:
            self.message.emit("Missing folder: " + ", ".join(result.missing_roots))
        if self._rescan_pending and not self._closed:
            self.rescan()
        elif self.auto_hash and not self._closed:
            self.request_hashes([e.path for e in self.index.hash_pending()])

    @Slot(str)
    def _on_scan_failed(self, message: str) -> None:
        self._scanning = False
        self.message.emit(message)
        if self._rescan_pending and not self._closed:
            self.rescan()

    @Slot(object)
    def _on_fs_changed(self, _paths: object) -> None:
        if not self._closed:
            self._rescan_timer.start()

    def set_module_names(self, names: Iterable[str] | None) -> None:
        """Measure coverage against the configured model (None: full-size Z-Image Turbo)."""
        if self.index.set_module_names(names):
            self.rescan()

    # -- hashing -------------------------------------------------------------------------------
    def request_hashes(self, paths: Iterable[str], front: bool = False) -> None:
        """Queue files for hashing (``front``: before the others, e.g. the selected LoRA)."""
        if self._closed:
            return
        paths = list(paths)
        if not paths:
            return
        with self._hash_lock:
            queued = set(self._hash_queue)
            new = [p for p in paths if p not in queued]
            if front:
                for p in reversed(paths):
                    if p in queued:
                        self._hash_queue.remove(p)
                    self._hash_queue.appendleft(p)
            else:
                self._hash_queue.extend(new)
            self._hash_total += len(new)
        if not self._hashing:
            self._hashing = True
            self._hash_cancel.clear()
            self._start(self._hash_job)

    def _hash_job(self) -> None:
        sig, cancel = self._sig, self._hash_cancel
        existing = None
        try:
            while not cancel.is_set():
                with self._hash_lock:
                    if not self._hash_queue:
                        break
                    path = self._hash_queue.popleft()
                try:
                    entry = self.index.compute_hashes(path, cancelled=cancel.is_set)
                except HashCancelled:
                    break
                if entry is None:
                    continue
                if entry.sha256:
                    if existing is None:
                        existing = {e.path for e in self.index.entries}
                    self.store.adopt_by_hash(entry.path, entry.sha256, existing)
                _emit(sig.hashed, entry)
            self.index.save()
        except Exception:
            log.exception("library hashing failed")
        _emit(sig.hash_done)

    @Slot(object)
    def _on_hashed(self, entry: object) -> None:
        self._hash_done_count += 1
        self.entry_hashed.emit(entry)
        self.hash_progress.emit(self._hash_done_count, self._hash_total)

    @Slot(int, int)
    def _on_hash_progress(self, done: int, total: int) -> None:
        self.hash_progress.emit(done, total)

    @Slot()
    def _on_hash_done(self) -> None:
        self._hashing = False
        with self._hash_lock:
            more = bool(self._hash_queue)
            if not more:
                self._hash_total = self._hash_done_count = 0
        if more and not self._closed and not self._hash_cancel.is_set():
            self._hashing = True
            self._start(self._hash_job)
        else:
            self.hash_progress.emit(0, 0)

    # -- folders -------------------------------------------------------------------------------
    def add_folder(self, folder: str) -> bool:
        added = self.store.add_folder(folder)
        if added:
            self.rescan()
        return added

    def remove_folder(self, folder: str) -> bool:
        removed = self.store.remove_folder(folder)
        if removed:
            self.rescan()
        return removed

    # -- shutdown ------------------------------------------------------------------------------
    def shutdown(self, msecs: int = 10_000) -> None:
        """Cancel scans and hashing, stop watching, wait for the jobs; safe to call twice."""
        self._closed = True
        self._rescan_timer.stop()
        self._scan_cancel.set()
        self._hash_cancel.set()
        if self.watcher is not None:
            self.watcher.close()
        self.wait(msecs)
        try:
            self.index.save()
        except Exception:
            log.exception("could not save the library index")


def _emit(signal: Any, *args: Any) -> None:
    try:
        signal.emit(*args)
    except RuntimeError:  # the receiver was deleted while the job ran
        pass
