"""Full training settings: every :class:`~zitdesk.train.config.TrainConfig` field as a form.

``TrainSettingsDialog(config=None, parent=None, path=None)`` shows one tab per config section
(model, data, LoRA, optimizer, timesteps, memory, saving, samples). The rows are generated from
the dataclass fields — a new field gets a widget without code here: enums (the allowed values
``config.py`` validates against, :data:`CHOICES`) are combo boxes, groups of enums
(:data:`MULTI_CHOICES`) check boxes, bools check boxes, whole numbers spin boxes, other numbers
line edits, tuples comma lists (text tuples one item per line), paths a line edit + Browse.
Tooltips come from :data:`FIELD_HELP` (plain data, Qt-free; a test checks that every field has
one). Fields the config's VRAM preset sets carry a "preset" badge ("changed" when the value
differs from the preset's).

Load/Save read and write the same TOML ``zitdesk train`` reads (``TrainConfig.load`` /
``TrainConfig.write``, atomic). After every edit the values go through ``TrainConfig.from_dict``
and ``TrainConfig.validate()``: the first problem is shown as the sentence they give, and Save and
Start stay disabled until it is fixed. Start emits ``config_ready(TrainConfig)`` (validated).
"""

from __future__ import annotations

import dataclasses
import logging
import typing
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from zitdesk.errors import RequestError
from zitdesk.train import config as C
from zitdesk.train.config import CONFIG_VERSION, TrainConfig
from zitdesk.train.presets import PRESETS, apply_preset

log = logging.getLogger(__name__)

Key = tuple[str, str]

SECTION_TITLES: dict[str, str] = {
    "model": "Model",
    "data": "Dataset",
    "lora": "LoRA",
    "optim": "Optimizer",
    "timesteps": "Timesteps",
    "memory": "Memory",
    "save": "Saving",
    "sample": "Samples",
}

#: Allowed values of the enum fields (the tuples ``TrainConfig.validate`` checks against).
CHOICES: dict[Key, tuple[str, ...]] = {
    ("model", "variant"): C.VARIANTS,
    ("model", "adapter_mode"): C.ADAPTER_MODES,
    ("model", "base_precision"): C.PRECISIONS,
    ("data", "latent_mode"): C.LATENT_MODES,
    ("optim", "optimizer"): C.OPTIMIZERS,
    ("optim", "schedule"): C.SCHEDULES,
    ("timesteps", "mode"): C.TIMESTEP_MODES,
    ("memory", "gradient_checkpointing"): C.CHECKPOINTING,
    ("memory", "preset"): ("", *PRESETS),
}
MULTI_CHOICES: dict[Key, tuple[str, ...]] = {("lora", "targets"): C.TARGET_GROUPS}
#: Path fields: "dir" or "file" (what Browse asks for).
PATHS: dict[Key, str] = {
    ("model", "path"): "dir",
    ("model", "training_adapter"): "file",
    ("data", "folder"): "dir",
    ("data", "cache_dir"): "dir",
    ("save", "output_dir"): "dir",
}
#: Whole numbers that do not fit a spin box (up to 2^63).
BIG_INTS: set[Key] = {("optim", "seed")}
#: What an empty text field means.
PLACEHOLDERS: dict[Key, str] = {
    ("model", "training_adapter"): "none",
    ("data", "cache_dir"): "the app's cache folder (shared between runs)",
    ("data", "trigger"): "no trigger word",
    ("memory", "attention_backend"): "diffusers' default (native SDPA)",
    ("model", "device"): "auto",
}
LABELS: dict[Key, str] = {
    ("memory", "vram_budget_gb"): "VRAM budget (GB)",
    ("optim", "eps"): "Epsilon",
    ("optim", "grad_clip"): "Gradient clipping",
    ("optim", "grad_accum"): "Gradient accumulation",
    ("data", "caption_ext"): "Caption extension",
    ("data", "folder"): "Dataset folder",
    ("model", "path"): "Base model",
    ("model", "adapter_mode"): "Adapter mode",
    ("save", "every"): "Save every (steps)",
    ("sample", "every"): "Sample every (steps)",
    ("save", "keep_last"): "Keep last",
    ("save", "export_kohya"): "Also export kohya file",
    ("sample", "at_start"): "Sample before step 1",
    ("sample", "vae_tiling"): "VAE tiling",
    ("sample", "steps"): "Sampling steps",
    ("lora", "include_refiners"): "Include refiner blocks",
    ("memory", "offload_vae"): "VAE waits in RAM",
    ("memory", "compile"): "Compile blocks",
    ("timesteps", "differential_guidance"): "Differential guidance",
}

