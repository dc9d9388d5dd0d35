"""Application start-up: theme, settings, main window, then the start-up dialogs.

``run(argv)`` is what ``main.py`` calls. Order matters for launch time: the window is shown before
anything slow happens; the crash report, a settings notice and the first-run model setup are
opened once the event loop runs, and the tokenizer for the token counter loads in the background
a moment later. torch, diffusers and peft are imported only by the engine thread's first job.

Options: ``--bench-launch`` prints a JSON line (window-shown time, heavy modules loaded) and exits;
``--smoke-test`` imports the heavy libraries, builds the window offscreen and exits 0 (for the
frozen build); ``--no-setup`` skips the first-run dialog.
"""

from __future__ import annotations

import json
import sys
import time

from PySide6.QtCore import QObject, QThreadPool, QTimer, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from ui.theme import apply_dark_theme, prepare_high_dpi

HEAVY_MODULES = ("torch", "diffusers", "transformers", "peft", "safetensors.torch", "numpy", "PIL")
TOKENIZER_DELAY_MS = 800
SYSTEM_CHECK_DELAY_MS = 1500


class Startup(QObject):
    """Runs the post-show steps in order: settings notice → crash report → model setup; then,
    in the background, the tokenizer for the token counter and the GPU/driver system check."""

    def __init__(self, window, notice: str, setup: bool, background: bool = True) -> None:
        super().__init__(window)
        self.window = window
        self.notice = notice
        self.setup = setup
        self.background = background
        self.dialog = None
        self.system_check = None

    @Slot()
    def begin(self) -> None:
        from zitdesk import crashlog

        if self.notice:
            self.window.show_notice(self.notice)
        report = crashlog.pending_report()
        if report is not None:
            from ui.dialogs.crash_report import CrashReportDialog

            self.dialog = CrashReportDialog(report, self.window)
            self.dialog.finished.connect(self._after_crash_report)
            self.dialog.open()
        else:
            self._after_crash_report()
        if self.background:
            QTimer.singleShot(TOKENIZER_DELAY_MS, self.window.generate.form.prompt.load_tokenizer)
            QTimer.singleShot(SYSTEM_CHECK_DELAY_MS, self._start_system_check)

    @Slot()
    def _start_system_check(self) -> None:
        """GPU, driver and torch-build check; its dialog opens only when something needs a fix."""
        try:
            from ui.dialogs.startup_check import StartupCheck
        except ImportError:  # being written by the packaging work; the app runs without it
            return
        self.system_check = StartupCheck(self.window)
        self.system_check.start()

    @Slot()
    def _after_crash_report(self, *_args) -> None:
        if self.setup:
            self.window.ensure_model_configured()


def _set_icon(app: QApplication) -> None:
    from zitdesk.paths import resources_dir

    icon = resources_dir() / "icons" / "zitdesk.png"
    if icon.is_file():
        app.setWindowIcon(QIcon(str(icon)))


def _bench_report(window) -> None:
    print(
        json.dumps(
            {
                "window_shown_epoch": time.time(),
                "visible": window.isVisible(),
                "heavy_modules": [m for m in HEAVY_MODULES if m in sys.modules],
                "module_count": len(sys.modules),
            }
        ),
        flush=True,
    )


def run(argv: list[str]) -> int:
    bench = "--bench-launch" in argv
    smoke = "--smoke-test" in argv
    setup = "--no-setup" not in argv and not bench and not smoke
    qt_argv = [a for a in argv if a not in ("--bench-launch", "--smoke-test", "--no-setup")]
    if smoke:
        import diffusers  # noqa: F401 - prove the bundle has them
        import torch  # noqa: F401

    prepare_high_dpi()
    app = QApplication.instance() or QApplication(qt_argv)
    app.setApplicationName("zitdesk")
    app.setApplicationDisplayName("zitdesk")
    app.setOrganizationName("zitdesk")
    apply_dark_theme(app)
    _set_icon(app)
    # Short background work (memory polls, thumbnails, header reads, the tokenizer) shares the
    # global pool; on a 2-core machine a slow tokenizer load must not starve the 1 Hz poll.
    pool = QThreadPool.globalInstance()
    pool.setMaxThreadCount(max(pool.maxThreadCount(), 4))

    from ui.main_window import MainWindow
    from zitdesk import crashlog
    from zitdesk.settings import load_settings

    settings, notice = load_settings()
    window = MainWindow(settings)
    try:
        crashlog.set_exception_callback(window.errors.report)
        window.show()
        if bench or smoke:
            app.processEvents()
            if bench:
                _bench_report(window)
            return 0
        startup = Startup(window, notice, setup)
        QTimer.singleShot(0, startup.begin)
        return app.exec()
    finally:
        crashlog.set_exception_callback(None)
        window.shutdown()
