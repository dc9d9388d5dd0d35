"""Start-up: a light import graph, the launch benchmark path, and the post-show dialogs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtWidgets import QDialog

from ui.app import Startup
from ui.dialogs.crash_report import CrashReportDialog
from zitdesk import crashlog
from zitdesk.settings import AppSettings

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "diffusers", "transformers", "peft", "safetensors.torch")


def run_py(code: str, env_home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "ZITDESK_HOME": str(env_home)}
    return subprocess.run(
        [sys.executable, *code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env
    )


def test_importing_the_main_window_leaves_torch_out(tmp_path):
    code = (
        "import sys, ui.main_window, ui.app\n"
        f"bad = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    res = run_py(["-c", code], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]


def test_main_starts_the_window_without_heavy_imports(tmp_path):
    res = run_py(["main.py", "--bench-launch"], tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("{"))
    report = json.loads(line)
    assert report["visible"] is True
    assert not set(report["heavy_modules"]) & set(HEAVY), report["heavy_modules"]
    assert not (tmp_path / "logs" / "crash.log").exists()  # clean exit removes the empty log


def test_startup_offers_the_crash_report_then_the_model_setup(
    qtbot, make_window, monkeypatch, tmp_path
):
    report = crashlog.CrashReport(tmp_path / "crash-1.log", "Fatal Python error: Aborted\n")
    monkeypatch.setattr(crashlog, "pending_report", lambda: report)
    win = make_window(AppSettings())
    start = Startup(
        win, "Some settings had invalid values and were reset.", setup=True, background=False
    )
    start.begin()
    assert "invalid values" in win.generate.banner.label.text()
    assert isinstance(start.dialog, CrashReportDialog) and start.dialog.isVisible()
    assert "Aborted" in start.dialog.text.toPlainText()
    assert win._setup_dialog is None
    start.dialog.done(QDialog.DialogCode.Rejected)
    assert win._setup_dialog is not None  # then the first-run setup
    qtbot.waitUntil(lambda: not win._setup_dialog.busy, timeout=30_000)
    win._setup_dialog.reject()
    assert "No model is set up yet" in win.generate.banner.label.text()


def test_unhandled_error_is_shown_in_the_window(qtbot, make_window, settings):
    win = make_window(settings)
    with qtbot.waitSignal(win.errors.reported):
        win.errors.report("ZeroDivisionError: division by zero", "Traceback ...")
    assert "division by zero" in win.generate.banner.label.text()
    assert win.generate.banner.details == "Traceback ..."
