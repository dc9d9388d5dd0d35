"""The Generate form: prompt, size, steps, seed, image count, memory mode, LoRAs, advanced options.

It turns its state into a frozen :class:`GenerateRequest` (``build_request``) and back
(``apply_parameters``, for "reuse all parameters" and dropped PNGs). It never talks to the engine.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QCollapsible

from ui.widgets.lora_stack import LoraStackWidget
from ui.widgets.prompt_editor import PromptEditorWidget
from ui.widgets.seed_widget import SeedWidget
from ui.widgets.size_picker import SizePickerWidget
from zitdesk.engine.requests import TOKEN_BUDGET, GenerateRequest, LoraSpec, MemoryMode
from zitdesk.settings import AppSettings


def _title(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("sectionTitle")
    return label


MEMORY_TIP = "Where the model's weights live. Lighter modes fit smaller GPUs but run slower."


def hardware_memory_mode(gpu_total_bytes: int | None) -> MemoryMode:
    """The Memory-mode default for the detected hardware (``None``: no usable GPU).

    On a CPU-only machine every mode runs on the CPU; model offload keeps the weights' precision
    and does not claim a 24 GB card. GPUs get the fastest mode whose label fits their memory.
    """
    if not gpu_total_bytes:
        return MemoryMode.MODEL_OFFLOAD
    gib = gpu_total_bytes / 2**30
    if gib >= 23:
        return MemoryMode.GPU
    if gib >= 15:
        return MemoryMode.FP8
    if gib >= 11:
        return MemoryMode.MODEL_OFFLOAD
    if gib >= 7:
        return MemoryMode.GROUP_OFFLOAD
    return MemoryMode.SEQUENTIAL


class GenerateFormWidget(QScrollArea):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.missing_loras: list[str] = []  # names of the last applied image not found here
        # Helpers add request fields and read them back (ui/workspaces/variant_defaults.py):
        # each request hook maps the built request to a new one, each parameter hook applies
        # request-shaped values and returns what it set.
        self.request_hooks: list[Callable[[GenerateRequest], GenerateRequest]] = []
        self.parameter_hooks: list[Callable[[Mapping[str, Any]], list[str]]] = []
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QWidget()
        self.setWidget(body)
        self.prompt = PromptEditorWidget(TOKEN_BUDGET)
        self.size_picker = SizePickerWidget()
        self.steps = QSpinBox()
        self.steps.setRange(1, 200)
        self.steps.setValue(8)
        self.steps.setToolTip("Z-Image Turbo is distilled for 8 steps; more rarely helps.")
        self.count = QSpinBox()
        self.count.setRange(1, 64)
        self.count.setToolTip("Images per click; each uses the next seed.")
        self.seed = SeedWidget()
        self.memory_mode = QComboBox()
        for mode in MemoryMode:
            self.memory_mode.addItem(mode.label, mode.value)
        # Labels follow the model's DiT format (set_mode_labels): they never widen the column.
        self.memory_mode.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.memory_mode.setMinimumContentsLength(24)
        self.memory_mode_chosen = False  # by the user (or a saved non-default): keep it
        self.memory_mode.activated.connect(self._on_mode_chosen)
        self.memory_mode.setToolTip(MEMORY_TIP)
        self.vae_tiling = QCheckBox("VAE tiling (saves memory when decoding large images)")
        self.unload_te = QCheckBox("Keep the text encoder in RAM (saves ≈ 8 GB of VRAM)")
        self.fast = QCheckBox("Fast generation (compiles on supported GPUs)")
        self.fast.setChecked(True)
        self.fast.setToolTip(
            "Compiles the model on NVIDIA GPUs with Triton (and uses fp8 compute in fp8 mode on "
            "cards that have it): ≈ 30 % faster images; the first image of each size takes "
            "longer once. Off: plain eager bf16."
        )
        self.loras = LoraStackWidget()
        # advanced
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 20.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setToolTip(
            "0 turns CFG off, as Turbo expects. Above 0 the negative prompt "
            "is used and each step costs twice as much."
        )
        self.shift = QDoubleSpinBox()
        self.shift.setRange(0.1, 20.0)
        self.shift.setSingleStep(0.5)
        self.shift.setValue(3.0)
        self.shift.setToolTip(
            "Sampler shift; Turbo uses 3. Higher can improve coherence at large sizes."
        )
        self.negative = QPlainTextEdit()
        self.negative.setPlaceholderText("Negative prompt (only used when guidance is above 0)")
        self.negative.setFixedHeight(60)
        self.output_dir = QLineEdit()
        self.output_dir.setPlaceholderText("Default: the zitdesk outputs folder")
        browse = QPushButton("…")
        browse.setFixedWidth(32)
        browse.clicked.connect(self._browse_output)
        out_row = QHBoxLayout()
        out_row.setContentsMargins(0, 0, 0, 0)
        out_row.addWidget(self.output_dir, 1)
        out_row.addWidget(browse)
        # With several GPUs: the card images are made on (GenerateRequest.device; #19), e.g.
        # card 0 while a training run uses card 1. Shown only when there is a choice.
        self.gpu = QComboBox()
        self.gpu.addItem("Default GPU", "")
        self.gpu.setToolTip(
            "The GPU images are made on. Pick another card than a training run's to keep "
            "generating while it trains."
        )
        self.strip_metadata = QCheckBox("Save images without parameters")
        self.strip_metadata.setToolTip(
            "Leave prompt, seed, model and LoRA names out of saved PNGs. Without it, images carry "
            "their parameters (file names and hashes, never your folders) so they can be reused."
        )

        self.advanced = QCollapsible("Advanced", expandedIcon="▾", collapsedIcon="▸")
        adv = QWidget()
        adv_form = QFormLayout(adv)
        adv_form.setContentsMargins(0, 0, 0, 0)
        adv_form.addRow("Guidance (CFG)", self.guidance)
        adv_form.addRow("Shift", self.shift)
        adv_form.addRow("Negative", self.negative)
        adv_form.addRow("Save to", out_row)
        adv_form.addRow("", self.strip_metadata)
        adv_form.addRow("GPU", self.gpu)
        self._adv_form = adv_form
        adv_form.setRowVisible(self.gpu, False)
        self.advanced.addWidget(adv)

        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Size", self.size_picker)
        form.addRow("Steps", self.steps)
        form.addRow("Images", self.count)
        form.addRow("Seed", self.seed)
        form.addRow("Memory", self.memory_mode)
        lay = QVBoxLayout(body)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addWidget(_title("Prompt"))
        lay.addWidget(self.prompt)
        lay.addWidget(_title("Image"))
        lay.addLayout(form)
        lay.addWidget(self.vae_tiling)
        lay.addWidget(self.unload_te)
        lay.addWidget(self.fast)
        lay.addWidget(_title("LoRAs"))
        lay.addWidget(self.loras)
        lay.addWidget(self.advanced)
        lay.addStretch(1)
        # Never scroll sideways: the column is as wide as its widest row.
        self.setMinimumWidth(
            body.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
        )

        for sig in (
            self.prompt.text_changed,
            self.size_picker.size_changed,
            self.steps.valueChanged,
            self.count.valueChanged,
            self.seed.changed,
            self.memory_mode.currentIndexChanged,
            self.vae_tiling.toggled,
            self.unload_te.toggled,
            self.fast.toggled,
            self.loras.changed,
            self.guidance.valueChanged,
            self.shift.valueChanged,
            self.negative.textChanged,
            self.output_dir.textChanged,
            self.strip_metadata.toggled,
        ):
            sig.connect(self._emit_changed)

    @Slot(int)
    def _on_mode_chosen(self, _index: int) -> None:
        self.memory_mode_chosen = True

    def apply_hardware_default(self, gpu_total_bytes: int | None) -> bool:
        """Follow the detected hardware unless the user chose a mode; True if it was set."""
        if self.memory_mode_chosen:
            return False
        self.set_memory_mode(hardware_memory_mode(gpu_total_bytes))
        return True

    @Slot()
    def _emit_changed(self, *_args) -> None:
        self.changed.emit()

    @Slot()
    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save images to", self.output_dir.text())
        if folder:
            self.output_dir.setText(folder)

    # -- state ----------------------------------------------------------------------------------
    def current_memory_mode(self) -> MemoryMode:
        return MemoryMode(self.memory_mode.currentData())

    def set_gpus(self, gpus: Any) -> None:
        """The cards of the machine (``zitdesk.gpu.GpuReading``s): one entry each, the row shown
        only with more than one; the chosen (or saved) card is kept."""
        want = str(self.gpu.currentData() or "") or getattr(self, "_saved_device", "")
        self.gpu.blockSignals(True)
        self.gpu.clear()
        self.gpu.addItem("Default GPU", "")
        for g in gpus or ():
            self.gpu.addItem(f"GPU {g.index}: {g.name}", f"cuda:{g.index}")
        self.gpu.blockSignals(False)
        self._select_gpu(want)
        self._adv_form.setRowVisible(self.gpu, len(gpus or ()) > 1)

    def _select_gpu(self, device: str) -> None:
        idx = self.gpu.findData(device)
        self.gpu.setCurrentIndex(idx if idx >= 0 else 0)

    def set_mode_labels(self, dit_format: str, unload_text_encoder: bool = False) -> None:
        """Name the memory modes for the configured model's DiT format (a GGUF / scaled-fp8 /
        nvfp4 file: the predicted need at 1024×1024; bf16: the usual card sizes)."""
        from zitdesk.memory_predict import mode_label, mode_sizes_note

        for i in range(self.memory_mode.count()):
            mode = MemoryMode(self.memory_mode.itemData(i))
            text = mode_label(mode, dit_format, unload_text_encoder)
            if self.memory_mode.itemText(i) != text:
                self.memory_mode.setItemText(i, text)
        note = mode_sizes_note(dit_format)
        self.memory_mode.setToolTip(f"{MEMORY_TIP} {note}" if note else MEMORY_TIP)

    def set_memory_mode(self, mode: MemoryMode | str) -> None:
        idx = self.memory_mode.findData(MemoryMode(mode).value)
        if idx >= 0:
            self.memory_mode.setCurrentIndex(idx)

    def build_request(self, model_path: str = "", seed: int | None = None) -> GenerateRequest:
        """The form as a request (not validated: call ``.validate()``)."""
        w, h = self.size_picker.image_size()
        request = GenerateRequest(
            prompt=self.prompt.text(),
            width=w,
            height=h,
            steps=self.steps.value(),
            guidance=float(self.guidance.value()),
            shift=float(self.shift.value()),
            seed=self.seed.resolve() if seed is None else seed,
            count=self.count.value(),
            negative_prompt=self.negative.toPlainText(),
            loras=self.loras.model.specs(),
            memory_mode=self.current_memory_mode(),
            vae_tiling=self.vae_tiling.isChecked(),
            unload_text_encoder=self.unload_te.isChecked(),
            speed="auto" if self.fast.isChecked() else "off",
            output_dir=self.output_dir.text().strip(),
            model_path=model_path,
            write_metadata=not self.strip_metadata.isChecked(),
            device=str(self.gpu.currentData() or ""),
        )
        for hook in self.request_hooks:
            request = hook(request)
        return request

    def preview_request(self, model_path: str = "") -> GenerateRequest:
        """Like :meth:`build_request` without drawing a random seed (for predictions)."""
        return self.build_request(model_path, seed=0)

    def apply_parameters(self, values: Mapping[str, Any]) -> list[str]:
        """Fill the form from request-shaped values, the way ``GenerateRequest.from_dict`` reads
        them: a request dict (history, gallery) or ``ImageParameters.request_values()`` (a dropped
        or reused image). Returns what was set.

        Keys that are missing, None or of the wrong type are left alone; a fixed seed is selected
        so the image can be reproduced.
        """
        data = values
        applied: list[str] = []
        if isinstance(data.get("prompt"), str):
            self.prompt.set_text(data["prompt"])
            applied.append("prompt")
        if isinstance(data.get("negative_prompt"), str):
            self.negative.setPlainText(data["negative_prompt"])
        w, h = data.get("width"), data.get("height")
        if isinstance(w, int) and isinstance(h, int):
            self.size_picker.set_size(w, h)
            applied.append("size")
        if isinstance(data.get("steps"), int):
            self.steps.setValue(data["steps"])
            applied.append("steps")
        if isinstance(data.get("seed"), int):
            self.seed.set_mode("fixed")
            self.seed.set_value(data["seed"])
            applied.append("seed")
        guidance = data.get("guidance")
        if isinstance(guidance, (int, float)) and not isinstance(guidance, bool):
            self.guidance.setValue(max(float(guidance), 0.0))
            applied.append("guidance")
        if isinstance(data.get("shift"), (int, float)):
            self.shift.setValue(float(data["shift"]))
        if isinstance(data.get("count"), int):
            self.count.setValue(data["count"])
        if data.get("memory_mode"):
            with contextlib.suppress(ValueError):
                self.set_memory_mode(data["memory_mode"])
        if "vae_tiling" in data:
            self.vae_tiling.setChecked(bool(data["vae_tiling"]))
        if "unload_text_encoder" in data:
            self.unload_te.setChecked(bool(data["unload_text_encoder"]))
        loras = self._loras_from(data.get("loras"))
        if loras is not None:
            self.loras.set_loras(loras)
            if loras:
                applied.append("LoRAs")
        for hook in self.parameter_hooks:
            applied.extend(hook(data))
        return applied

    def _loras_from(self, items: Any) -> list[tuple[str, float, bool]] | None:
        """The LoRAs (request-shaped ``{path, weight, enabled, sha256}``) as files on this
        machine. Images carry file names and hashes, not paths: each is found by hash, else by a
        name the library knows once (:func:`zitdesk.library.lookup.find_lora`); older images'
        absolute paths still work. Names that cannot be found are kept in :attr:`missing_loras`."""
        from zitdesk.library.lookup import find_lora

        if not isinstance(items, list):
            return None
        out = []
        self.missing_loras = []
        for lo in items:
            if not isinstance(lo, Mapping):
                continue
            ref = lo.get("path")
            if not isinstance(ref, str) or not ref:
                continue
            name = re.split(r"[\\/]", ref)[-1]
            sha = lo.get("sha256") if isinstance(lo.get("sha256"), str) else ""
            path = ref if Path(ref).is_absolute() and Path(ref).is_file() else find_lora(name, sha)
            if path is None:
                self.missing_loras.append(name)
                continue
            weight = lo.get("weight")
            out.append(
                (
                    path,
                    float(weight) if isinstance(weight, (int, float)) else 1.0,
                    bool(lo.get("enabled", True)),
                )
            )
        return out

    def load_settings(self, s: AppSettings) -> None:
        self.size_picker.set_size(s.width, s.height)
        self.steps.setValue(s.steps)
        self.count.setValue(s.image_count)
        if s.seed_mode == "fixed":
            self.seed.set_value(s.seed)
        self.seed.set_mode(s.seed_mode)
        self.set_memory_mode(s.memory_mode)
        self.memory_mode_chosen = s.memory_mode != MemoryMode.GPU.value  # GPU is the stock default
        self.vae_tiling.setChecked(s.vae_tiling)
        self.unload_te.setChecked(s.unload_text_encoder)
        self.fast.setChecked(bool(getattr(s, "fast_generation", True)))
        self.guidance.setValue(s.guidance)
        self.shift.setValue(s.shift)
        self.output_dir.setText(s.output_dir)
        self.strip_metadata.setChecked(bool(getattr(s, "strip_metadata", False)))
        self._saved_device = str(getattr(s, "generate_device", "") or "")
        self._select_gpu(self._saved_device)
        self.loras.last_dir = s.last_lora_dir
        if getattr(s, "last_prompt", ""):
            self.prompt.set_text(s.last_prompt)
        if getattr(s, "last_negative", ""):
            self.negative.setPlainText(s.last_negative)
        items = []
        for line in getattr(s, "last_loras", []) or []:
            parts = str(line).split("\t", 2)
            if len(parts) != 3 or not parts[2]:
                continue
            try:
                weight = float(parts[0])
            except ValueError:
                continue
            items.append((parts[2], weight, parts[1] != "0"))
        if items:
            self.loras.set_loras(items)

    def store_settings(self, s: AppSettings) -> None:
        s.width, s.height = self.size_picker.image_size()
        s.steps = self.steps.value()
        s.image_count = self.count.value()
        s.seed_mode = self.seed.mode
        s.seed = self.seed.value()
        s.memory_mode = self.current_memory_mode().value
        s.vae_tiling = self.vae_tiling.isChecked()
        s.unload_text_encoder = self.unload_te.isChecked()
        s.fast_generation = self.fast.isChecked()
        s.guidance = float(self.guidance.value())
        s.shift = float(self.shift.value())
        s.output_dir = self.output_dir.text().strip()
        s.strip_metadata = self.strip_metadata.isChecked()
        s.generate_device = str(self.gpu.currentData() or "")
        s.last_lora_dir = self.loras.last_dir
        s.last_prompt = self.prompt.text()
        s.last_negative = self.negative.toPlainText()
        s.last_loras = [
            f"{e.weight:g}\t{1 if e.enabled else 0}\t{e.path}" for e in self.loras.model.entries
        ]

    @staticmethod
    def lora_specs_from(items: list[tuple[str, float, bool]]) -> tuple[LoraSpec, ...]:
        return tuple(LoraSpec(p, w, e) for p, w, e in items)
