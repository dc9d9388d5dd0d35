"""The self-test's window step: build the real main window offscreen, show it, close it.

The UI side of the self-test: :func:`main` runs :func:`zitdesk.selftest.main` with this window
step (``main.py --selftest`` and the frozen launcher start it; the engine never imports ``ui``). It
catches the classic frozen-bundle failures: a missing Qt platform plugin, a missing module of the
``ui`` package, resources that did not travel, a window that cannot shut its threads down.
"""

from __future__ import annotations

import os
import time


def open_and_close_main_window(model_path: str = "", settle_s: float = 0.5) -> str:
    """Open the main window (real engine host, memory poller, workspaces), paint it, close it.

    Uses the ``offscreen`` Qt platform unless a ``QApplication`` already exists (then it uses
    that one). Raises ``RuntimeError`` with a plain sentence when something is wrong; returns a
    short description otherwise.
    """
    from PySide6.QtWidgets import QApplication

    created = False
    old_platform = os.environ.get("QT_QPA_PLATFORM")
    app = QApplication.instance()
    if app is None:
        os.environ["QT_QPA_PLATFORM"] = os.environ.get("ZITDESK_SELFTEST_QPA", "offscreen")
        from ui.theme import prepare_high_dpi

        prepare_high_dpi()
        app = QApplication(["zitdesk-selftest"])
        created = True
    try:
        from ui.main_window import MainWindow
        from ui.theme import apply_dark_theme
        from zitdesk.settings import AppSettings

        if created:
            apply_dark_theme(app)
        window = MainWindow(AppSettings(model_path=model_path, width=64, height=64, steps=2))
        try:
            window.show()
            deadline = time.monotonic() + settle_s
            while time.monotonic() < deadline:
                app.processEvents()
                time.sleep(0.02)
            if not window.isVisible():
                raise RuntimeError("the main window did not become visible")
            shot = window.grab()
            if shot.isNull() or shot.width() < 200 or shot.height() < 150:
                raise RuntimeError(
                    f"the main window painted as {shot.width()}×{shot.height()} pixels"
                )
            tabs = window.tabs.count()
            platform_name = app.platformName()
        finally:
            window.close()  # closeEvent → shutdown: poller, settings, engine thread, thread pool
            app.processEvents()
        if window.controller.running:
            raise RuntimeError("the engine thread was still running after the window closed")
        window.deleteLater()
        app.processEvents()
        return f"main window opened and closed ({platform_name}, {shot.width()}×{shot.height()}, {tabs} tabs)"
    finally:
        if created:
            if old_platform is None:
                os.environ.pop("QT_QPA_PLATFORM", None)
            else:
                os.environ["QT_QPA_PLATFORM"] = old_platform


def main(argv: list[str] | None = None) -> int:
    """``--selftest`` with the window step: :func:`zitdesk.selftest.main` + the main window."""
    from zitdesk import selftest

    return selftest.main(argv, window=lambda model: open_and_close_main_window(model_path=model))