#: Tooltips (docs/training.md and the field comments in config.py).
FIELD_HELP: dict[Key, str] = {
    ("model", "path"): "The base model: a diffusers folder, a Hugging Face cache entry or a folder "
    "of ComfyUI files.",
    ("model", "variant"): "turbo, deturbo or base: which Z-Image you train on; recorded in the "
    "LoRA (zitdesk_base_variant). Turbo needs a training adapter.",
    ("model", "training_adapter"): "A LoRA applied while training and removed for samples and the "
    "saved file, e.g. ostris' zimage_turbo_training_adapter_v2.safetensors. It keeps Turbo's "
    "distillation from being trained away.",
    ("model", "adapter_mode"): "auto: side for bf16/fp32 bases, merge for fp8/NF4. side = a frozen "
    "second adapter (exact removal); merge = added to the base weights before quantising.",
    ("model", "base_precision"): "How the base weights are held: auto (bf16 on CUDA), bf16, fp32, "
    "fp8 or nf4 (CUDA only). fp16 does not train on Z-Image.",
    ("model", "device"): "auto, cuda, cuda:N or cpu.",
    ("data", "folder"): "Images with same-name caption files.",
    ("data", "trigger"): "Replaces [trigger] in captions; captions without the placeholder get it "
    "prepended.",
    ("data", "caption_ext"): "The caption file extension, with its dot.",
    ("data", "resolutions"): "Training resolutions (multiples of 16, 64–2048): one copy of the "
    "dataset per resolution, each image in its aspect bucket, never upscaled.",
    ("data", "caption_dropout"): "Probability of training a sample on the empty caption "
    "(0.05 is typical).",
    ("data", "latent_mode"): "mode: the VAE posterior's mode (diffusers); sample: a seeded sample "
    "(ai-toolkit).",
    ("data", "cache_dir"): "Where latents and caption embeddings are cached (content-keyed, shared "
    "between runs). Empty = the app's cache folder.",
    ("lora", "rank"): "LoRA rank: 16–32 is typical; higher learns more detail and makes a bigger "
    "file.",
    ("lora", "alpha"): "LoRA alpha, usually equal to the rank; alpha/rank is baked into the saved "
    "file.",
    ("lora", "targets"): "Which modules get a LoRA in layers 0–29: attention, feed-forward, adaLN "
    "modulation.",
    ("lora", "include_refiners"): "Also train the noise and context refiner blocks.",
    ("optim", "optimizer"): "adamw (fused on CUDA) or adamw8bit (bitsandbytes, CUDA only; less "
    "memory).",
    ("optim", "learning_rate"): "1e-4 is typical (1e-4–2e-4).",
    ("optim", "weight_decay"): "AdamW weight decay (1e-4).",
    ("optim", "betas"): "AdamW betas, two numbers (0.9, 0.999).",
    ("optim", "eps"): "AdamW epsilon (1e-8).",
    ("optim", "schedule"): "After the warm-up: constant, cosine or linear to 0.",
    ("optim", "warmup_steps"): "Linear warm-up steps (0–100 is typical).",
    ("optim", "grad_clip"): "Clip the gradient norm to this value; 0 = off.",
    ("optim", "batch_size"): "Images per micro-batch (one bucket per batch).",
    ("optim", "grad_accum"): "Micro-batches per optimizer step.",
    ("optim", "steps"): "Optimizer steps (2000–3000 for a character).",
    ("optim", "seed"): "Seed of the noise, timesteps, caption dropout and data order.",
    ("timesteps", "mode"): "weighted (ai-toolkit's Z-Image Turbo default), shift, logit_normal, "
    "uniform_shift or turbo_anchors (the 8-step sampler's noise levels).",
    ("timesteps", "shift"): "Shift for shift / uniform_shift / turbo_anchors (3).",
    ("timesteps", "anchor_steps"): "turbo_anchors: the sampler's step count (8).",
    ("timesteps", "jitter"): "turbo_anchors: ± uniform jitter on σ (0.02).",
    ("timesteps", "differential_guidance"): "Train towards v̂ + k·(target − v̂) instead of the "
    "target.",
    ("timesteps", "differential_scale"): "k of differential guidance (3).",
    ("memory", "preset"): "The VRAM tier these memory values came from (informational; the fields "
    "it sets are marked).",
    ("memory", "gradient_checkpointing"): "full: every block (least memory); auto: as many blocks "
    "as the memory needs; off: fastest, most memory.",
    ("memory", "vram_budget_gb"): "The memory 'auto' checkpointing plans for; 0 = the GPU's free "
    "memory.",
    ("memory", "compile"): "torch.compile the repeated blocks (CUDA only; faster after a slow "
    "first step).",
    ("memory", "attention_backend"): "A diffusers attention backend name; empty = native SDPA.",
    ("memory", "offload_vae"): "The VAE waits in RAM between sample rounds (saves 0.17 GB of "
    "VRAM).",
    ("save", "output_dir"): "The run folder: checkpoints, LoRA files, samples and the config.",
    ("save", "name"): "The LoRA's file name (without .safetensors).",
    ("save", "every"): "A checkpoint and a LoRA file every N steps (0 = only at the end).",
    ("save", "keep_last"): "How many checkpoints and step files are kept.",
    ("save", "export_kohya"): "Also write <name>_kohya.safetensors at the end.",
    ("sample", "every"): "A round of sample images every N steps (0 = never).",
    ("sample", "prompts"): "One prompt per line; [trigger] is replaced by the trigger word. No "
    "prompts = no samples.",
    ("sample", "seeds"): "Seeds, cycled over the prompts.",
    ("sample", "width"): "0 = the largest training resolution.",
    ("sample", "height"): "0 = the largest training resolution.",
    ("sample", "steps"): "Sampling steps (8 for Turbo).",
    ("sample", "guidance"): "Guidance scale (0 for Turbo).",
    ("sample", "shift"): "Sampler shift (3).",
    ("sample", "at_start"): "Also sample before the first step (the model without your LoRA).",
    ("sample", "vae_tiling"): "Decode samples in tiles (less memory).",
}

