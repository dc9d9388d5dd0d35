"""Crash log and logging set-up (after qutebrowser's ``crashsignal``), Qt-free.

:func:`install` first takes whatever the previous session left in ``crash.log`` (a faulthandler
dump from a hard crash, or tracebacks of unhandled exceptions) and moves it aside, so it is offered
to the user exactly once (:func:`pending_report`); then it points :mod:`faulthandler` at a fresh
``crash.log`` and installs ``sys.excepthook`` and ``threading.excepthook``, which append the
traceback to that file, log it and call the callback the UI registered (the UI marshals it to its
own thread). :func:`uninstall` on a clean exit removes an empty log.
"""

from __future__ import annotations

import faulthandler
import logging
import logging.handlers
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from zitdesk.io import user_dirs

log = logging.getLogger(__name__)

CRASH_FILE = "crash.log"
LOG_FILE = "zitdesk.log"

ExceptionCallback = Callable[[str, str], None]  # (one-line summary, full traceback)


@dataclass(frozen=True)
class CrashReport:
    path: Path  # where the previous session's log was moved
    text: str

    @property
    def summary(self) -> str:
        lines = [ln for ln in self.text.strip().splitlines() if ln.strip()]
        for ln in reversed(lines):
            if not ln.startswith((" ", "\t", "File ", "Thread ", "Current thread")):
                return ln.strip()[:200]
        return lines[-1].strip()[:200] if lines else "unknown error"


_state: dict = {"file": None, "path": None, "callback": None, "pending": None, "old_hooks": None}


def crash_log_path() -> Path:
    return user_dirs()["logs"] / CRASH_FILE


def take_previous_report(path: Path | None = None) -> CrashReport | None:
    """Move a non-empty crash log aside and return it; None when the last session ended cleanly."""
    path = path or crash_log_path()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if not text.strip():
        return None
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    kept = path.with_name(f"crash-{stamp}.log")
    try:
        path.replace(kept)
    except OSError:
        kept = path
    return CrashReport(kept, text)


def pending_report() -> CrashReport | None:
    """The previous session's crash found by :func:`install` (None if none)."""
    return _state["pending"]


def set_exception_callback(callback: ExceptionCallback | None) -> None:
    """Called with (summary, traceback) for every unhandled exception, on the raising thread."""
    _state["callback"] = callback


def _record(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None, where: str
) -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    log.error("unhandled exception in %s:\n%s", where, text)
    fh: IO[str] | None = _state["file"]
    if fh is not None:
        try:
            fh.write(
                f"--- {datetime.now().isoformat(timespec='seconds')} unhandled exception in "
                f"{where}\n{text}\n"
            )
            fh.flush()
        except (OSError, ValueError):
            pass
    callback = _state["callback"]
    if callback is not None:
        try:
            callback(f"{exc_type.__name__}: {exc}", text)
        except Exception:  # noqa: BLE001 - a failing reporter must not recurse into the hook
            log.exception("exception callback failed")


def _excepthook(exc_type, exc, tb) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    _record(exc_type, exc, tb, "the main thread")


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    _record(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback, f"thread {name}")


def install(path: Path | None = None) -> Path:
    """Offer-once the last crash, then enable faulthandler and the exception hooks. Idempotent."""
    if _state["file"] is not None:
        return _state["path"]
    path = path or crash_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    _state["pending"] = take_previous_report(path)
    fh = open(path, "w", encoding="utf-8")  # noqa: SIM115 - stays open for faulthandler
    faulthandler.enable(fh, all_threads=True)
    _state.update(file=fh, path=path, old_hooks=(sys.excepthook, threading.excepthook))
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    return path


def uninstall() -> None:
    """Restore the hooks, stop faulthandler and delete the crash log if nothing was written."""
    fh = _state["file"]
    if fh is None:
        return
    if _state["old_hooks"]:
        sys.excepthook, threading.excepthook = _state["old_hooks"]
    faulthandler.disable()
    path: Path = _state["path"]
    try:
        fh.close()
        if path.stat().st_size == 0:
            path.unlink()
    except OSError:
        pass
    _state.update(file=None, path=None, old_hooks=None, callback=None)


def setup_logging(level: int = logging.INFO) -> Path:
    """Log to stderr and to a rotating ``zitdesk.log`` (1 MB × 3) in the logs folder."""
    folder = user_dirs()["logs"]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_FILE
    root = logging.getLogger()
    root.setLevel(level)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not any(isinstance(h, logging.handlers.RotatingFileHandler) for h in root.handlers):
        fileh = logging.handlers.RotatingFileHandler(
            path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
        )
        fileh.setFormatter(fmt)
        root.addHandler(fileh)
    if not any(type(h) is logging.StreamHandler for h in root.handlers):
        errh = logging.StreamHandler()
        errh.setFormatter(fmt)
        errh.setLevel(logging.WARNING)
        root.addHandler(errh)
    return path
