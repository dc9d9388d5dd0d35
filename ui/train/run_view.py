"""The view of one training run: progress, charts, samples, checkpoints, log and the controls.

It only displays and asks: the Train workspace feeds it the run's engine events
(``on_event``) and turns its intent signals (``pause_requested``, ``resume_requested``,
``try_requested``, ``cancel_requested``, ``resume_lower_requested``) into controller calls.

What it shows: step n/N with a progress bar, it/s, an ETA that counts the sample rounds and
checkpoint saves still to come (measured on this run; the engine's ``phase_eta_s`` when it sends
one), VRAM used against the budget (``TrainStep.vram_bytes`` when the engine sends it, else the
status bar's NVML reading), the phase line ("Encoding latents 3/54"), the loss and learning-rate
charts (:mod:`ui.train.charts`), the samples timeline (:mod:`ui.train.samples`), the checkpoints
with their sizes and "Try in Generate", and a log of phases, warnings, checkpoints and errors.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.thumbnails import ThumbnailCache
from ui.train.charts import LossChart, LrChart
from ui.train.checkpoint_list import CheckpointList
from ui.train.gpu_choice import NO_PAUSE_TIP
from ui.train.run_format import (
    CANCEL_TEXT,
    GIB,
    PAUSE_TIP,
    PHASE_NAMES,
    STATE_LABELS,
    fmt_duration,
    fmt_size,
    full_eta,
    path_size,
    remaining_events,
)
from ui.train.samples import SamplesTimeline
from ui.widgets.banner import BannerWidget
from zitdesk.engine.events import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    JobWarning,
    PhaseChanged,
)
from zitdesk.train.events import CheckpointSaved, Paused, Resumed, SampleReady, TrainStep

# (the number helpers moved to ui.train.run_format; importable from here as before)
__all__ = ["RunView", "fmt_duration", "fmt_size", "full_eta", "path_size", "remaining_events"]


class RunView(QWidget):
    """One run (live or from history). See the module docstring."""

    pause_requested = Signal()
    resume_requested = Signal()
    try_requested = Signal(str)  # a LoRA file: the paused step's, or a checkpoint's
    cancel_requested = Signal()
    resume_lower_requested = Signal(str)  # the preset one tier down after an OOM
    back_requested = Signal()
    open_folder_requested = Signal(str)

    def __init__(self, thumbnails: ThumbnailCache, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job_id = ""
        self.config: Any = None
        self.state = "idle"  # idle | running | paused | finished | cancelled | failed
        self.paused_lora = ""
        self.final_lora = ""
        self.output_dir = ""
        self.retry_preset = ""
        self.last_step: TrainStep | None = None
        self.vram_used = 0
        self.vram_total = 0
        self.log_lines: list[str] = []
        self._phase_t0: tuple[str, float] | None = None
        self.sample_s = 0.0
        self.save_s = 0.0
        self.estimate_text = ""

        self.back_button = QPushButton("← Train overview")
        self.back_button.setFlat(True)
        self.back_button.clicked.connect(self.back_requested)
        self.title = QLabel("Training run")
        self.title.setObjectName("placeholderTitle")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.status = QLabel("")
        self.status.setObjectName("sectionTitle")
        self.where = QLabel("")  # the GPU(s) the run trains on (several cards: #19)
        self.where.setObjectName("muted")
        self.can_pause = True  # False for a data-parallel run (child processes)
        self.card: int | None = None  # the GPU whose reading the VRAM figure shows (#19)
        self.step_label = QLabel("Step 0/0")
        self.step_label.setObjectName("sectionTitle")
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(10)
        self.stats = QLabel("")
        self.stats.setObjectName("muted")
        self.phase = QLabel("Waiting for the engine…")
        self.phase.setTextFormat(Qt.TextFormat.PlainText)
        self.phase.setWordWrap(True)
        self.banner = BannerWidget()
        self.banner.label.setTextFormat(Qt.TextFormat.PlainText)  # engine messages name files
        self.banner.action_clicked.connect(self._on_banner_action)

        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip(PAUSE_TIP)
        self.resume_button = QPushButton("Resume")
        self.try_button = QPushButton("Try it in Generate")
        self.try_button.setObjectName("primaryButton")
        self.try_button.setToolTip(
            "Generate with the LoRA as of this step, on the model training has loaded"
        )
        self.cancel_button = QPushButton("Stop…")
        self.cancel_button.setObjectName("dangerButton")
        self.cancel_button.setToolTip("Stop the run; a checkpoint and the LoRA so far are saved")
        self.folder_button = QPushButton("Open folder")
        self.pause_button.clicked.connect(self.pause_requested)
        self.resume_button.clicked.connect(self.resume_requested)
        self.try_button.clicked.connect(self._on_try)
        self.cancel_button.clicked.connect(self.confirm_cancel)
        self.folder_button.clicked.connect(self._on_folder)

        self.loss_chart = LossChart()
        self.lr_chart = LrChart()
        self.lr_chart.setMaximumHeight(150)
        self.samples = SamplesTimeline(thumbnails)
        self.checkpoints = CheckpointList()
        self.checkpoints.itemDoubleClicked.connect(self._on_checkpoint_activated)
        self.try_checkpoint_button = QPushButton("Try in Generate")
        self.try_checkpoint_button.setToolTip(
            "Put the selected step's LoRA into the Generate stack"
        )
        self.try_checkpoint_button.clicked.connect(self._on_try_checkpoint)
        self.try_checkpoint_button.setEnabled(False)
        self.checkpoints.itemSelectionChanged.connect(self._on_checkpoint_selection)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)

        head = QHBoxLayout()
        head.addWidget(self.back_button)
        head.addWidget(self.title)
        head.addSpacing(12)
        head.addWidget(self.status)
        head.addSpacing(8)
        head.addWidget(self.where)
        head.addStretch(1)
        head.addWidget(self.folder_button)
        head.addWidget(self.pause_button)
        head.addWidget(self.resume_button)
        head.addWidget(self.try_button)
        head.addWidget(self.cancel_button)
        line = QHBoxLayout()
        line.addWidget(self.step_label)
        line.addWidget(self.progress, 1)
        line.addWidget(self.stats)

        charts = QWidget()
        cl = QVBoxLayout(charts)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.loss_chart, 3)
        cl.addWidget(self.lr_chart, 1)
        ck = QWidget()
        kl = QVBoxLayout(ck)
        kl.setContentsMargins(0, 0, 0, 0)
        kl.addWidget(self.checkpoints, 1)
        kb = QHBoxLayout()
        kb.addStretch(1)
        kb.addWidget(self.try_checkpoint_button)
        kl.addLayout(kb)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.samples, "Samples")
        self.tabs.addTab(ck, "Checkpoints")
        self.tabs.addTab(self.log_view, "Log")
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(charts)
        self.split.addWidget(self.tabs)
        self.split.setStretchFactor(0, 1)
        self.split.setStretchFactor(1, 1)
        self.split.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        lay.addLayout(head)
        lay.addLayout(line)
        lay.addWidget(self.phase)
        lay.addWidget(self.banner)
        lay.addWidget(self.split, 1)
        self._update_buttons()

    # -- set-up -------------------------------------------------------------------------------
    def start_run(self, job_id: str, config: Any, title: str = "", resumed: bool = False) -> None:
        """Reset the view for a new (or resumed) job of ``config`` (a TrainConfig)."""
        self.job_id = job_id
        self.config = config
        self.state = "running"
        self.paused_lora = self.final_lora = self.retry_preset = ""
        self.last_step = None
        self.sample_s = self.save_s = 0.0
        self.estimate_text = ""
        self._phase_t0 = None
        self.banner.hide()
        self.set_where("")
        name = title or (config.save.name if config is not None else "Training run")
        self.title.setText(name)
        self.output_dir = config.save.output_dir if config is not None else ""
        total = config.optim.steps if config is not None else 0
        self.step_label.setText(f"Step 0/{total}")
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(0)
        self.stats.setText("")
        self.phase.setText("Waiting for the engine (a job ahead of it may still run)…")
        self.loss_chart.clear()
        self.lr_chart.clear()
        self.checkpoints.clear()
        self.log_view.clear()
        self.log_lines.clear()
        self.samples.clear()
        if config is not None:
            from zitdesk.train.samples import sample_prompts

            self.samples.set_prompts([p for p, _ in sample_prompts(config)])
            if resumed and self.output_dir:
                from zitdesk.train.losses import read_losses

                self.loss_chart.set_points(read_losses(self.output_dir))  # the curve so far
                self.samples.load_folder(Path(self.output_dir) / "samples")
                self._load_checkpoints_from_disk()
        self.log(("Resuming " if resumed else "Queued ") + name)
        self._update_buttons()

    def show_record(self, record: Any) -> None:
        """A finished/stopped run from history: samples, checkpoints and the config, no job."""
        from ui.train.history import config_file

        self.job_id = ""
        self.set_where("")
        self.state = str(getattr(record, "status", "finished"))
        self.output_dir = str(getattr(record, "output_dir", ""))
        self.retry_preset = ""
        self.paused_lora = ""
        self.config = None
        with contextlib.suppress(Exception):  # a missing or damaged config: no prompts, no names
            from zitdesk.train.config import TrainConfig

            self.config = TrainConfig.load(config_file(record))
        self.final_lora = str(getattr(record, "lora_path", "") or "")
        self.title.setText(str(getattr(record, "name", "") or Path(self.output_dir).name))
        done, total = int(record.steps_done or 0), int(record.steps_total or 0)
        self.step_label.setText(f"Step {done}/{total}")
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        loss = record.final_loss
        self.stats.setText(f"final loss {loss:.4f}" if isinstance(loss, float) else "")
        self.phase.setText(
            str(getattr(record, "error", "") or "")
            or "A run from the history: its loss curve, samples and checkpoints."
        )
        self.loss_chart.clear()
        if self.output_dir:
            from zitdesk.train.losses import read_losses

            self.loss_chart.set_points(read_losses(self.output_dir))
        self.lr_chart.clear()
        self.checkpoints.clear()
        self.log_view.clear()
        self.samples.clear()
        if self.config is not None:
            from zitdesk.train.samples import sample_prompts

            self.samples.set_prompts([p for p, _ in sample_prompts(self.config)])
        if self.output_dir:
            self.samples.load_folder(Path(self.output_dir) / "samples")
            self._load_checkpoints_from_disk()
        self.banner.hide()
        self._update_buttons()

    def _load_checkpoints_from_disk(self) -> None:
        name = self.config.save.name if self.config is not None else "lora"
        self.checkpoints.load_folder(self.output_dir, name)

    # -- state --------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        live = self.state in ("running", "paused")
        self.pause_button.setVisible(self.state == "running")
        stopped = self.state in ("cancelled", "interrupted") or (
            self.state == "failed" and not self.retry_preset
        )
        self.resume_button.setVisible(self.state == "paused" or (stopped and bool(self.output_dir)))
        self.resume_button.setText("Resume" if self.state == "paused" else "Continue run")
        self.resume_button.setToolTip(
            "Continue training"
            if self.state == "paused"
            else "Continue this run from its newest checkpoint"
        )
        self.cancel_button.setVisible(live)
        self.try_button.setVisible(self.state == "paused" or bool(self.final_lora))
        self.try_button.setText(
            "Try it in Generate" if self.state == "paused" else "Use in Generate"
        )
        self.try_button.setEnabled(
            bool(self.paused_lora) if self.state == "paused" else bool(self.final_lora)
        )
        self.folder_button.setEnabled(bool(self.output_dir))
        self.back_button.setVisible(True)
        self.status.setText(STATE_LABELS.get(self.state, self.state))

    def set_where(self, where: str, parallel: bool = False, card: int | None = None) -> None:
        """Say the card(s) the run trains on (``"GPUs 0 + 1"``); a data-parallel run cannot
        pause (its Pause button is disabled and says why). ``card``: the GPU number whose
        reading the VRAM figure shows (the run's first card; None = the first card)."""
        self.card = card
        self.where.setText(
            f"on {where}" + (" (data-parallel)" if parallel else "") if where else ""
        )
        self.can_pause = not parallel
        self.pause_button.setEnabled(self.can_pause)
        self.pause_button.setToolTip(PAUSE_TIP if self.can_pause else NO_PAUSE_TIP)

    def log(self, text: str) -> None:
        line = f"{time.strftime('%H:%M:%S')}  {text}"
        self.log_lines.append(line)
        self.log_view.appendPlainText(line)

    def set_snapshot(self, snapshot: Any) -> None:
        """The status bar's memory reading (used when the engine does not send VRAM itself)."""
        gpus = getattr(snapshot, "gpus", ()) or ()
        if gpus:
            card = self.card  # the run's card (#19), else the first
            g = next((r for r in gpus if r.index == card), gpus[0])
            self.vram_total = int(g.total_bytes)
            if not (self.last_step and getattr(self.last_step, "vram_bytes", 0)):
                self.vram_used = int(g.used_bytes)
            self._show_stats()

    # -- events -------------------------------------------------------------------------------
    def on_event(self, ev: Any) -> None:
        """Any engine event of this run's job (other jobs are ignored)."""
        if not self.job_id or ev.job_id != self.job_id:
            return
        handler = {
            JobStarted: self._on_started,
            PhaseChanged: self._on_phase,
            TrainStep: self._on_step,
            SampleReady: self._on_sample,
            CheckpointSaved: self._on_checkpoint,
            Paused: self._on_paused,
            Resumed: self._on_resumed,
            JobWarning: self._on_warning,
            JobFinished: self._on_finished,
            JobCancelled: self._on_cancelled,
            JobFailed: self._on_failed,
        }.get(type(ev))
        if handler is not None:
            handler(ev)

    def _on_started(self, ev: JobStarted) -> None:
        self.state = "running"
        self.phase.setText("Starting…")
        self.log("Started")
        self._update_buttons()

    def _on_phase(self, ev: PhaseChanged) -> None:
        now = time.monotonic()
        if self._phase_t0 is not None:
            name, t0 = self._phase_t0
            took = now - t0
            if name == "sampling":
                self.sample_s = took if self.sample_s == 0 else 0.5 * (self.sample_s + took)
            elif name == "saving":
                self.save_s = took if self.save_s == 0 else 0.5 * (self.save_s + took)
        self._phase_t0 = (ev.phase, now) if ev.phase in ("sampling", "saving") else None
        if ev.phase == "warning":  # older engines sent warnings as a phase
            self._on_warning(JobWarning(ev.job_id, message=ev.detail))
            return
        name = PHASE_NAMES.get(ev.phase, ev.phase.capitalize())
        text = f"{name}: {ev.detail}" if ev.detail else f"{name}…"
        self.phase.setText(text)
        if ev.phase != "caching" or not ev.detail.startswith("Encoding"):
            self.log(text)  # per-item caching progress stays in the phase line only

    def _on_step(self, ev: TrainStep) -> None:
        self.last_step = ev
        self.loss_chart.add_point(ev.step, ev.loss)
        self.lr_chart.add_point(ev.step, ev.lr)
        self.step_label.setText(f"Step {ev.step}/{ev.total}")
        self.progress.setRange(0, max(1, ev.total))
        self.progress.setValue(ev.step)
        vram = int(getattr(ev, "vram_bytes", 0) or 0)
        if vram:
            self.vram_used = vram
        if self.state == "running" and self.phase.text().startswith(("Waiting", "Starting")):
            self.phase.setText("Training…")
        self._show_stats()

    def set_estimate(self, total_s: float, peak_gib: float) -> None:
        """The expected total before the first step arrives (loading and caching included)."""
        self.estimate_text = (
            f"expected ≈ {fmt_duration(total_s)} in total, peak ≈ {peak_gib:.0f} GiB (estimate)"
            if total_s > 0
            else ""
        )
        self._show_stats()

    def budget_bytes(self) -> int:
        cfg = self.config
        budget = float(cfg.memory.vram_budget_gb) if cfg is not None else 0.0
        return int(budget * GIB) if budget > 0 else self.vram_total

    def _show_stats(self) -> None:
        parts = []
        ev = self.last_step
        if ev is not None:
            if ev.it_s > 0:
                parts.append(f"{ev.it_s:.2f} it/s" if ev.it_s >= 1 else f"{1 / ev.it_s:.1f} s/step")
                if self.state == "running":
                    eta = full_eta(ev, self.config, self.sample_s, self.save_s)
                    parts.append(f"ETA {fmt_duration(eta)}")
            parts.append(f"loss {ev.loss:.4f}")
        elif self.estimate_text and self.state in ("running", "idle"):
            parts.append(self.estimate_text)
        if self.vram_used:
            budget = self.budget_bytes()
            parts.append(
                f"VRAM {self.vram_used / GIB:.1f}"
                + (f" / {budget / GIB:.0f} GiB" if budget else " GiB")
            )
        self.stats.setText("  ·  ".join(parts))

    def _on_sample(self, ev: SampleReady) -> None:
        self.samples.add_round(ev.step, list(ev.paths))
        self.log(f"Samples at step {ev.step}: {len(ev.paths)} image(s)")

    def checkpoint_loras(self) -> list[str]:
        return self.checkpoints.loras()

    def _on_checkpoint(self, ev: CheckpointSaved) -> None:
        self.checkpoints.add(ev.step, ev.path, ev.lora_path)
        self.log(f"Checkpoint at step {ev.step}: {Path(ev.lora_path).name}")

    def _on_paused(self, ev: Paused) -> None:
        self.state = "paused"
        self.paused_lora = str(getattr(ev, "lora_path", "") or "")
        self.phase.setText(
            f"Paused at step {ev.step}. The model stays loaded: try the LoRA as it is now in "
            "Generate, then resume."
        )
        self.log(f"Paused at step {ev.step}")
        self._show_stats()
        self._update_buttons()

    def _on_resumed(self, ev: Resumed) -> None:
        self.state = "running"
        self.paused_lora = ""
        self.phase.setText(f"Training (resumed at step {ev.step})…")
        self.log(f"Resumed at step {ev.step}")
        self._update_buttons()

    def _on_warning(self, ev: JobWarning) -> None:
        self.log(f"Warning: {ev.message}")
        self.banner.show_message(ev.message, "warning")

    def _on_finished(self, ev: JobFinished) -> None:
        self.state = "finished"
        self.final_lora = ev.paths[0] if ev.paths else ""
        loss = ev.stats.get("final_loss") if isinstance(ev.stats, dict) else None
        mins = fmt_duration(ev.elapsed_s)
        text = f"Finished in {mins}." + (f" Final loss {loss:.4f}." if loss is not None else "")
        if self.final_lora:
            text += f" LoRA: {Path(self.final_lora).name} (also in the LoRA Library)."
        self.phase.setText(text)
        self.log(text)
        self._update_buttons()

    def _on_cancelled(self, ev: JobCancelled) -> None:
        self.state = "cancelled"
        self.final_lora = ev.paths[0] if ev.paths else ""
        step = self.last_step.step if self.last_step else 0
        text = f"Stopped at step {step}." + (
            f" The LoRA so far is saved: {Path(self.final_lora).name}. Resume continues the run."
            if self.final_lora
            else ""
        )
        self.phase.setText(text)
        self.log(text)
        self._update_buttons()

    def _on_failed(self, ev: JobFailed) -> None:
        self.state = "failed"
        self.log(f"Failed ({ev.kind}): {ev.message}")
        self.phase.setText(ev.message)
        preset = str(ev.retry_hint.get("preset", "")) if ev.kind == "oom" else ""
        self.retry_preset = preset
        if preset:
            self.banner.show_message(
                ev.message + " The last checkpoint is kept.",
                "warning",
                f"Resume with the {preset} preset",
                "lower",
                ev.traceback,
            )
        else:
            self.banner.show_message(ev.message, "error", details=ev.traceback)
        self._update_buttons()

    # -- commands -----------------------------------------------------------------------------
    @Slot()
    def confirm_cancel(self) -> QMessageBox:
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Stop training",
            CANCEL_TEXT,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.button(QMessageBox.StandardButton.Yes).setText("Stop and save")
        box.button(QMessageBox.StandardButton.No).setText("Keep training")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.accepted.connect(self.cancel_requested)
        self._cancel_box = box
        box.open()
        return box

    @Slot()
    def _on_try(self) -> None:
        path = self.paused_lora if self.state == "paused" else self.final_lora
        if path:
            self.try_requested.emit(path)

    @Slot()
    def _on_checkpoint_selection(self) -> None:
        item = self.checkpoints.currentItem()
        self.try_checkpoint_button.setEnabled(
            item is not None and bool(item.data(1, Qt.ItemDataRole.UserRole))
        )

    @Slot()
    def _on_try_checkpoint(self) -> None:
        item = self.checkpoints.currentItem()
        if item is not None and item.data(1, Qt.ItemDataRole.UserRole):
            self.try_requested.emit(str(item.data(1, Qt.ItemDataRole.UserRole)))

    @Slot(QTreeWidgetItem, int)
    def _on_checkpoint_activated(self, item: QTreeWidgetItem, _col: int) -> None:
        if item.data(1, Qt.ItemDataRole.UserRole):
            self.try_requested.emit(str(item.data(1, Qt.ItemDataRole.UserRole)))

    @Slot()
    def _on_folder(self) -> None:
        if self.output_dir:
            self.open_folder_requested.emit(self.output_dir)

    @Slot(str)
    def _on_banner_action(self, key: str) -> None:
        if key == "lower" and self.retry_preset:
            self.resume_lower_requested.emit(self.retry_preset)