BADGE = "#4c8bf5"
CHANGED = "#e0a030"


def section_fields() -> list[tuple[str, list[tuple[str, Any]]]]:
    """``[(section, [(field, type hint), …]), …]`` in TrainConfig order."""
    hints = typing.get_type_hints(TrainConfig)
    out = []
    for f in dataclasses.fields(TrainConfig):
        if f.name == "version":
            continue
        sec_cls = hints[f.name]
        sh = typing.get_type_hints(sec_cls)
        out.append((f.name, [(sf.name, sh[sf.name]) for sf in dataclasses.fields(sec_cls)]))
    return out


def widget_kind(key: Key, typ: Any) -> str:
    """Which generic widget a field gets."""
    if key in MULTI_CHOICES:
        return "checks"
    if key in CHOICES:
        return "choice"
    if key in PATHS:
        return "path"
    if typing.get_origin(typ) is tuple:
        args = typing.get_args(typ)
        return "lines" if args and args[0] is str else "list"
    if typ is bool:
        return "bool"
    if typ is int and key not in BIG_INTS:
        return "int"
    if typ in (int, float):
        return "number"
    return "text"


def _number(text: str) -> Any:
    """``"1e-4"`` → 0.0001, ``"3"`` → 3; anything else stays text (from_dict refuses it)."""
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        return t


