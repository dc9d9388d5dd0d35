"""Watch library folders for new, moved and deleted LoRAs, sidecars and previews (Qt-free).

:class:`FolderWatcher` calls ``callback(paths)`` once things settle (``debounce_s`` after the last
relevant event) with the sorted set of changed paths. The callback runs on the watcher's own
thread: a UI must hop to its GUI thread (``ui/library`` emits a Qt signal) and then rescan;
rescans are cheap because :class:`~zitdesk.library.index.LibraryIndex` reuses unchanged entries.

Backends: ``watchdog`` (inotify, FSEvents, ReadDirectoryChangesW) when it is installed and the
OS accepts the watches, else a polling thread that compares ``(size, mtime)`` snapshots of the
relevant files every ``poll_interval_s``. Only LoRA files, sidecars and images count, so the
index cache (in the user cache folder) or unrelated files never trigger rescans.

``stop()`` ends the threads (joins them with a timeout); always call it on shutdown.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from zitdesk.library.index import MAX_DEPTH, SCAN_EXTS
from zitdesk.library.previews import IMAGE_EXTS

log = logging.getLogger(__name__)

RELEVANT_EXTS = tuple(set(SCAN_EXTS) | {".json", ".info"} | set(IMAGE_EXTS))


def is_relevant(path: str) -> bool:
    name = os.path.basename(path)
    return not name.startswith(".") and name.lower().endswith(RELEVANT_EXTS)


def snapshot(folders: Iterable[str]) -> dict[str, tuple[int, int]]:
    """``path → (size, mtime_ns)`` of every relevant file under ``folders`` (polling backend)."""
    out: dict[str, tuple[int, int]] = {}
    seen: set[tuple[int, int]] = set()
    stack = [(f, 0) for f in folders]
    while stack:
        folder, depth = stack.pop()
        try:
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                for de in it:
                    try:
                        if de.is_dir():
                            if not de.name.startswith(".") and depth < MAX_DEPTH:
                                stack.append((de.path, depth + 1))
                        elif is_relevant(de.name):
                            s = de.stat()
                            out[de.path] = (s.st_size, s.st_mtime_ns)
                    except OSError:
                        continue
        except OSError:
            continue
    return out


class FolderWatcher:
    """Debounced change notifications for a set of folders (see the module docstring)."""

    def __init__(
        self,
        callback: Callable[[list[str]], None],
        *,
        debounce_s: float = 0.5,
        poll_interval_s: float = 2.0,
        backend: str = "auto",
    ) -> None:
        if backend not in ("auto", "watchdog", "polling"):
            raise ValueError(f"unknown watcher backend {backend!r}")
        self._callback = callback
        self._debounce = debounce_s
        self._poll_interval = poll_interval_s
        self._want = backend
        self.backend = ""
        self._folders: list[str] = []
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._last_event = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer: Any = None  # a watchdog Observer while watching
        self._snapshot: dict[str, tuple[int, int]] = {}
        self._control = threading.RLock()  # start/stop may come from different threads
        self._closed = False

    @property
    def folders(self) -> list[str]:
        return list(self._folders)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, folders: Iterable[str]) -> None:
        """(Re)start watching ``folders`` (only those that exist)."""
        with self._control:
            if not self._closed:
                self._start(folders)

    def close(self, timeout: float = 5.0) -> None:
        """Stop for good: a later :meth:`start` (e.g. from a scan finishing) does nothing."""
        with self._control:
            self._closed = True
            self._stop_locked(timeout)

    def _start(self, folders: Iterable[str]) -> None:
        self.stop()
        self._folders = [f for f in dict.fromkeys(str(x) for x in folders) if os.path.isdir(f)]
        self._stop.clear()
        self.backend = "polling"
        if self._want in ("auto", "watchdog") and self._folders:
            try:
                self._start_watchdog()
                self.backend = "watchdog"
            except Exception as exc:
                if self._want == "watchdog":
                    raise
                log.info("file watching falls back to polling: %s", exc)
                self._observer = None
        if self.backend == "polling":
            self._snapshot = snapshot(self._folders)
        self._thread = threading.Thread(
            target=self._run, name="zitdesk-library-watcher", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._control:
            self._stop_locked(timeout)

    def _stop_locked(self, timeout: float) -> None:
        self._stop.set()
        self._wake.set()
        obs, self._observer = self._observer, None
        if obs is not None:
            try:
                obs.stop()
                obs.join(timeout)
            except Exception:
                log.debug("watchdog observer stop failed", exc_info=True)
        t, self._thread = self._thread, None
        if t is not None and t is not threading.current_thread():
            t.join(timeout)
        with self._lock:
            self._pending.clear()
        self._wake.clear()

    # -- events --------------------------------------------------------------------------------
    def notify(self, *paths: str) -> None:
        """Record changed paths (called by the backends; tests may call it too)."""
        rel = [
            p
            for p in paths
            if p and (is_relevant(p) or os.path.isdir(p) or not os.path.splitext(p)[1])
        ]
        if not rel:
            return
        with self._lock:
            self._pending.update(rel)
            self._last_event = time.monotonic()
        self._wake.set()

    def _start_watchdog(self) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return
                paths = [os.fsdecode(event.src_path)]
                dest = getattr(event, "dest_path", "")
                if dest:
                    paths.append(os.fsdecode(dest))
                if event.is_directory and event.event_type in ("modified",):
                    return
                watcher.notify(*paths)

        obs = Observer()
        obs.daemon = True
        handler = Handler()
        for f in self._folders:
            obs.schedule(handler, f, recursive=True)
        obs.start()
        self._observer = obs

    def _run(self) -> None:
        while not self._stop.is_set():
            timeout = self._poll_interval if self.backend == "polling" else None
            with self._lock:
                if self._pending:
                    wait = self._last_event + self._debounce - time.monotonic()
                    timeout = max(0.0, wait) if timeout is None else min(timeout, max(0.0, wait))
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set():
                break
            if self.backend == "polling":
                self._poll()
            with self._lock:
                ready = self._pending and time.monotonic() - self._last_event >= self._debounce
                paths = sorted(self._pending) if ready else []
                if ready:
                    self._pending.clear()
            if paths:
                try:
                    self._callback(paths)
                except Exception:
                    log.exception("library watcher callback failed")

    def _poll(self) -> None:
        now = snapshot(self._folders)
        old = self._snapshot
        changed = [p for p in now.keys() | old.keys() if now.get(p) != old.get(p)]
        self._snapshot = now
        if changed:
            self.notify(*changed)
