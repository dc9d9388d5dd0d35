"""The start-up system check: the findings of :func:`zitdesk.gpu.doctor` with a fix for each.

Same checks as ``zitdesk doctor``: NVIDIA driver present and new enough for the bundled CUDA,
CUDA usable, the card's compute capability in the bundled PyTorch's arch list (the RTX 50 "no
kernel image is available" trap), the VRAM tier, and on Windows the "sysmem fallback" advice.

* :class:`StartupCheckDialog` shows a :class:`~zitdesk.gpu.DoctorReport`.
* :class:`StartupCheck` runs the doctor on the thread pool (it imports torch, which takes a
  second or two) and opens the dialog when something needs attention, or always when asked
  from the Help menu.

Wiring (``ui/app.py`` start-up, ``ui/main_window.py`` Help menu)::

    from ui.dialogs.startup_check import StartupCheck
    self.check = StartupCheck(window)                 # after the window is shown
    QTimer.singleShot(1500, self.check.start)
    # Help → "System check…":  StartupCheck(self, always_show=True).start()
"""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QScrollArea,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from ui.tasks import TaskSignals, run_task
from ui.widgets.text import esc, plain_label, rich_label

LEVEL_ORDER = {"error": 0, "warn": 1, "info": 2, "ok": 3}
LEVEL_ICON = {
    "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
    "warn": QStyle.StandardPixmap.SP_MessageBoxWarning,
    "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
    "ok": QStyle.StandardPixmap.SP_DialogApplyButton,
}
#: Topics the start-up check leaves to other dialogs (the first-run model setup handles models).
SKIPPED_TOPICS = {"models"}


def needs_attention(report: Any) -> bool:
    """True when a finding is an error or a warning (model findings excepted)."""
    return any(
        f.level in ("error", "warn") and f.topic not in SKIPPED_TOPICS for f in report.findings
    )


def summary_text(report: Any) -> str:
    errors = [f for f in report.findings if f.level == "error" and f.topic not in SKIPPED_TOPICS]
    warns = [f for f in report.findings if f.level == "warn" and f.topic not in SKIPPED_TOPICS]
    gpus = report.facts.get("gpus") or []
    if errors:
        what = "One problem stops" if len(errors) == 1 else f"{len(errors)} problems stop"
        return (
            f"{what} zitdesk from using the GPU. Below is how to fix it; until then zitdesk runs "
            "on the CPU, which is very slow for real models."
        )
    if warns:
        what = "one thing needs" if len(warns) == 1 else f"{len(warns)} things need"
        return f"zitdesk can run, but {what} attention."
    if not gpus:
        return "No NVIDIA GPU was found: zitdesk will run on the CPU (fine for trying it, slow for real work)."
    names = ", ".join(str(g.get("name", "GPU")) for g in gpus)
    return f"Everything needed for the GPU is in place ({names})."


def report_text(report: Any) -> str:
    """Plain text for bug reports (Copy button)."""
    lines = ["zitdesk system check"]
    for k, v in report.facts.items():
        if k not in ("models",):
            lines.append(f"{k}: {json.dumps(v, default=str) if not isinstance(v, str) else v}")
    for f in report.findings:
        lines.append(f"[{f.level}] {f.topic}: {f.message}" + (f" Fix: {f.fix}" if f.fix else ""))
    return "\n".join(lines)


class FindingRow(QFrame):
    """One finding: level icon, the message, and the fix underneath."""

    def __init__(self, finding: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.finding = finding
        self.setFrameShape(QFrame.Shape.StyledPanel)
        icon = QLabel()
        icon.setPixmap(
            self.style()
            .standardIcon(LEVEL_ICON.get(finding.level, LEVEL_ICON["info"]))
            .pixmap(24, 24)
        )
        icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.message = plain_label(finding.message, wrap=True, selectable=True)
        text = QVBoxLayout()
        text.setSpacing(2)
        text.addWidget(self.message)
        self.fix = None
        if finding.fix:
            self.fix = rich_label(f"<b>Fix:</b> {esc(finding.fix)}", wrap=True)
            self.fix.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            text.addWidget(self.fix)
        row = QHBoxLayout(self)
        row.addWidget(icon)
        row.addLayout(text, 1)


class StartupCheckDialog(QDialog):
    def __init__(self, report: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report = report
        self.setWindowTitle("zitdesk — system check")
        self.resize(720, 520)
        self.summary = plain_label(summary_text(report), wrap=True)
        findings = sorted(
            (f for f in report.findings if f.topic not in SKIPPED_TOPICS),
            key=lambda f: LEVEL_ORDER.get(f.level, 9),
        )
        holder = QWidget()
        col = QVBoxLayout(holder)
        self.rows = [FindingRow(f) for f in findings]
        for row in self.rows:
            col.addWidget(row)
        col.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(holder)
        facts = {k: v for k, v in report.facts.items() if k not in ("models", "gpus")}
        self.details = QPlainTextEdit("\n".join(f"{k}: {v}" for k, v in facts.items()))
        self.details.setReadOnly(True)
        self.details.setMaximumHeight(110)
        self.box = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = self.box.addButton("Copy report", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_report)
        self.box.rejected.connect(self.reject)
        self.box.accepted.connect(self.accept)
        lay = QVBoxLayout(self)
        lay.addWidget(self.summary)
        lay.addWidget(scroll, 1)
        lay.addWidget(QLabel("Details (torch build, CUDA, driver, kernels):"))
        lay.addWidget(self.details)
        lay.addWidget(self.box)

    @Slot()
    def copy_report(self) -> None:
        QGuiApplication.clipboard().setText(report_text(self.report))


def _run_doctor():
    from zitdesk.gpu import doctor

    return doctor(check_models=False)


class StartupCheck(QObject):
    """Runs the doctor off the GUI thread, then shows the dialog if needed (or always)."""

    finished = Signal(object)  # the DoctorReport, or None when the check itself failed

    def __init__(self, parent: QWidget, always_show: bool = False, doctor_fn=None) -> None:
        super().__init__(parent)
        self.window = parent
        self.always_show = always_show
        self.doctor_fn = doctor_fn or _run_doctor
        self.dialog: StartupCheckDialog | None = None
        self.signals = TaskSignals(self)
        self.signals.succeeded.connect(self._on_report)
        self.signals.failed.connect(self._on_error)

    @Slot()
    def start(self) -> None:
        run_task(self.signals, "doctor", self.doctor_fn)

    @Slot(object, object)
    def _on_report(self, _tag: object, report: object) -> None:
        if self.always_show or needs_attention(report):
            self.dialog = StartupCheckDialog(report, self.window)
            self.dialog.open()
        self.finished.emit(report)

    @Slot(object, object)
    def _on_error(self, _tag: object, message: object) -> None:
        if self.always_show:
            from zitdesk.gpu import DoctorReport

            rep = DoctorReport()
            rep.add(
                "error",
                "check",
                f"The system check itself failed: {message}",
                "Run 'zitdesk-console doctor' in a terminal and include its output in a bug report.",
            )
            self.dialog = StartupCheckDialog(rep, self.window)
            self.dialog.open()
        self.finished.emit(None)