def _show(v: Any) -> str:
    return repr(v) if isinstance(v, float) else str(v)


# --------------------------------------------------------------------------------------------
# Generic field widgets: value() → plain data for TrainConfig.from_dict, set_value(v)
# --------------------------------------------------------------------------------------------


class _Field:
    widget: QWidget

    def value(self) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def set_value(self, v: Any) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class ChoiceField(_Field):
    def __init__(self, choices: tuple[str, ...], on_change) -> None:
        self.widget = w = QComboBox()
        for c in choices:
            w.addItem(c or "(none)", c)
        w.currentIndexChanged.connect(on_change)

    def value(self) -> Any:
        return self.widget.currentData()

    def set_value(self, v: Any) -> None:
        i = self.widget.findData(v)
        if i < 0:  # a value from a file that validate() will refuse: show it as it is
            self.widget.addItem(str(v), v)
            i = self.widget.count() - 1
        self.widget.setCurrentIndex(i)


class ChecksField(_Field):
    def __init__(self, choices: tuple[str, ...], on_change) -> None:
        self.widget = QWidget()
        lay = QHBoxLayout(self.widget)
        lay.setContentsMargins(0, 0, 0, 0)
        self.boxes: dict[str, QCheckBox] = {}
        for c in choices:
            b = QCheckBox(c.replace("_", " "))
            b.toggled.connect(on_change)
            lay.addWidget(b)
            self.boxes[c] = b
        lay.addStretch(1)

    def value(self) -> Any:
        return [c for c, b in self.boxes.items() if b.isChecked()]

    def set_value(self, v: Any) -> None:
        for c, b in self.boxes.items():
            b.setChecked(c in v)


class BoolField(_Field):
    def __init__(self, on_change) -> None:
        self.widget = QCheckBox()
        self.widget.toggled.connect(on_change)

    def value(self) -> Any:
        return self.widget.isChecked()

    def set_value(self, v: Any) -> None:
        self.widget.setChecked(bool(v))


class IntField(_Field):
    def __init__(self, on_change) -> None:
        self.widget = w = QSpinBox()
        w.setRange(-(2**31) + 1, 2**31 - 1)  # validate() gives the sentence for a bad value
        w.setMinimumWidth(120)
        w.valueChanged.connect(on_change)

    def value(self) -> Any:
        return self.widget.value()

    def set_value(self, v: Any) -> None:
        self.widget.setValue(int(v))


class TextField(_Field):
    def __init__(self, on_change, number: bool = False, placeholder: str = "") -> None:
        self.number = number
        self.widget = w = QLineEdit()
        w.setPlaceholderText(placeholder)
        w.textChanged.connect(on_change)

    def value(self) -> Any:
        t = self.widget.text()
        return _number(t) if self.number else t

    def set_value(self, v: Any) -> None:
        self.widget.setText(_show(v))


class ListField(_Field):
    """A tuple of numbers as a comma list."""

    def __init__(self, on_change) -> None:
        self.widget = w = QLineEdit()
        w.setPlaceholderText("comma-separated")
        w.textChanged.connect(on_change)

    def value(self) -> Any:
        return [_number(p) for p in self.widget.text().split(",") if p.strip()]

    def set_value(self, v: Any) -> None:
        self.widget.setText(", ".join(_show(x) for x in v))


class LinesField(_Field):
    """A tuple of texts (they may hold commas), one per line."""

    def __init__(self, on_change) -> None:
        self.widget = w = QPlainTextEdit()
        w.setPlaceholderText("one per line")
        w.setFixedHeight(84)
        w.textChanged.connect(on_change)

    def value(self) -> Any:
        return [ln.strip() for ln in self.widget.toPlainText().splitlines() if ln.strip()]

    def set_value(self, v: Any) -> None:
        self.widget.setPlainText("\n".join(v))


