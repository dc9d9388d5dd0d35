"""Full training settings: every :class:`~zitdesk.train.config.TrainConfig` field as a form.

``TrainSettingsDialog(config=None, parent=None, path=None)`` shows one tab per config section
(model, data, LoRA, optimizer, timesteps, memory, saving, samples). The rows are generated from
the dataclass fields — a new field gets a widget without code here: enums (the allowed values
``config.py`` validates against, :data:`CHOICES`) are combo boxes, groups of enums
(:data:`MULTI_CHOICES`) check boxes, bools check boxes, whole numbers spin boxes, other numbers
line edits, tuples comma lists (text tuples one item per line), paths a line edit + Browse.
Tooltips come from :data:`FIELD_HELP` (plain data in :mod:`ui.train.settings_fields`, with the
enum values, labels and widget kinds; a test checks that every field has one). Fields the
config's VRAM preset sets carry a "preset" badge ("changed" when the value differs from the
preset's).

Load/Save read and write the same TOML ``zitdesk train`` reads (``TrainConfig.load`` /
``TrainConfig.write``, atomic). After every edit the values go through ``TrainConfig.from_dict``
and ``TrainConfig.validate()``: the first problem is shown as the sentence they give, and Save and
Start stay disabled until it is fixed. Start emits ``config_ready(TrainConfig)`` (validated).
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path
from typing import Any

from PySide6 import QtGui
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

from ui.train.settings_fields import (
    CHOICES,
    FIELD_HELP,
    MULTI_CHOICES,
    PATHS,
    PLACEHOLDERS,
    SECTION_TITLES,
    Key,
    _number,
    _show,
    label_for,
    section_fields,
    widget_kind,
)
from zitdesk.errors import RequestError
from zitdesk.train.config import CONFIG_VERSION, TrainConfig
from zitdesk.train.presets import PRESETS, apply_preset

log = logging.getLogger(__name__)

__all__ = ["FIELD_HELP", "TrainSettingsDialog", "section_fields", "widget_kind"]

BADGE = "#4c8bf5"
CHANGED = "#e0a030"
REFUSED = "#e05545"


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
        self.error_key: Key | None = None
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
        self.error_key = self.locate_error() if self.error else None
        self.error_label.setText(self.error)
        self.save_button.setEnabled(self.valid)
        self.start_button.setEnabled(self.valid)
        self._mark_preset()
        for i, (sec, _flds) in enumerate(section_fields()):
            title = SECTION_TITLES.get(sec, sec.capitalize())
            bad = self.error_key is not None and self.error_key[0] == sec
            self.tabs.setTabText(i, f"⚠ {title}" if bad else title)

    def locate_error(self) -> Key | None:
        """The field the current refusal is about: the one the sentence names, else the one
        that alone, on top of a valid config, gives the same sentence."""
        m = re.search(r"\b([a-z]+)\.([a-z_]+)\b", self.error)
        if m and (m.group(1), m.group(2)) in self.fields:
            return (m.group(1), m.group(2))
        raw = self.raw()
        base = (
            TrainConfig()
            .with_changes(model={"path": "m"}, data={"folder": "d"}, save={"output_dir": "o"})
            .to_dict()
        )
        for sec, name in self.fields:
            trial = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
            trial[sec][name] = raw[sec][name]
            try:
                TrainConfig.from_dict(trial).validate()
            except RequestError as exc:
                if str(exc) == self.error:
                    return (sec, name)
        return None

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
                text = f"<b>{text}</b> <span style='color:{color}; font-size:small'>{badge}</span>"
                tip += f"\nSet by the {preset.label} preset: {_show_value(want)}."
                if not same:
                    tip += " You changed it."
            if key == self.error_key:
                text = f"<span style='color:{REFUSED}'>{text} ⚠</span>"
                tip += f"\nRefused: {self.error}"
            lab.setText(text)
            lab.setToolTip(plain_tip(tip))
            self.fields[key].widget.setToolTip(plain_tip(tip))

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


def plain_tip(text: str) -> str:
    """A tooltip Qt shows literally, whatever the text holds (values from a config file)."""
    if not QtGui.Qt.mightBeRichText(text):  # QtGui's Qt namespace has it, QtCore's not
        return text
    return "<p style='white-space:pre-wrap'>" + html.escape(text, quote=True) + "</p>"


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
