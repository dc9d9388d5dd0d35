"""pytest-qt set-up for the UI tests: offscreen, dangling-thread guards, a window factory.

``QT_QPA_PLATFORM=offscreen`` is set before Qt is imported. Every test fails if it leaves a
``QThread`` running or work on the global ``QThreadPool`` (after napari's ``_dangling_qthreads``).
Qt warnings fail tests too (``qt_log_level_fail``), except the offscreen plugin's known notes.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest  # noqa: E402
import shiboken6  # noqa: E402
from fakes import FakeEngine, cpu_snapshot  # noqa: E402
from PySide6.QtCore import QThread, QThreadPool  # noqa: E402

QT_LOG_IGNORE = [
    r"This plugin does not support",  # offscreen: propagateSizeHints, raise, ...
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
def _dangling_qthreads(monkeypatch):
    """Fail the test if a QThread it started is still running at the end."""
    started: list[QThread] = []
    original = QThread.start

    def start(self, *args, **kwargs):
        started.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QThread, "start", start)
    yield
    dangling = [t for t in started if shiboken6.isValid(t) and t.isRunning()]
    for t in dangling:  # stop them so the next tests are not poisoned
        t.quit()
        t.wait(5000)
    if dangling:
        names = ", ".join(t.objectName() or repr(t) for t in dangling)
        pytest.fail(f"{len(dangling)} QThread(s) left running: {names}")


@pytest.fixture(autouse=True)
def _dangling_thread_pool(qapp):
    yield
    pool = QThreadPool.globalInstance()
    if not pool.waitForDone(10_000):
        pytest.fail(f"{pool.activeThreadCount()} thread-pool task(s) still running after the test")


@pytest.fixture
def settings():
    from zitdesk.settings import AppSettings

    return AppSettings(model_path="/models/fake-z-image", width=256, height=256, steps=3)


@pytest.fixture
def fake_engine(tmp_path):
    return FakeEngine(image_dir=tmp_path / "out")


@pytest.fixture
def make_window(qtbot):
    """Build a MainWindow over a fake engine; every window is shut down at teardown."""
    from ui.main_window import MainWindow

    windows = []

    def make(settings, engine="fake", snapshot_fn=cpu_snapshot, show=False):
        """``engine``: a FakeEngine, "fake" for a default one, or None for the real engine."""
        eng = FakeEngine() if engine == "fake" else engine
        factory = None if eng is None else (lambda: eng)
        win = MainWindow(settings, engine_factory=factory, snapshot_fn=snapshot_fn)
        qtbot.addWidget(win)
        windows.append(win)
        if show:
            with qtbot.waitExposed(win):
                win.show()
        return win

    yield make
    for win in windows:
        if shiboken6.isValid(win):
            win.shutdown()
