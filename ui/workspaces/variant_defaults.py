"""Generate's model-variant controls: Turbo / Base / De-Turbo defaults, fast Base, variety,
CFG normalisation, LoRA-variant notes and the prompt enhancer.

:class:`VariantControls` is attached to a :class:`~ui.workspaces.generate.GenerateWorkspace`.
It finds the configured model's variant on the pool (:func:`zitdesk.models.variants.
detect_path_variant`, the user's remembered choice first) and, when the variant changes, moves
steps, guidance, shift and CFG normalisation to the new variant's defaults — but only the
fields that still hold the previous variant's default: what the user set by hand is kept.
The variant chooser remembers a choice per model (``AppSettings.model_variants``).

It adds its fields to every request through the form's ``request_hooks`` and reads them back
through ``parameter_hooks`` ("reuse parameters", dropped PNGs). "Fast Base" puts the user's
distillation LoRA into the request (not into the visible stack) at its recommended weight.

"Enhance" queues an :class:`~zitdesk.engine.enhance.EnhanceRequest` on the one engine queue and
shows the proposal in :class:`EnhanceDialog`; nothing changes until the user accepts it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from ui.tasks import TaskSignals, run_task
from zitdesk.models import variants as mv

log = logging.getLogger(__name__)

AUTO = ""  # the chooser's "detect" entry
STEPS_TIPS = {
    mv.TURBO: "Z-Image Turbo is distilled for 8 steps; more rarely helps.",
    mv.BASE: "Z-Image (Base) wants 28–50 steps with CFG (guidance 3–5) and a negative prompt.",
    mv.DETURBO: "De-Turbo is de-distilled: about 20–30 steps with a little CFG.",
    "fast": "Fast Base: the distillation LoRA is made for 4 or 8 steps without CFG.",
}


def _detect(model_path: str, choices: dict[str, str]) -> mv.VariantGuess:
    return mv.detect_path_variant(model_path, choices)


def _lora_variant(path: str) -> mv.VariantGuess:
    from zitdesk.st_header import read_header

    try:
        return mv.lora_variant(read_header(path).metadata)
    except Exception:  # noqa: BLE001 - an unreadable LoRA is reported by the stack itself
        return mv.VariantGuess()


class EnhanceDialog(QDialog):
    """The enhancer's proposal beside the prompt it came from; editable; Use / Discard."""

    def __init__(self, original: str, proposal: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Enhanced prompt")
        self.original = QPlainTextEdit(original)
        self.original.setReadOnly(True)
        self.original.setFixedHeight(60)
        self.proposal = QPlainTextEdit(proposal)  # plain text: model output is never markup
        buttons = QDialogButtonBox()
        self.use_button = buttons.addButton(
            "Use this prompt", QDialogButtonBox.ButtonRole.AcceptRole
        )
        buttons.addButton("Discard", QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Your prompt"))
        lay.addWidget(self.original)
        lay.addWidget(QLabel("Proposal (edit it before using it if you like)"))
        lay.addWidget(self.proposal, 1)
        lay.addWidget(buttons)
        self.resize(560, 360)

    def text(self) -> str:
        return self.proposal.toPlainText().strip()


class VariantPanel(QWidget):
    """The widgets (in the Generate form, under the image settings)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.chooser = QComboBox()
        self.chooser.addItem("Detect", AUTO)
        for v in mv.VARIANTS:
            self.chooser.addItem(mv.LABELS[v], v)
        self.chooser.setToolTip(
            "Which Z-Image this model is. Turbo, Base and De-Turbo have the same shapes, so when "
            "the files do not say, choose it here; the choice is remembered for this model."
        )
        self.detected = QLabel("")
        self.detected.setTextFormat(Qt.TextFormat.PlainText)  # names files
        self.detected.setWordWrap(True)
        self.detected.setObjectName("hint")
        self.variety = QLabeledDoubleSlider(Qt.Orientation.Horizontal)  # 0 = off
        self.variety.setRange(0.0, mv_max_variety())
        self.variety.setSingleStep(0.05)
        self.variety.setDecimals(2)
        self.variety.setValue(0.0)
        self.variety.setToolTip(
            "Turbo makes different seeds look alike. Variety adds seeded noise to the prompt's "
            "embedding so each seed reads the prompt a little differently (0.1–0.4 is plenty). "
            "Recorded in the PNG, so the image can be made again."
        )
        self.cfg_norm = QCheckBox("CFG normalisation")
        self.cfg_norm.setToolTip(
            "With guidance above 0 (Base), keep the guided prediction no stronger than the "
            "prompt's own; tames over-saturated results at high CFG."
        )
        self.fast = QCheckBox("Fast Base (distillation LoRA)")
        self.fast.setToolTip(
            "For Z-Image (Base): apply a distillation LoRA such as alibaba-pai's "
            "Z-Image-Fun-Lora-Distill and render in 4 or 8 steps without CFG."
        )
        self.fast_lora = QLineEdit()
        self.fast_lora.setPlaceholderText("Distillation LoRA file (.safetensors)")
        self.fast_browse = QPushButton("…")
        self.fast_browse.setFixedWidth(32)
        self.fast_weight = QDoubleSpinBox()
        self.fast_weight.setRange(0.0, 4.0)
        self.fast_weight.setSingleStep(0.05)
        self.fast_weight.setToolTip("The strength the LoRA's authors recommend (usually 1).")
        self.fast_steps = QComboBox()
        for n in mv.FAST_BASE_STEPS:
            self.fast_steps.addItem(f"{n} steps", n)
        fast_row = QHBoxLayout()
        fast_row.setContentsMargins(0, 0, 0, 0)
        fast_row.addWidget(self.fast_lora, 1)
        fast_row.addWidget(self.fast_browse)
        fast_row.addWidget(self.fast_weight)
        fast_row.addWidget(self.fast_steps)
        self.fast_box = QWidget()
        self.fast_box.setLayout(fast_row)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Model variant", self.chooser)
        form.addRow("", self.detected)
        form.addRow("Variety", self.variety)
        form.addRow("", self.cfg_norm)
        form.addRow("", self.fast)
        form.addRow("", self.fast_box)


def mv_max_variety() -> float:
    from zitdesk.engine.requests import MAX_VARIETY

    return MAX_VARIETY


class VariantControls(QObject):
    """Variant detection + defaults, request fields, LoRA notes and Enhance for one workspace."""

    variant_changed = Signal(str)  # turbo | base | deturbo
    enhance_ready = Signal(object)  # EnhanceDialog (shown, not modal)

    def __init__(self, workspace: Any) -> None:
        super().__init__(workspace)
        self.workspace = workspace
        self.form = workspace.form
        self.settings = workspace.settings
        self.panel = VariantPanel()
        self.guess: mv.VariantGuess | None = None
        self.variant = mv.TURBO  # what the form's defaults are set for
        self._fast_on = False
        self._model_path = ""
        self._lora_checked: dict[str, mv.VariantGuess] = {}
        self._noted: set[tuple[str, str]] = set()
        self._enhance_job = ""
        self.dialog: EnhanceDialog | None = None
        self.status_label = QLabel("")
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self._tasks = TaskSignals(self)
        self._tasks.succeeded.connect(self._on_task)
        self._tasks.failed.connect(self._on_task_failed)

        p = self.panel
        p.fast_lora.setText(self.settings.fast_base_lora)
        p.fast_weight.setValue(self.settings.fast_base_weight)
        idx = p.fast_steps.findData(self.settings.fast_base_steps)
        p.fast_steps.setCurrentIndex(max(idx, 0))
        p.chooser.activated.connect(self._on_chosen)
        p.fast.toggled.connect(self._on_fast_toggled)
        p.fast_steps.activated.connect(lambda _i: self._on_fast_toggled(p.fast.isChecked()))
        p.fast_browse.clicked.connect(self._browse_fast)
        p.fast_lora.textChanged.connect(lambda _t: self._on_fast_toggled(p.fast.isChecked()))
        for sig in (p.variety.valueChanged, p.cfg_norm.toggled, p.fast.toggled):
            sig.connect(self.form._emit_changed)
        self.form.guidance.valueChanged.connect(self._sync_negative)
        self.form.loras.changed.connect(self.check_loras)
        self.form.request_hooks.append(self.extend_request)
        self.form.parameter_hooks.append(self.apply_parameters)
        body = self.form.widget().layout()
        body.insertWidget(max(body.indexOf(self.form.loras) - 1, 0), p)
        self.form.setMinimumWidth(  # the form never scrolls sideways (as GenerateFormWidget)
            max(
                self.form.minimumWidth(),
                self.form.widget().minimumSizeHint().width()
                + self.form.verticalScrollBar().sizeHint().width(),
            )
        )
        self.enhance_button = QPushButton("Enhance")
        self.enhance_button.setToolTip(
            "Rewrite a short prompt into a detailed one with the loaded text encoder; you see "
            "the proposal before anything changes."
        )
        self.enhance_button.clicked.connect(self.enhance)
        self._place_enhance_button()
        c = workspace.controller
        c.job_ended.connect(self._on_job_ended)
        self._sync_negative()
        self._sync_fast_box()
        self.model_changed()

    # -- variant ----------------------------------------------------------------------------------
    def _place_enhance_button(self) -> None:
        prompt = self.form.prompt
        top = prompt.layout()
        for i in range(top.count()):
            row = top.itemAt(i).layout()
            if row is not None and row.indexOf(prompt.structure_button) >= 0:
                row.insertWidget(row.indexOf(prompt.structure_button), self.enhance_button)
                return
        top.addWidget(self.enhance_button)

    @Slot()
    def model_changed(self) -> None:
        """The configured model changed (or the app started): detect its variant on the pool."""
        self._model_path = self.settings.model_path
        if not self._model_path:
            self._set_guess(mv.VariantGuess())
            return
        run_task(
            self._tasks, ("detect", self._model_path), _detect, self._model_path,
            dict(self.settings.model_variants),
        )  # fmt: skip

    def _set_guess(self, guess: mv.VariantGuess) -> None:
        self.guess = guess
        p = self.panel
        chosen = guess.variant if guess.source == "choice" else AUTO
        p.chooser.setCurrentIndex(max(p.chooser.findData(chosen), 0))
        p.detected.setText(guess.describe() if self._model_path else "")
        self.status_label.setText(mv.SHORT[guess.variant] + ("" if guess.known else "?"))
        self.status_label.setToolTip(guess.describe())
        self._sync_fast_box()
        self.apply_variant(guess.variant)

    def apply_variant(self, variant: str, fast: bool | None = None) -> list[str]:
        """Switch the form to ``variant``'s defaults, keeping every field the user changed from
        the previous variant's default. Returns the names of the fields that were set."""
        fast = self.fast_active(variant) if fast is None else fast
        old = mv.defaults_for(self.variant, self._fast_on)
        new = mv.defaults_for(variant, fast)
        if fast:
            steps = self.panel.fast_steps.currentData()
            new = dataclasses.replace(new, steps=int(steps or new.steps))
        f = self.form
        changed: list[str] = []
        if f.steps.value() == old.steps and old.steps != new.steps:
            f.steps.setValue(new.steps)
            changed.append("steps")
        if abs(f.guidance.value() - old.guidance) < 1e-9 and old.guidance != new.guidance:
            f.guidance.setValue(new.guidance)
            changed.append("guidance")
        if abs(f.shift.value() - old.shift) < 1e-9 and old.shift != new.shift:
            f.shift.setValue(new.shift)
            changed.append("shift")
        if self.panel.cfg_norm.isChecked() == old.cfg_normalization:
            self.panel.cfg_norm.setChecked(new.cfg_normalization)
        was = self.variant
        self.variant, self._fast_on = variant, fast
        f.steps.setToolTip(STEPS_TIPS[variant] if not fast else STEPS_TIPS["fast"])
        self._sync_negative()
        if was != variant or changed:
            kept = [n for n in ("steps", "guidance", "shift") if n not in changed]
            text = f"{mv.LABELS[variant]}{' (fast)' if fast else ''}: "
            text += f"{f.steps.value()} steps, guidance {f.guidance.value():g}, shift {f.shift.value():g}"
            if was != variant and kept and changed:
                text += f" (your {', '.join(kept)} kept)"
            self.workspace.status_message.emit(text + ".")
            self.variant_changed.emit(variant)
            self.check_loras()
        return changed

    @Slot(int)
    def _on_chosen(self, _index: int) -> None:
        value = self.panel.chooser.currentData()
        path = self.settings.model_path
        if not path:
            return
        if value == AUTO:
            self.settings.model_variants.pop(mv.choice_key(path), None)
        else:
            mv.remember_choice(self.settings.model_variants, path, value)
        self.form._emit_changed()  # the settings saver writes the choice
        self.model_changed()

    def fast_active(self, variant: str | None = None) -> bool:
        p = self.panel
        return (
            (variant or self.variant) == mv.BASE
            and p.fast.isChecked()
            and bool(p.fast_lora.text().strip())
        )

    @Slot(bool)
    def _on_fast_toggled(self, _on: bool) -> None:
        self._sync_fast_box()
        self.apply_variant(self.variant)

    def _sync_fast_box(self) -> None:
        p = self.panel
        base = self.variant == mv.BASE or (self.guess is not None and self.guess.variant == mv.BASE)
        p.fast.setVisible(base)
        p.fast_box.setVisible(base and p.fast.isChecked())

    @Slot()
    def _browse_fast(self) -> None:
        start = self.panel.fast_lora.text() or self.settings.last_lora_dir
        path, _ = QFileDialog.getOpenFileName(
            self.panel, "Distillation LoRA for Base", start, "LoRA (*.safetensors)"
        )
        if path:
            self.panel.fast_lora.setText(path)
            self._on_fast_toggled(self.panel.fast.isChecked())

    @Slot()
    def _sync_negative(self, *_args) -> None:
        """The negative prompt is used only with CFG (guidance above 0): Base's defaults turn it on."""
        on = self.form.guidance.value() > 0
        self.form.negative.setEnabled(on)
        self.form.negative.setToolTip(
            "" if on else "Turbo runs without CFG: raise guidance above 0 to use a negative prompt."
        )

    # -- request fields ------------------------------------------------------------------------
    def extend_request(self, request: Any) -> Any:
        """The form's request plus variety, CFG normalisation, variant and the fast-Base LoRA."""
        p = self.panel
        changes: dict[str, Any] = {
            "variety": float(p.variety.value()),
            "cfg_normalization": p.cfg_norm.isChecked() and request.guidance > 0,
            "variant": self.variant,
        }
        if self.fast_active():
            from zitdesk.engine.requests import LoraSpec

            path = p.fast_lora.text().strip()
            if all(lo.path != path for lo in request.loras):
                changes["loras"] = (*request.loras, LoraSpec(path, float(p.fast_weight.value())))
        return dataclasses.replace(request, **changes)

    def apply_parameters(self, data: Mapping[str, Any]) -> list[str]:
        applied = []
        variety = data.get("variety")
        if isinstance(variety, (int, float)) and not isinstance(variety, bool):
            self.panel.variety.setValue(float(variety))
            if variety > 0:
                applied.append("variety")
        if isinstance(data.get("cfg_normalization"), bool):
            self.panel.cfg_norm.setChecked(data["cfg_normalization"])
        return applied

    def store_settings(self, s: Any) -> None:
        p = self.panel
        s.fast_base_lora = p.fast_lora.text().strip()
        s.fast_base_weight = float(p.fast_weight.value())
        s.fast_base_steps = int(p.fast_steps.currentData() or 8)

    # -- LoRA notes ----------------------------------------------------------------------------
    @Slot()
    def check_loras(self) -> None:
        """A note (never a block) for each LoRA in the stack made for another variant."""
        for entry in list(self.form.loras.model.entries):
            if not entry.enabled:
                continue
            got = self._lora_checked.get(entry.path)
            if got is None:
                run_task(self._tasks, ("lora", entry.path), _lora_variant, entry.path)
            else:
                self._note(entry.path, got)

    def _note(self, path: str, guess: mv.VariantGuess) -> None:
        key = (path, self.variant)
        if key in self._noted:
            return
        text = mv.variant_note(guess, self.variant, Path(path).name)
        if text:
            self._noted.add(key)
            self.workspace.show_message(text, "info")

    # -- enhancer ------------------------------------------------------------------------------
    @Slot()
    def enhance(self) -> str:
        """Queue an enhance job for the current prompt; returns its job id ("" if refused)."""
        from zitdesk.engine.enhance import EnhanceRequest
        from zitdesk.errors import RequestError

        if not self.settings.model_configured:
            self.workspace.show_message(
                "The prompt enhancer uses the model's text encoder: set up a model first.",
                "warning",
            )
            return ""
        request = EnhanceRequest(
            self.form.prompt.text(),
            model_path=self.settings.model_path,
            memory_mode=self.form.current_memory_mode(),
        )
        try:
            request.validate()
        except RequestError as exc:
            self.workspace.show_message(str(exc), "warning")
            return ""
        job = self.workspace.controller.submit(request, kind="enhance")
        self._enhance_job = job.job_id
        self.enhance_button.setEnabled(False)
        self.workspace.status_message.emit("Enhancing the prompt…")
        return job.job_id

    @Slot(object)
    def _on_job_ended(self, job: Any) -> None:
        if job.job_id != self._enhance_job:
            return
        self._enhance_job = ""
        self.enhance_button.setEnabled(True)
        ev = job.result
        if job.state == "finished":
            text = str(getattr(ev, "stats", {}).get("text", ""))
            dlg = EnhanceDialog(job.request.prompt, text, self.workspace)
            dlg.accepted.connect(self._on_enhance_accepted)
            dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self.dialog = dlg
            dlg.open()
            self.workspace.status_message.emit("A detailed prompt is ready: use it or discard it.")
            self.enhance_ready.emit(dlg)
        elif job.state == "failed":
            message = getattr(ev, "message", "") or "The prompt could not be enhanced."
            self.workspace.show_message(message, "warning", details=getattr(ev, "traceback", ""))
            self.workspace.status_message.emit("The prompt was not enhanced.")
        else:
            self.workspace.status_message.emit("Enhancing was cancelled.")

    @Slot()
    def _on_enhance_accepted(self) -> None:
        if self.dialog is not None:
            self.form.prompt.set_text(self.dialog.text())
            self.dialog = None

    # -- pool results --------------------------------------------------------------------------
    @Slot(object, object)
    def _on_task(self, tag: object, result: object) -> None:
        kind, key = tag if isinstance(tag, tuple) else ("", "")
        if kind == "detect" and key == self._model_path and isinstance(result, mv.VariantGuess):
            self._set_guess(result)
        elif kind == "lora" and isinstance(result, mv.VariantGuess):
            self._lora_checked[str(key)] = result
            self._note(str(key), result)

    @Slot(object, object)
    def _on_task_failed(self, tag: object, message: object) -> None:
        log.warning("variant task %s failed: %s", tag, message)
