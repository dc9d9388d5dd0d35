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

from PySide6.QtCore import QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFrame,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ui.engine_host import EngineController, Job
from ui.thumbnails import ThumbnailCache
from ui.train.gpu_choice import apply_choice, parse_choice
from ui.train.overview import TrainOverview, known_datasets, tier_rows
from ui.train.run_view import RunView
from zitdesk.engine.lanes import where_label

__all__ = ["TrainOverview", "TrainWorkspace", "known_datasets", "tier_rows", "run_status"]

log = logging.getLogger(__name__)

#: Engine phases before the first step (the run is getting ready, not training yet).
PREPARING_PHASES = ("loading", "data", "caching", "resuming")


def run_status(stage: str, name: str, step: int = 0) -> str:
    """The status bar's sentence for a live run in ``stage`` (queued, preparing, training,
    paused; the ends are said by ``_on_job_ended``)."""
    at = f" at step {step}" if step else ""
    return {
        "queued": f"Training queued: “{name}” starts when the GPU is free.",
        "preparing": f"Preparing “{name}”: loading the model and caching the dataset…",
        "training": f"Training “{name}”…",
        "paused": f"Training “{name}” is paused{at}; Resume continues it.",
    }.get(stage, f"Training “{name}”…")


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
        self._stage = ""  # the live run's stage last said in the status bar
        self.live_spec: Any = None
        self.wizard: Any = None
        self.overview = TrainOverview()
        self._cards: tuple[tuple[int, str], ...] = ()  # the cards the "Train on" combo lists
        self.overview.train_on.select(str(getattr(settings, "train_gpus", "") or ""))
        self.overview.train_on.choice_changed.connect(self._on_train_on)
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
        """The reading of the card runs train on: the first of the "Train on" choice, else the
        first card (None without a GPU)."""
        snap = self.snapshot
        gpus = getattr(snap, "gpus", ()) if snap is not None else ()
        chosen = parse_choice(self.overview.train_on.choice())
        for g in gpus:
            if chosen and g.index == chosen[0]:
                return g
        return gpus[0] if gpus else None

    def set_snapshot(self, snapshot: Any) -> None:
        first = self.snapshot is None
        self.snapshot = snapshot
        self.run_view.set_snapshot(snapshot)
        gpus = tuple(getattr(snapshot, "gpus", ()) or ())
        cards = tuple((g.index, g.name) for g in gpus)
        if cards != self._cards:  # the first reading (or the cards changed): the combo
            self._cards = cards
            self.overview.set_gpus(gpus)
        if first and gpus:
            self.refresh()

    @Slot(str)
    def _on_train_on(self, value: str) -> None:
        """A "Train on" pick: kept in the settings; the tiers are for the chosen card."""
        s = self.settings
        if s is not None and hasattr(s, "train_gpus") and s.train_gpus != value:
            s.train_gpus = value
            try:
                from zitdesk.settings import AppSettings, save_settings

                if isinstance(s, AppSettings):
                    save_settings(s)
            except OSError as exc:  # the choice still holds for this session
                log.warning("could not save the settings: %s", exc)
        if self.snapshot is not None:
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
        if self.overview.train_on.isVisibleTo(self.overview):  # several cards: plan for the pick
            gpu = self.gpu_info() or gpu
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
        if not spec.gpus and not spec.processes:  # the "Train on" pick (several GPUs)
            spec = apply_choice(spec, self.overview.train_on.choice())
        job = self.controller.submit(spec)
        self.live_job, self.live_spec = job, spec
        self.run_view.start_run(job.job_id, spec.config, title, resumed=bool(spec.resume))
        self.run_view.set_where(
            where_label(spec),
            parallel=bool(spec.data_parallel),
            card=int(spec.gpus[0]) if spec.gpus else None,
        )
        est = None if spec.data_parallel else self.estimate(spec.config)  # (one card's figures)
        if est is not None and not spec.resume:
            self.run_view.set_estimate(est.total_s, est.peak_gib)
        started = job.state == "running"
        if not started:
            ahead = self.controller.jobs_ahead(job)
            self.run_view.phase.setText(
                f"Queued: {ahead} job(s) ahead of it; it starts when the GPU is free."
            )
        self.show_run_view()
        self._say_stage("preparing" if started else "queued")
        return job

    def _say_stage(self, stage: str, step: int = 0) -> None:
        """Say the live run's stage in the status bar when it changes."""
        if stage == self._stage or self.live_spec is None:
            return
        self._stage = stage
        self.status_message.emit(run_status(stage, self.live_spec.config.save.name, step))

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
        if self.live_job is not None and self.run_view.can_pause:
            self.controller.pause(self.live_job.job_id)
            self.run_view.phase.setText("Pausing after this step…")
            self.run_view.pause_button.setEnabled(False)

    @Slot()
    def resume(self) -> None:
        """Resume the paused run, or continue a stopped one from its newest checkpoint."""
        if self.live_job is not None and self.live_job.state == "paused":
            self.controller.resume(self.live_job.job_id)
            self.run_view.pause_button.setEnabled(self.run_view.can_pause)
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
            kind = type(ev).__name__
            if kind == "Resumed":
                self.run_view.pause_button.setEnabled(self.run_view.can_pause)
            if kind == "JobStarted":
                self._say_stage("preparing")
            elif kind == "PhaseChanged" and getattr(ev, "phase", "") in PREPARING_PHASES:
                self._say_stage("preparing")
            elif kind in ("TrainStep", "Resumed") or (
                kind == "PhaseChanged" and getattr(ev, "phase", "") == "training"
            ):
                self._say_stage("training")
            elif kind == "Paused":
                self._say_stage("paused", int(getattr(ev, "step", 0) or 0))

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
            kept = bool(getattr(ev, "paths", ()))
            self.status_message.emit(
                f"Training “{name}” stopped" + ("; its LoRA so far is saved." if kept else ".")
            )
        self._stage = job.state
        self.run_view.pause_button.setEnabled(self.run_view.can_pause)
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
