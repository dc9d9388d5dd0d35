"""The New-run wizard: three short pages that end in a validated :class:`TrainConfig`.

``NewRunWizard(parent, datasets, gpu_info, *, model_path=None, runs_root=None)``:

* ``datasets``: the app's dataset folders (:func:`app_datasets` lists what the Datasets tab
  knows: the folders under ``user data/datasets`` and the last one it opened); a folder can be
  added with "Folder…".
* ``gpu_info``: the card to plan for — a :class:`zitdesk.gpu.MemorySnapshot`, a ``GpuReading``, a
  :class:`zitdesk.train.estimate.GpuSpec`, ``(name, vram_gib)``, ``None`` (no GPU) or
  :data:`DETECT` (the default: read NVML now).
* ``model_path``: the model to preselect; default: the Generate tab's model (``AppSettings``).

Pages: **Dataset** (image count, captions, the Datasets pre-flight verdict run on the thread pool,
"Fix in Datasets…" → ``open_dataset(path)``) → **What it learns** (character / style / concept set
rank, caption dropout, steps, timestep mode and sample prompts — see :data:`GOALS`; the trigger
word, with a warning when captions already hold it) → **Hardware and model** (every VRAM preset
with its expected step time, peak memory and total time on this card from
:mod:`zitdesk.train.estimate`, the detected tier preselected; steps; the model; the training
adapter, checked like ``zitdesk lora inspect``; a strong, non-blocking warning for Turbo without
one; the run name and output folder).

Start emits ``config_ready(TrainConfig)`` once ``TrainConfig.validate()`` passes (its sentence is
shown otherwise). "Full settings…" opens :class:`ui.train.settings_form.TrainSettingsDialog` on
the wizard's values; Start there emits the wizard's ``config_ready`` too and closes both.

Modules: this one holds the wizard (shared state, background checks through :mod:`ui.tasks`,
the config it builds); :mod:`ui.train.wizard_pages` the three pages; :mod:`ui.train.wizard_data`
the widget-free parts (goal defaults, texts, the dataset survey and adapter/model checks).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QWidget, QWizard

from ui.tasks import TaskSignals, run_task
from ui.theme import OK, WARN
from ui.train.wizard_data import (
    DATASETS_LAST_KEY,
    DETECT,
    GOALS,
    PAGE_DATASET,
    PAGE_GOAL,
    PAGE_HARDWARE,
    Goal,
    Survey,
    _default_runs_root,
    app_datasets,
    captions_with_trigger,
    check_adapter,
    check_model,
    check_report,
    detect_gpu,
    guess_variant,
    runs_root,
    safe_name,
    scan_survey,
    survey_folder,
)
from ui.train.wizard_hardware import HardwarePage
from ui.train.wizard_pages import DatasetPage, GoalPage
from zitdesk.errors import RequestError
from zitdesk.train.config import TrainConfig
from zitdesk.train.estimate import Estimate, estimate_tiers, gpu_spec
from zitdesk.train.presets import DEFAULT_PRESET, PRESETS, apply_preset, preset_for_vram

log = logging.getLogger(__name__)

__all__ = [  # the wizard's public names (the helpers live in wizard_data / wizard_pages)
    "DATASETS_LAST_KEY",
    "DETECT",
    "GOALS",
    "PAGE_DATASET",
    "PAGE_GOAL",
    "PAGE_HARDWARE",
    "Goal",
    "NewRunWizard",
    "Survey",
    "app_datasets",
    "captions_with_trigger",
    "check_adapter",
    "check_model",
    "check_report",
    "scan_survey",
    "guess_variant",
    "runs_root",
    "survey_folder",
]

# --------------------------------------------------------------------------------------------
# The wizard
# --------------------------------------------------------------------------------------------


class NewRunWizard(QWizard):
    """See the module doc."""

    config_ready = Signal(object)  # a validated TrainConfig
    open_dataset = Signal(str)  # a dataset folder to fix in the Datasets tab

    def __init__(
        self,
        parent: QWidget | None = None,
        datasets: list[Path] | None = None,
        gpu_info: Any = DETECT,
        *,
        model_path: str | None = None,
        runs_root: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("New training run")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.HaveCustomButton1, True)
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage, True)
        self.setButtonText(QWizard.WizardButton.CustomButton1, "Full settings…")
        self.setButtonText(QWizard.WizardButton.FinishButton, "Start training")
        self.button(QWizard.WizardButton.CustomButton1).setToolTip(
            "Every training setting as a form, with load/save of the .toml that 'zitdesk train' "
            "reads"
        )
        self.resize(1040, 700)

        self.gpu = gpu_spec(detect_gpu() if gpu_info == DETECT else gpu_info)
        self.detected_preset = preset_for_vram(self.gpu.vram_gib) if self.gpu else DEFAULT_PRESET
        self.runs_root = Path(runs_root) if runs_root else _default_runs_root()
        self.survey: Survey | None = None
        self.checking = False  # the pre-flight check of the current folder is running
        self.check_error = ""
        self.adapter_state = "none"  # none | unchecked | checking | ok | refused
        self.adapter_checked_for = ""
        self.adapter_message = ""
        self.model_message = ""
        self.result_config: TrainConfig | None = None
        self.settings_dialog = None
        self.last_goal_steps = GOALS["character"].steps
        self._signals = TaskSignals(self)
        self._signals.succeeded.connect(self._on_task_done)
        self._signals.failed.connect(self._on_task_failed)
        self._survey_gen = 0

        self.dataset_page = DatasetPage(self)
        self.goal_page = GoalPage(self)
        self.hardware_page = HardwarePage(self)
        self.setPage(PAGE_DATASET, self.dataset_page)
        self.setPage(PAGE_GOAL, self.goal_page)
        self.setPage(PAGE_HARDWARE, self.hardware_page)
        self.hardware_page.set_preset(self.detected_preset)

        if model_path is None:
            from zitdesk.settings import load_settings

            model_path = load_settings()[0].model_path
        self.hardware_page.model_edit.setText(model_path or "")
        if model_path:
            self.hardware_page._on_model()

        self.customButtonClicked.connect(self._on_custom_button)
        for p in datasets if datasets is not None else app_datasets():
            self.dataset_page.add_dataset(Path(p))

    # -- background work --------------------------------------------------------------------
    def start_survey(self, folder: str) -> None:
        """Scan ``folder`` (fast), then run the pre-flight check (may take a while: it hashes
        every image); Next is allowed as soon as the scan shows trainable images."""
        self._survey_gen += 1
        self.survey = None
        self.checking = False
        self.check_error = ""
        run_task(self._signals, ("survey", self._survey_gen, folder), scan_survey, folder)

    def _start_check(self, folder: str) -> None:
        res = tuple(PRESETS[self.hardware_page.preset].changes["data"]["resolutions"])
        self.checking = True
        run_task(self._signals, ("check", self._survey_gen, folder), check_report, folder, res)

    def start_adapter_check(self, path: str) -> None:
        if not path:
            self.adapter_state = "none"
            self.adapter_checked_for = ""
            self.hardware_page.adapter_status.setText("")
            self.hardware_page.update_turbo_warning()
            self.hardware_page.completeChanged.emit()
            return
        if path == self.adapter_checked_for and self.adapter_state in ("ok", "refused", "checking"):
            return
        self.adapter_state = "checking"
        self.adapter_checked_for = path
        self.hardware_page.adapter_status.setText("Checking the adapter…")
        self.hardware_page.adapter_status.setVisible(True)
        self.hardware_page.completeChanged.emit()
        run_task(self._signals, ("adapter", path), check_adapter, path)

    def start_model_check(self, path: str) -> None:
        if not path:
            self.hardware_page.model_status.setText("")
            return
        self.hardware_page.model_status.setText("Checking the model…")
        run_task(self._signals, ("model", path), check_model, path)

    @Slot(object, object)
    def _on_task_done(self, tag: Any, result: Any) -> None:
        kind = tag[0]
        if kind in ("survey", "check"):
            if tag[1] != self._survey_gen:
                return  # a newer folder was chosen meanwhile
            if kind == "survey":
                self.survey = result
                if not result.error and result.images:
                    self._start_check(result.folder)
            elif self.survey is not None:
                self.checking = False
                self.survey = dataclasses.replace(self.survey, report=result)
            self.dataset_page.show_survey(self.survey)
            self.goal_page.update_trigger_warning()
            self.hardware_page.update_estimates()
        elif kind == "adapter":
            if tag[1] != self.hardware_page.adapter_edit.text().strip():
                return
            ok, message = result
            self.adapter_state = "ok" if ok else "refused"
            self.adapter_message = message
            self.hardware_page.show_adapter(ok, message)
        elif kind == "model":
            if tag[1] != self.hardware_page.model_edit.text().strip():
                return
            ok, message = result
            self.model_message = message
            hp = self.hardware_page
            hp.model_status.setText(("✓ " if ok else "⚠ ") + message)
            hp.model_status.setStyleSheet(f"color: {OK if ok else WARN};")

    @Slot(object, object)
    def _on_task_failed(self, tag: Any, message: Any) -> None:
        kind = tag[0]
        if kind == "survey" and tag[1] == self._survey_gen:
            self.survey = Survey(tag[2], error=f"The dataset could not be read: {message}")
            self.dataset_page.show_survey(self.survey)
        elif kind == "check" and tag[1] == self._survey_gen:
            self.checking = False
            self.check_error = f"The pre-flight check failed: {message}"
            if self.survey is not None:
                self.dataset_page.show_survey(self.survey)
        elif kind == "adapter" and tag[1] == self.hardware_page.adapter_edit.text().strip():
            self.adapter_state = "refused"
            self.adapter_message = f"The adapter could not be read: {message}"
            self.hardware_page.show_adapter(False, self.adapter_message)
        elif kind == "model":
            self.hardware_page.model_status.setText(f"⚠ {message}")

    # -- derived values -----------------------------------------------------------------------
    def goal_changed(self) -> None:
        if not hasattr(self, "hardware_page"):
            return
        hp = self.hardware_page
        steps = self.goal_page.goal.steps
        if hp.steps.value() == self.last_goal_steps:
            hp.steps.setValue(steps)
        self.last_goal_steps = steps
        hp.update_estimates()

    def batch(self) -> int:
        return 1

    def entries(self) -> int:
        s = self.survey
        if not s or not s.buckets:
            return 0
        res = PRESETS[self.hardware_page.preset].changes["data"]["resolutions"]
        return len(s.buckets.get(tuple(sorted(res)), []))

    def card_text(self) -> str:
        if self.gpu is None:
            return (
                f"No NVIDIA GPU found. The {PRESETS[self.detected_preset].label} preset is "
                "selected; pick the one for the card you will train on."
            )
        return (
            f"Your GPU: {self.gpu.name}, {self.gpu.vram_gib:.0f} GB → the "
            f"{PRESETS[self.detected_preset].label} preset is selected."
        )

    def estimates(self) -> dict[str, Estimate]:
        s = self.survey
        buckets_for = None
        images = None
        if s and s.buckets and s.images:

            def buckets_for(res: tuple[int, ...]) -> list[tuple[int, int]] | None:
                return s.buckets.get(tuple(sorted(res))) or None

            images = s.images
        return estimate_tiers(self.draft_config(), self.gpu, buckets_for, images)

    def draft_config(self) -> TrainConfig:
        """The wizard's choices as a config (not validated)."""
        hp, gp = self.hardware_page, self.goal_page
        g = gp.goal
        cfg = apply_preset(TrainConfig(), hp.preset)
        name = safe_name(hp.name_edit.text() or Path(self.dataset_page.folder or "lora").name)
        return cfg.with_changes(
            model={
                "path": hp.model_edit.text().strip(),
                "variant": hp.variant_key,
                "training_adapter": hp.adapter_edit.text().strip(),
            },
            data={
                "folder": self.dataset_page.folder,
                "trigger": gp.trigger.text().strip(),
                "caption_dropout": g.caption_dropout,
            },
            lora={"rank": g.rank, "alpha": float(g.rank)},
            optim={"steps": hp.steps.value()},
            timesteps={"mode": g.timestep_mode},
            save={"output_dir": hp.output_edit.text().strip(), "name": name},
            sample={"prompts": gp.sample_prompts()},
        )

    # -- finishing ----------------------------------------------------------------------------
    def accept(self) -> None:
        cfg = self.result_config
        if cfg is None:  # accept() without the last page's validatePage (not through Finish)
            try:
                cfg = self.draft_config().validate()
            except RequestError as exc:
                self.hardware_page.error_label.setText(str(exc))
                return
        self.config_ready.emit(cfg)
        super().accept()

    @Slot(int)
    def _on_custom_button(self, which: int) -> None:
        if which == QWizard.WizardButton.CustomButton1.value:
            self.open_full_settings()

    def open_full_settings(self):
        from ui.train.settings_form import TrainSettingsDialog

        dlg = TrainSettingsDialog(self.draft_config(), self)
        dlg.config_ready.connect(self._on_settings_ready)
        self.settings_dialog = dlg
        dlg.open()
        return dlg

    @Slot(object)
    def _on_settings_ready(self, cfg: TrainConfig) -> None:
        self.result_config = cfg
        self.config_ready.emit(cfg)
        QWizard.accept(self)
