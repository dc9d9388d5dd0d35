"""The Train tab's first screen: what a run needs, what each VRAM tier does, history, recovery.

:class:`TrainOverview` only shows and asks (signals: new run, model set-up, datasets, resume a
record, open the live run); :class:`~ui.train.workspace.TrainWorkspace` fills it
(``set_needs``, ``set_tiers``, ``set_recovery``, ``set_live``) and answers its signals.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.train.gpu_choice import TrainOnCombo
from ui.train.history import RunHistoryWidget
from ui.train.run_view import fmt_duration
from ui.widgets.banner import BannerWidget
from zitdesk.io import user_dirs

log = logging.getLogger(__name__)

TYPICAL_STEPS = 2000
#: Measured on an H100 capped to each tier's memory (docs/benchmarks.md, 1024², r32): the
#: fallback when the per-card estimator (zitdesk.train.estimate) is not available.
MEASURED_S_PER_STEP = {"24gb": 0.368, "16gb": 0.426, "12gb": 0.446, "8gb": 0.733}
NEEDS_TEXT = {
    "model": (
        "A Z-Image model",
        "The Turbo (or Base) files you already generate with.",
    ),
    "dataset": (
        "A dataset of 10–30 captioned images",
        "One subject or style, each image with a same-name .txt caption. Make one in the "
        "Datasets tab: import, caption, check.",
    ),
    "adapter": (
        "A training adapter (for Turbo)",
        "Turbo is distilled to 8 steps; training it directly blurs it. A training adapter "
        "(e.g. ai-toolkit's zimage_turbo_training_adapter_v2.safetensors) protects that while "
        "training and is removed from your LoRA. Not needed for Base / De-Turbo.",
    ),
}


def known_datasets() -> list[Path]:
    """The app's datasets: folders under the datasets root, and the last one opened."""
    try:
        from ui.train.wizard import app_datasets

        return app_datasets()
    except ImportError:
        pass
    root = user_dirs()["data"] / "datasets"
    found: list[Path] = []
    try:
        if root.is_dir():
            found = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        pass
    last = QSettings().value("datasets/last_folder", "")
    if last and Path(str(last)).is_dir() and Path(str(last)) not in found:
        found.insert(0, Path(str(last)))
    return found


def tier_rows(gpu: Any) -> list[tuple[str, str, str, str]]:
    """``(preset, label, what it does, time for a typical run)`` per VRAM tier."""
    from zitdesk.train.presets import PRESETS

    rows = []
    estimate = None
    try:
        from zitdesk.train import estimate as estimate_mod

        estimate = estimate_mod
    except ImportError:
        estimate = None
    for name, p in PRESETS.items():
        text = ""
        if estimate is not None and hasattr(estimate, "estimate_run"):
            try:
                from zitdesk.train.config import TrainConfig
                from zitdesk.train.presets import apply_preset

                cfg = apply_preset(TrainConfig(), name).with_changes(optim={"steps": TYPICAL_STEPS})
                est = estimate.estimate_run(cfg, gpu)
                text = (
                    f"≈ {fmt_duration(est.total_s)} · {est.step_s:.2f} s/step · "
                    f"peak ≈ {est.peak_gib:.0f} GiB"
                )
            except Exception:  # noqa: BLE001 - an estimate is a hint; fall back to measured
                log.debug("estimate failed for %s", name, exc_info=True)
        if not text:
            s = MEASURED_S_PER_STEP.get(name, 0.0)
            text = f"≈ {fmt_duration(s * TYPICAL_STEPS)} on an H100 ({s:.2f} s/step)"
        rows.append((name, p.label, p.description, text))
    return rows


