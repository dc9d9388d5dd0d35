"""pytest-qt set-up for the library UI tests: offscreen, Qt warnings fail, no thread left running."""

from __future__ import annotations

import gc
import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest
import shiboken6
from PySide6.QtCore import QThread, QThreadPool

QT_LOG_IGNORE = [
    r"This plugin does not support",
    r"QFont::setPointSizeF",
    r"Populating font family aliases",
]


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            item.add_marker(pytest.mark.qt_log_ignore(*QT_LOG_IGNORE))


@pytest.fixture(autouse=True)
def _no_dangling_threads(qapp, monkeypatch):
    started: list[QThread] = []
    original = QThread.start

    def start(self, *args, **kwargs):
        started.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", start)
    yield
    pool = QThreadPool.globalInstance()
    if not pool.waitForDone(10_000):
        pytest.fail(f"{pool.activeThreadCount()} thread-pool task(s) still running after the test")
    # Free Qt wrappers caught in reference cycles here, on the GUI thread: a collection that
    # happens to run on a pool thread later would destroy widgets off the GUI thread.
    gc.collect()
    dangling = [t for t in started if shiboken6.isValid(t) and t.isRunning()]
    for t in dangling:
        t.quit()
        t.wait(5000)
    if dangling:
        pytest.fail(f"{len(dangling)} QThread(s) left running")


@pytest.fixture
def sample_lib(tmp_path):
    from tests.support.samples import build_sample_library

    files = build_sample_library(tmp_path / "lib", layers=2)
    return tmp_path / "lib", {p.name: str(p) for p in files}


@pytest.fixture
def make_workspace(qtbot):
    """Build a LibraryWorkspace, start it, wait until scanning and hashing are done."""
    made = []

    def make(folders, *, watch=False, auto_hash=True, store=None, backend="auto", wait=True):
        from ui.library import LibraryWorkspace
        from zitdesk.library.index import LibraryIndex
        from zitdesk.library.store import LibraryStore

        ws = LibraryWorkspace(
            store=store or LibraryStore(),
            index=LibraryIndex(),
            folders=[str(f) for f in folders],
            auto_roots=False,
            watch=watch,
            auto_hash=auto_hash,
            watcher_backend=backend,
        )
        made.append(ws)
        ws.resize(1300, 800)
        ws.start()
        if wait:
            settle(qtbot, ws)
        return ws

    yield make
    for ws in made:
        if shiboken6.isValid(ws):
            ws.shutdown()
            ws.close()
            shiboken6.delete(ws)  # destroyed now, on the GUI thread
    made.clear()
    gc.collect()


def settle(qtbot, ws, timeout=10_000):
    c = ws.controller
    qtbot.waitUntil(
        lambda: not c.scanning and not c.hashing and not c._rescan_timer.isActive(), timeout=timeout
    )
    qtbot.wait(20)