class PathField(_Field):
    def __init__(self, kind: str, title: str, on_change, placeholder: str = "") -> None:
        self.kind = kind
        self.title = title
        self.widget = QWidget()
        lay = QHBoxLayout(self.widget)
        lay.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.textChanged.connect(on_change)
        self.browse = QToolButton()
        self.browse.setText("Browse…")
        self.browse.clicked.connect(self._browse)
        lay.addWidget(self.edit, 1)
        lay.addWidget(self.browse)

    @Slot()
    def _browse(self) -> None:
        start = self.edit.text() or str(Path.home())
        if self.kind == "file":
            path, _ = QFileDialog.getOpenFileName(
                self.widget, self.title, start, "LoRA files (*.safetensors);;All files (*)"
            )
        else:
            path = QFileDialog.getExistingDirectory(self.widget, self.title, start)
        if path:
            self.edit.setText(path)

    def value(self) -> Any:
        return self.edit.text().strip()

    def set_value(self, v: Any) -> None:
        self.edit.setText(str(v))


def make_field(key: Key, typ: Any, on_change) -> _Field:
    kind = widget_kind(key, typ)
    ph = PLACEHOLDERS.get(key, "")
    if kind == "choice":
        return ChoiceField(CHOICES[key], on_change)
    if kind == "checks":
        return ChecksField(MULTI_CHOICES[key], on_change)
    if kind == "path":
        return PathField(PATHS[key], label_for(key), on_change, ph)
    if kind == "lines":
        return LinesField(on_change)
    if kind == "list":
        return ListField(on_change)
    if kind == "bool":
        return BoolField(on_change)
    if kind == "int":
        return IntField(on_change)
    return TextField(on_change, number=kind == "number", placeholder=ph)


def label_for(key: Key) -> str:
    return LABELS.get(key) or key[1].replace("_", " ").capitalize()


# --------------------------------------------------------------------------------------------
# The dialog
# --------------------------------------------------------------------------------------------


