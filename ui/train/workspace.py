"""The Train tab: a first screen for newcomers, the live run view, history and crash recovery.

Built on first show (``ui.main_window`` wraps it in a :class:`~ui.workspaces.lazy.LazyWorkspace`),
so pyqtgraph and the training modules load only when the user opens the tab.

* **Overview** (first screen): what a run needs (a model, a dataset of 10–30 captioned images, a
  training adapter for Turbo) with the state of each on this machine, what each VRAM tier does
  and roughly how long it takes, a big "New training run" button (WIZARD's
  :class:`~ui.train.wizard.NewRunWizard`), a prompt to resume runs the app did not finish
  (:func:`zitdesk.train.runs.unfinished_runs`) and the run history.
* **Run view** (:class:`~ui.train.run_view.RunView`) of the live run, fed by the controller's
  signals; Pause / Resume / Cancel go to the controller, "Try it" asks the main window to put the
  paused step's LoRA into the Generate stack (``try_requested``).

When a run ends it notifies (``ui.train.notify``), refreshes the history and emits
``run_ended(job)`` (the main window rescans the LoRA Library).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ui.engine_host import EngineController, Job
from ui.thumbnails import ThumbnailCache
from ui.train.history import RunHistoryWidget
from ui.train.run_view import RunView, fmt_duration
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


class TrainWorkspace(QWidget):
    """The Train tab (see the module docstring)."""

    try_requested = Signal(str, bool)  # LoRA file, True if it is the paused run's live LoRA
    run_ended = Signal(object)  # Job of the run (finished, cancelled or failed)
    status_message = Signal(str)
    model_setup_requested = Signal()
    datasets_requested = Signal()
    dataset_fix_requested = Signal(str)  # open this dataset folder in the Datasets tab
    library_requested = Signal(str)  # show this LoRA in the Library

    def __init__(
        self,
        controller: EngineController,
        thumbnails: ThumbnailCache,
        settings: Any = None,
        notifier: Any = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings = settings
        self.notifier = notifier
        self.snapshot: Any = None
        self.live_job: Job | None = None
        self.live_spec: Any = None
        self.wizard: Any = None
        self.overview = TrainOverview()
        self.run_view = RunView(thumbnails)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.overview)
        self.overview.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.stack = QStackedWidget()
        self.stack.addWidget(scroll)
        self.stack.addWidget(self.run_view)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.stack)

        o = self.overview
        o.new_run_requested.connect(self.open_wizard)
        o.model_setup_requested.connect(self.model_setup_requested)
        o.datasets_requested.connect(self.datasets_requested)
        o.resume_requested.connect(self.resume_from_history)
        o.live_run_requested.connect(self.show_run_view)
        o.history.open_requested.connect(self.open_record)
        o.history.folder_requested.connect(self.open_folder)
        o.history.library_requested.connect(self.library_requested)
        v = self.run_view
        v.pause_requested.connect(self.pause)
        v.resume_requested.connect(self.resume)
        v.cancel_requested.connect(self.cancel)
        v.try_requested.connect(self._on_try)
        v.resume_lower_requested.connect(self.resume_lower)
        v.back_requested.connect(self.show_overview)
        v.open_folder_requested.connect(self.open_folder)

        c = controller
        for name in (
            "job_started",
            "phase_changed",
            "warning",
            "train_step",
            "sample_ready",
            "checkpoint_saved",
            "paused",
            "resumed",
            "job_finished",
            "job_cancelled",
            "job_failed",
        ):
            sig = getattr(c, name, None)
            if sig is not None:
                sig.connect(self._on_event)
        c.job_ended.connect(self._on_job_ended)
        self.refresh()

    # -- overview -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read what the first screen shows: needs, tiers, unfinished runs, history."""
        model = getattr(self.settings, "model_path", "") if self.settings is not None else ""
        self.overview.set_needs(model, known_datasets())
        gpu = self.gpu_info()
        from zitdesk.train.presets import preset_for_vram

        current = preset_for_vram(gpu.total_bytes / 2**30) if gpu is not None else ""
        self.overview.set_tiers(tier_rows(gpu), current, gpu.name if gpu is not None else "")
        self.refresh_history()

    def refresh_history(self) -> None:
        self.overview.history.refresh()
        self.overview.set_recovery(self.unfinished())

    def unfinished(self) -> list[Any]:
        try:
            from zitdesk.train.runs import unfinished_runs

            runs = list(unfinished_runs())
        except Exception:  # noqa: BLE001 - recovery is an offer; a broken file must not stop us
            log.exception("could not look for unfinished runs")
            return []
        live_out = self._live_output()
        return [r for r in runs if str(Path(r.output_dir).resolve()) != live_out]

    @property
    def live(self) -> bool:
        """True while this tab's run is queued, running or paused."""
        return self.live_job is not None and self.live_job.state in ("queued", "running", "paused")

    def _live_output(self) -> str:
        if self.live_spec is None or not self.live:
            return ""
        return str(Path(self.live_spec.config.save.output_dir).expanduser().resolve())

    def estimate(self, config: Any) -> Any:
        """WIZARD's estimate for this run on this card (None when there is none)."""
        try:
            from zitdesk.train.estimate import estimate_run

            return estimate_run(config, self.gpu_info())
        except Exception:  # noqa: BLE001 - an estimate is a hint
            log.debug("no estimate", exc_info=True)
            return None

    def gpu_info(self) -> Any:
        snap = self.snapshot
        gpus = getattr(snap, "gpus", ()) if snap is not None else ()
        return gpus[0] if gpus else None

    def set_snapshot(self, snapshot: Any) -> None:
        first = self.snapshot is None
        self.snapshot = snapshot
        self.run_view.set_snapshot(snapshot)
        if first and getattr(snapshot, "gpus", ()):
            self.refresh()

    @Slot()
    def show_overview(self) -> None:
        if self.live:
            self.overview.set_live(
                f"“{self.run_view.title.text()}” is training: {self.run_view.step_label.text()}."
            )
        else:
            self.overview.set_live("")
        self.stack.setCurrentIndex(0)

    @Slot()
    def show_run_view(self) -> None:
        self.stack.setCurrentIndex(1)

    # -- starting runs ------------------------------------------------------------------------
    @Slot()
    def open_wizard(self) -> Any:
        """WIZARD's three-page New-run wizard; its ``config_ready`` starts the run."""
        try:
            from ui.train.wizard import DETECT, NewRunWizard
        except ImportError:
            self.status_message.emit(
                "The new-run wizard is not in this build; start a run with 'zitdesk train'."
            )
            return None
        if self.wizard is not None:
            self.wizard.raise_()
            return self.wizard
        model = getattr(self.settings, "model_path", "") if self.settings is not None else ""
        gpu = self.snapshot if self.snapshot is not None else DETECT
        wiz = NewRunWizard(self, known_datasets(), gpu, model_path=model or None)
        wiz.config_ready.connect(self.start_config)
        wiz.open_dataset.connect(self._on_fix_dataset)
        wiz.finished.connect(self._on_wizard_closed)
        self.wizard = wiz
        wiz.open()
        return wiz

    @Slot(str)
    def _on_fix_dataset(self, folder: str) -> None:
        if self.wizard is not None:
            self.wizard.close()
        self.dataset_fix_requested.emit(folder)

    @Slot(int)
    def _on_wizard_closed(self, _result: int) -> None:
        if self.wizard is not None:
            self.wizard.deleteLater()
            self.wizard = None

    @Slot(object)
    def start_config(self, config: Any) -> Job | None:
        """Queue a new run of a validated ``TrainConfig``."""
        from zitdesk.train.config import TrainSpec

        try:
            config = config.validate()
        except Exception as exc:  # noqa: BLE001 - RequestError: one sentence for the user
            self.run_view.banner.show_message(str(exc), "error")
            self.status_message.emit(str(exc))
            return None
        return self.start_spec(TrainSpec(config=config, resume=False))

    def start_spec(self, spec: Any, title: str = "") -> Job | None:
        if self.live:
            self.status_message.emit(
                "A training run is already going; wait for it to end or stop it first."
            )
            self.show_run_view()
            return None
        job = self.controller.submit(spec)
        self.live_job, self.live_spec = job, spec
        self.run_view.start_run(job.job_id, spec.config, title, resumed=bool(spec.resume))
        est = self.estimate(spec.config)
        if est is not None and not spec.resume:
            self.run_view.set_estimate(est.total_s, est.peak_gib)
        if self.controller.current is not job:
            ahead = len(self.controller.pending) - 1 + (1 if self.controller.busy else 0)
            self.run_view.phase.setText(
                f"Queued: {ahead} job(s) ahead of it; it starts when the GPU is free."
            )
        self.show_run_view()
        started = self.controller.current is job
        self.status_message.emit(
            f"Training {spec.config.save.name}…"
            if started
            else f"Training queued: {spec.config.save.name} starts when the GPU is free."
        )
        return job

    @Slot(object)
    def resume_record(self, record: Any, preset: str | None = None) -> Job | None:
        """Resume an unfinished, stopped or failed run from its newest checkpoint."""
        try:
            from zitdesk.train.runs import resume_spec

            spec = resume_spec(record, preset=preset) if preset else resume_spec(record)
        except Exception as exc:  # noqa: BLE001 - RequestError etc.: one sentence
            msg = str(exc) or "This run cannot be resumed."
            self.overview.recovery.show_message(msg, "error")
            self.status_message.emit(msg)
            return None
        return self.start_spec(spec, str(record.name or ""))

    @Slot(object)
    def resume_from_history(self, record: Any) -> Job | None:
        """Resume (one tier down when the run ran out of memory)."""
        from ui.train.history import retry_preset

        return self.resume_record(record, retry_preset(record) or None)

    @Slot(str)
    def resume_lower(self, preset: str) -> Job | None:
        """After an out-of-memory failure: resume the same run one VRAM tier down."""
        if self.live_spec is None:
            return None
        record = self._record_for(self.live_spec)
        if record is not None:
            return self.resume_record(record, preset)
        from zitdesk.train.config import TrainSpec
        from zitdesk.train.presets import apply_preset

        cfg = apply_preset(self.live_spec.config, preset)
        return self.start_spec(TrainSpec(config=cfg, resume=True))

    def _record_for(self, spec: Any) -> Any:
        from ui.train.history import load_records

        out = str(Path(spec.config.save.output_dir).expanduser().resolve())
        for r in load_records():
            if str(Path(r.output_dir).expanduser().resolve()) == out:
                return r
        return None

    @Slot(object)
    def open_record(self, record: Any) -> None:
        live = self._live_output()
        if live and str(Path(record.output_dir).resolve()) == live:
            self.show_run_view()
            return
        if self.live:
            self.status_message.emit("A run is training; its view stays open.")
            self.show_run_view()
            return
        self.run_view.show_record(record)
        self.show_run_view()

    @Slot(str)
    def open_folder(self, folder: str) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    # -- controls -----------------------------------------------------------------------------
    def _live_id(self) -> str | None:
        return self.live_job.job_id if self.live_job is not None else None

    @Slot()
    def pause(self) -> None:
        if self.live_job is not None:
            self.controller.pause(self.live_job.job_id)
            self.run_view.phase.setText("Pausing after this step…")
            self.run_view.pause_button.setEnabled(False)

    @Slot()
    def resume(self) -> None:
        """Resume the paused run, or continue a stopped one from its newest checkpoint."""
        if self.live_job is not None and self.live_job.state == "paused":
            self.controller.resume(self.live_job.job_id)
            self.run_view.pause_button.setEnabled(True)
            return
        if self.live or not self.run_view.output_dir:
            return
        from ui.train.history import load_records

        out = str(Path(self.run_view.output_dir).expanduser().resolve())
        for r in load_records():
            if str(Path(r.output_dir).expanduser().resolve()) == out:
                self.resume_record(r)
                return
        self.status_message.emit("This run has no record left to resume from.")

    @Slot()
    def cancel(self) -> None:
        if self.live_job is not None:
            self.controller.cancel(self.live_job.job_id)
            self.run_view.phase.setText(
                "Stopping after this step; saving a checkpoint and the LoRA…"
            )

    @Slot(str)
    def _on_try(self, path: str) -> None:
        live = self.run_view.state == "paused" and path == self.run_view.paused_lora
        self.try_requested.emit(path, live)

    # -- controller signals -------------------------------------------------------------------
    @Slot(object)
    def _on_event(self, ev: Any) -> None:
        if ev.job_id == self._live_id():
            self.run_view.on_event(ev)
            if type(ev).__name__ == "Resumed":
                self.run_view.pause_button.setEnabled(True)

    @Slot(object)
    def _on_job_ended(self, job: Job) -> None:
        if self.live_job is None or job.job_id != self.live_job.job_id:
            return
        name = self.live_spec.config.save.name if self.live_spec is not None else "training"
        ev = job.result
        if job.state == "finished":
            lora = ev.paths[0] if getattr(ev, "paths", ()) else ""
            self._notify(
                "Training finished",
                f"“{name}” is done"
                + (f": {Path(lora).name} is in the LoRA Library." if lora else "."),
                "info",
            )
        elif job.state == "failed":
            msg = getattr(ev, "message", "") or "The run failed."
            self._notify("Training failed", f"“{name}”: {msg}", "error")
        else:
            self.status_message.emit(f"Training “{name}” stopped; its LoRA so far is saved.")
        self.run_view.pause_button.setEnabled(True)
        self.refresh_history()
        self.overview.set_live("")
        self.run_ended.emit(job)

    def _notify(self, title: str, text: str, level: str) -> None:
        self.status_message.emit(f"{title}: {text}")
        if self.notifier is not None:
            self.notifier.notify(title, text, level)

    def shutdown(self) -> None:
        if self.wizard is not None:
            self.wizard.close()