def _card(title: str, body: str) -> tuple[QFrame, QLabel, QPushButton]:
    frame = QFrame()
    frame.setObjectName("trainCard")
    frame.setStyleSheet(
        "QFrame#trainCard { background: #262a30; border: 1px solid #3a3f47; border-radius: 6px; }"
    )
    t = QLabel(title)
    t.setObjectName("sectionTitle")
    b = QLabel(body)
    b.setObjectName("muted")
    b.setWordWrap(True)
    state = QLabel("")
    state.setWordWrap(True)
    state.setTextFormat(Qt.TextFormat.PlainText)
    action = QPushButton()
    action.setVisible(False)
    lay = QVBoxLayout(frame)
    lay.setContentsMargins(12, 10, 12, 10)
    lay.setSpacing(4)
    lay.addWidget(t)
    lay.addWidget(b)
    row = QHBoxLayout()
    row.addWidget(state, 1)
    row.addWidget(action)
    lay.addLayout(row)
    lay.addStretch(1)
    return frame, state, action


class TrainOverview(QWidget):
    """The first screen (see the module docstring); no behaviour beyond its buttons."""

    new_run_requested = Signal()
    model_setup_requested = Signal()
    datasets_requested = Signal()
    resume_requested = Signal(object)  # RunRecord
    live_run_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel("Train a LoRA")
        title.setObjectName("placeholderTitle")
        lead = QLabel(
            "Teach Z-Image a character, a style or a concept from your own images. A run takes "
            "minutes to an hour on one GPU; you can pause it, try the LoRA in Generate, and "
            "resume. The finished LoRA appears in the LoRA Library."
        )
        lead.setWordWrap(True)
        self.recovery = BannerWidget()
        self.recovery.action_clicked.connect(self._on_recovery_action)
        self._recover: list[Any] = []
        self.live = BannerWidget()
        for b in (self.recovery, self.live):
            b.label.setTextFormat(Qt.TextFormat.PlainText)  # run names come from folder names
        self.live.action_clicked.connect(self._on_live_action)

        needs = QGridLayout()
        needs.setHorizontalSpacing(10)
        self.cards: dict[str, tuple[QFrame, QLabel, QPushButton]] = {}
        for i, key in enumerate(("model", "dataset", "adapter")):
            frame, state, action = _card(*NEEDS_TEXT[key])
            self.cards[key] = (frame, state, action)
            needs.addWidget(frame, 0, i)
            needs.setColumnStretch(i, 1)
        self.cards["model"][2].clicked.connect(self.model_setup_requested)
        self.cards["dataset"][2].clicked.connect(self.datasets_requested)

        self.tiers_title = QLabel("What your card can do (a typical run: 2000 steps)")
        self.tiers_title.setObjectName("sectionTitle")
        self.tiers = QGridLayout()
        self.tiers.setHorizontalSpacing(16)
        self.tiers.setVerticalSpacing(2)
        self.tier_note = QLabel("")
        self.tier_note.setObjectName("muted")
        self.tier_note.setWordWrap(True)

        self.new_button = QPushButton("New training run…")
        self.new_button.setObjectName("primaryButton")
        self.new_button.setMinimumHeight(44)
        self.new_button.setMinimumWidth(260)
        self.new_button.setStyleSheet("font-size: 12pt;")
        self.new_button.setToolTip("Three short steps: dataset, what it learns, your hardware")
        self.new_button.clicked.connect(self.new_run_requested)
        self.train_on = TrainOnCombo()  # several GPUs: the card(s) new runs and resumes use
        self.train_on_label = QLabel("Train on")
        self.train_on_label.setBuddy(self.train_on)
        self.set_gpus(())
        self.next_hint = QLabel("")
        self.next_hint.setWordWrap(True)
        steps = self.next_hint

        history_title = QLabel("Run history")
        history_title.setObjectName("sectionTitle")
        self.history = RunHistoryWidget()
        self.history.resume_requested.connect(self.resume_requested)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(16, 10, 16, 10)
        lay.setSpacing(8)
        lay.addWidget(title)
        lay.addWidget(lead)
        lay.addWidget(self.recovery)
        lay.addWidget(self.live)
        lay.addLayout(needs)
        lay.addWidget(self.tiers_title)
        lay.addLayout(self.tiers)
        lay.addWidget(self.tier_note)
        row = QHBoxLayout()
        row.addWidget(self.new_button)
        row.addSpacing(12)
        on = QVBoxLayout()
        on.setSpacing(2)
        on.addWidget(self.train_on_label)
        on.addWidget(self.train_on)
        row.addLayout(on)
        row.addSpacing(12)
        row.addWidget(steps, 1)
        lay.addLayout(row)
        lay.addSpacing(4)
        lay.addWidget(history_title)
        lay.addWidget(self.history, 1)
        self.history.setMinimumHeight(150)

    # -- content ------------------------------------------------------------------------------
    def set_needs(self, model: str, datasets: list[Path]) -> None:
        _f, state, action = self.cards["model"]
        if model:
            state.setText(f"✓ {Path(model).name}")
            action.setVisible(False)
        else:
            state.setText("No model set up yet.")
            action.setText("Set up model…")
            action.setVisible(True)
        _f, state, action = self.cards["dataset"]
        if datasets:
            names = ", ".join(p.name for p in datasets[:3]) + ("…" if len(datasets) > 3 else "")
            state.setText(f"✓ {len(datasets)} found: {names}")
            action.setText("Open Datasets")
        else:
            state.setText("None yet (any folder of images + .txt captions works too).")
            action.setText("Make one…")
        action.setVisible(True)
        _f, state, _a = self.cards["adapter"]
        state.setText("The wizard asks for the file and checks it.")
        if not model:
            hint = "Next: set up the model (the first card), then make a dataset."
        elif not datasets:
            hint = (
                "Next: make a dataset in the Datasets tab (import 10–30 images, caption them, "
                "run the check), or pick any captioned folder in the wizard."
            )
        else:
            hint = (
                "Ready. New training run walks you through three short pages: the dataset → "
                "what it learns (trigger word) → your hardware and the time it takes → Start."
            )
        self.next_hint.setText(hint)

    def set_tiers(self, rows: list[tuple[str, str, str, str]], current: str, gpu_name: str) -> None:
        while self.tiers.count():
            item = self.tiers.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for r, (name, label, what, time_text) in enumerate(rows):
            mark = name == current
            cells = [("▶ " if mark else "   ") + label, what, time_text]
            for c, text in enumerate(cells):
                lab = QLabel(text)
                lab.setTextFormat(Qt.TextFormat.PlainText)
                if mark:
                    lab.setStyleSheet("font-weight: 600; color: #e6e6e6;")
                elif c > 0:
                    lab.setObjectName("muted")
                self.tiers.addWidget(lab, r, c)
        self.tiers.setColumnStretch(1, 1)
        if gpu_name:
            self.tier_note.setText(
                f"▶ marks the tier for your {gpu_name}; the wizard picks it for you. "
                "Caching the dataset and rendering samples add a few minutes."
            )
        else:
            self.tier_note.setText(
                "No NVIDIA GPU found: training on the CPU works for tiny tests only. "
                "Caching the dataset and rendering samples add a few minutes."
            )

    def set_gpus(self, gpus: Any) -> None:
        """The machine's cards: the "Train on" combo, shown only with more than one."""
        self.train_on.set_gpus(gpus)
        several = len(gpus or ()) > 1
        self.train_on.setVisible(several)
        self.train_on_label.setVisible(several)

    def set_recovery(self, records: list[Any]) -> None:
        self._recover = list(records)
        if not records:
            self.recovery.hide()
            return
        r = records[0]
        more = f" (and {len(records) - 1} more, see the history)" if len(records) > 1 else ""
        self.recovery.show_message(
            f"The run “{r.name}” did not finish: zitdesk stopped at step "
            f"{r.steps_done}/{r.steps_total}{more}. Resume continues from its newest "
            "checkpoint.",
            "warning",
            "Resume",
            "resume",
        )

    def set_live(self, text: str) -> None:
        if text:
            self.live.show_message(text, "info", "Open run", "open")
        else:
            self.live.hide()

    @Slot(str)
    def _on_recovery_action(self, key: str) -> None:
        if key == "resume" and self._recover:
            self.resume_requested.emit(self._recover[0])

    @Slot(str)
    def _on_live_action(self, key: str) -> None:
        if key == "open":
            self.live_run_requested.emit()