class TrainSettingsDialog(QDialog):
    """Every TrainConfig field; see the module doc. ``config_ready(TrainConfig)`` on Start."""

    config_ready = Signal(object)

    def __init__(
        self,
        config: TrainConfig | None = None,
        parent: QWidget | None = None,
        path: str | Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Training settings")
        self.resize(860, 620)
        self.path: Path | None = Path(path) if path else None
        self.fields: dict[Key, _Field] = {}
        self.labels: dict[Key, QLabel] = {}
        self.error = ""
        self._loading = False
        self._config: TrainConfig | None = None

        self.path_label = QLabel()
        self.path_label.setObjectName("muted")
        self.path_label.setTextFormat(Qt.TextFormat.PlainText)
        self.load_button = QPushButton("Load…")
        self.load_button.setToolTip("Open a training config (.toml), as 'zitdesk train' reads it")
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Write these settings as a .toml for 'zitdesk train'")
        self.preset_combo = QComboBox()
        for name, p in PRESETS.items():
            self.preset_combo.addItem(p.label, name)
        self.apply_preset_button = QPushButton("Apply preset")
        self.apply_preset_button.setToolTip(
            "Set the memory-related fields of this VRAM tier (precision, resolutions, "
            "checkpointing, optimizer, compile)"
        )
        top = QHBoxLayout()
        top.addWidget(self.path_label, 1)
        top.addWidget(QLabel("VRAM preset:"))
        top.addWidget(self.preset_combo)
        top.addWidget(self.apply_preset_button)
        top.addSpacing(12)
        top.addWidget(self.load_button)
        top.addWidget(self.save_button)

        self.tabs = QTabWidget()
        for sec, flds in section_fields():
            page = QWidget()
            form = QFormLayout(page)
            form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
            for name, typ in flds:
                key = (sec, name)
                fld = make_field(key, typ, self._on_edit)
                tip = f"{sec}.{name}: {FIELD_HELP.get(key, '')}".rstrip(": ")
                fld.widget.setToolTip(tip)
                lab = QLabel()
                lab.setTextFormat(Qt.TextFormat.RichText)  # static field names + a badge
                lab.setToolTip(tip)
                cell = QWidget()
                cl = QVBoxLayout(cell)
                cl.setContentsMargins(0, 0, 0, 2)
                cl.setSpacing(1)
                cl.addWidget(fld.widget)
                if FIELD_HELP.get(key):
                    hl = QLabel(FIELD_HELP[key])
                    hl.setTextFormat(Qt.TextFormat.PlainText)
                    hl.setWordWrap(True)
                    hl.setObjectName("hint")
                    cl.addWidget(hl)
                form.addRow(lab, cell)
                self.fields[key] = fld
                self.labels[key] = lab
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            scroll.setWidget(page)
            self.tabs.addTab(scroll, SECTION_TITLES.get(sec, sec.capitalize()))

        self.info_label = QLabel()
        self.info_label.setObjectName("muted")
        self.info_label.setWordWrap(True)
        self.info_label.setTextFormat(Qt.TextFormat.PlainText)
        self.info_label.hide()
        self.error_label = QLabel()
        self.error_label.setObjectName("error")
        self.error_label.setWordWrap(True)
        self.error_label.setTextFormat(Qt.TextFormat.PlainText)
        self.cancel_button = QPushButton("Cancel")
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primaryButton")
        self.start_button.setDefault(True)
        bottom = QHBoxLayout()
        bottom.addWidget(self.error_label, 1)
        bottom.addWidget(self.cancel_button)
        bottom.addWidget(self.start_button)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.tabs, 1)
        lay.addWidget(self.info_label)
        lay.addLayout(bottom)

        self.load_button.clicked.connect(self.choose_load)
        self.save_button.clicked.connect(self.choose_save)
        self.apply_preset_button.clicked.connect(self._apply_selected_preset)
        self.cancel_button.clicked.connect(self.reject)
        self.start_button.clicked.connect(self.start)

        self.set_config(config or TrainConfig())
        self._update_path_label()

    # -- values --------------------------------------------------------------------------------
    def set_config(self, cfg: TrainConfig) -> None:
        self._loading = True
        try:
            for (sec, name), fld in self.fields.items():
                fld.set_value(getattr(getattr(cfg, sec), name))
        finally:
            self._loading = False
        i = self.preset_combo.findData(cfg.memory.preset)
        if i >= 0:
            self.preset_combo.setCurrentIndex(i)
        self._on_edit()

    def raw(self) -> dict[str, Any]:
        """The form's values as a config dict (not yet checked)."""
        out: dict[str, Any] = {"version": CONFIG_VERSION}
        for (sec, name), fld in self.fields.items():
            out.setdefault(sec, {})[name] = fld.value()
        return out

    def config(self) -> TrainConfig:
        """The form as a validated config; raises RequestError with the sentence to show."""
        warnings: list[str] = []
        return TrainConfig.from_dict(self.raw(), warnings).validate()

    @property
    def valid(self) -> bool:
        return not self.error

    @Slot()
    def _on_edit(self, *_args: Any) -> None:
        if self._loading:
            return
        try:
            self._config = self.config()
            self.error = ""
        except RequestError as exc:
            self._config = None
            self.error = str(exc)
        self.error_label.setText(self.error)
        self.save_button.setEnabled(self.valid)
        self.start_button.setEnabled(self.valid)
        self._mark_preset()

    def _mark_preset(self) -> None:
        name = self.fields[("memory", "preset")].value()
        preset = PRESETS.get(name)
        marked: dict[Key, Any] = {}
        if preset is not None:
            for sec, vals in preset.changes.items():
                for k, v in vals.items():
                    marked[(sec, k)] = v
        for key, lab in self.labels.items():
            text = label_for(key)
            tip = f"{key[0]}.{key[1]}: {FIELD_HELP.get(key, '')}".rstrip(": ")
            if key in marked and preset is not None:
                want = marked[key]
                have = self.fields[key].value()
                same = _same(have, want)
                color, badge = (BADGE, "preset") if same else (CHANGED, "changed")
                text = (
                    f"<b>{text}</b> <span style='color:{color}; font-size:small'>{badge}</span>"
                )
                tip += f"\nSet by the {preset.label} preset: {_show_value(want)}."
                if not same:
                    tip += " You changed it."
            lab.setText(text)
            lab.setToolTip(tip)
            self.fields[key].widget.setToolTip(tip)

    # -- presets ---------------------------------------------------------------------------
    @Slot()
    def _apply_selected_preset(self) -> None:
        name = self.preset_combo.currentData()
        try:
            cfg = TrainConfig.from_dict(self.raw())
        except RequestError as exc:  # a value that is not even the right type: fix it first
            self.error_label.setText(str(exc))
            return
        self.set_config(apply_preset(cfg, name))

    # -- files ----------------------------------------------------------------------------------
    def _update_path_label(self) -> None:
        self.path_label.setText(str(self.path) if self.path else "Not saved yet")

    @Slot()
    def choose_load(self) -> None:
        start = str(self.path.parent) if self.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Load training config", start, "Training config (*.toml);;All files (*)"
        )
        if path:
            self.load(path)

    def load(self, path: str | Path) -> bool:
        """Fill the form from a TOML; on failure the form stays as it was."""
        warnings: list[str] = []
        try:
            cfg = TrainConfig.load(path, warnings)
        except RequestError as exc:
            self.info_label.setText(str(exc))
            self.info_label.setObjectName("error")
            self._restyle(self.info_label)
            self.info_label.show()
            return False
        self.path = Path(path)
        self._update_path_label()
        self.set_config(cfg)
        if warnings:
            self.info_label.setText("Loaded with notes: " + "; ".join(warnings) + ".")
        else:
            self.info_label.setText(f"Loaded {Path(path).name}.")
        self.info_label.setObjectName("muted")
        self._restyle(self.info_label)
        self.info_label.show()
        return True

    @Slot()
    def choose_save(self) -> None:
        start = str(self.path) if self.path else str(Path.home() / "train.toml")
        path, _ = QFileDialog.getSaveFileName(
            self, "Save training config", start, "Training config (*.toml)"
        )
        if path:
            if not path.endswith(".toml"):
                path += ".toml"
            self.save(path)

    def save(self, path: str | Path) -> Path | None:
        """Write the validated config (the form must be valid)."""
        if self._config is None:
            return None
        try:
            out = self._config.write(path)
        except OSError as exc:
            self.error_label.setText(f"Cannot write {path}: {exc.strerror or exc}.")
            return None
        self.path = Path(out)
        self._update_path_label()
        self.info_label.setText(f"Saved {self.path.name}.")
        self.info_label.setObjectName("muted")
        self._restyle(self.info_label)
        self.info_label.show()
        return self.path

    @staticmethod
    def _restyle(w: QWidget) -> None:
        w.style().unpolish(w)
        w.style().polish(w)

    # -- start ---------------------------------------------------------------------------------
    @Slot()
    def start(self) -> None:
        if self._config is None:
            return
        self.config_ready.emit(self._config)
        self.accept()

    def current(self) -> TrainConfig | None:
        """The validated config, or None while a value is refused (see :attr:`error`)."""
        return self._config


def _same(have: Any, want: Any) -> bool:
    if isinstance(want, tuple):
        try:
            return tuple(have) == want
        except TypeError:
            return False
    if isinstance(want, float) and isinstance(have, (int, float)):
        return float(have) == want
    return have == want


def _show_value(v: Any) -> str:
    if isinstance(v, tuple):
        return ", ".join(_show(x) for x in v)
    if isinstance(v, bool):
        return "on" if v else "off"
    return _show(v)
