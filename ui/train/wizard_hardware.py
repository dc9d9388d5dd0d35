"""The New-run wizard's last page: the hardware, the plan for it and the time it takes
(:class:`ui.train.wizard.NewRunWizard` holds the shared state; the first two pages are in
:mod:`ui.train.wizard_pages`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWizardPage,
)

from ui.theme import BAD, OK
from ui.train.wizard_data import (
    TURBO_EXPLANATION,
    TURBO_WARNING,
    guess_variant,
    safe_name,
    unique_output,
)
from ui.train.wizard_pages import plain
from zitdesk.errors import RequestError
from zitdesk.train.estimate import format_duration
from zitdesk.train.presets import DEFAULT_PRESET, PRESETS

if TYPE_CHECKING:
    from ui.train.wizard import NewRunWizard


class HardwarePage(QWizardPage):
    COLS = ("Preset", "What it does", "s / step", "Peak memory", "Total")

    def __init__(self, wizard: NewRunWizard) -> None:
        super().__init__()
        self.wiz = wizard
        self.setTitle("3 · Hardware and model")
        self.setSubTitle(
            "How fast and in how much memory each VRAM preset trains on your card, "
            "and the model to train on."
        )
        self.card_label = plain(QLabel())
        self.card_label.setObjectName("sectionTitle")
        self.tiers = QTreeWidget()
        self.tiers.setColumnCount(len(self.COLS))
        self.tiers.setHeaderLabels(list(self.COLS))
        self.tiers.setRootIsDecorated(False)
        self.tiers.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tiers.setUniformRowHeights(True)
        self.tiers.setAllColumnsShowFocus(True)
        hdr = self.tiers.header()
        hdr.setStretchLastSection(False)
        hdr.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        hdr.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for c in (2, 3, 4):
            hdr.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.items: dict[str, QTreeWidgetItem] = {}
        for name, p in PRESETS.items():
            it = QTreeWidgetItem([p.label, p.description, "", "", ""])
            it.setData(0, Qt.ItemDataRole.UserRole, name)
            self.tiers.addTopLevelItem(it)
            self.items[name] = it
        self.tiers.setFixedHeight(self.tiers.sizeHintForRow(0) * 4 + hdr.sizeHint().height() + 6)
        self.how_label = plain(QLabel())
        self.how_label.setObjectName("muted")
        self.fit_warning = plain(QLabel())
        self.fit_warning.setObjectName("error")
        self.fit_warning.hide()

        self.steps = QSpinBox()
        self.steps.setRange(1, 1_000_000)
        self.steps.setSingleStep(100)
        self.steps.setValue(2000)
        self.epochs_label = plain(QLabel(), wrap=False)
        self.epochs_label.setObjectName("muted")
        self.total_label = plain(QLabel())
        self.total_label.setObjectName("sectionTitle")

        # model
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("a diffusers folder or a folder of ComfyUI files")
        self.model_button = QPushButton("Browse…")
        self.variant = QComboBox()
        self.variant.setToolTip(
            "Which Z-Image this is: Turbo (distilled, 8 steps) needs a "
            "training adapter; De-Turbo and Base do not"
        )
        for key, label in (("turbo", "Turbo"), ("deturbo", "De-Turbo"), ("base", "Base")):
            self.variant.addItem(label, key)
        self.model_status = plain(QLabel())
        self.model_status.setObjectName("muted")
        self.adapter_edit = QLineEdit()
        self.adapter_edit.setPlaceholderText("zimage_turbo_training_adapter_v2.safetensors")
        self.adapter_button = QPushButton("Browse…")
        self.adapter_status = plain(QLabel())
        self.adapter_explain = plain(QLabel(TURBO_EXPLANATION))
        self.adapter_explain.setObjectName("muted")
        self.turbo_warning = plain(QLabel(TURBO_WARNING))
        self.turbo_warning.setObjectName("turboWarning")
        self.turbo_warning.setStyleSheet(
            "QLabel#turboWarning { background: #4d2222; color: #ffd9d4; border: 1px solid #e05545;"
            " border-radius: 4px; padding: 6px; font-weight: 600; }"
        )
        self.name_edit = QLineEdit()
        self.output_edit = QLineEdit()
        self.output_button = QPushButton("Browse…")
        self.error_label = plain(QLabel())
        self.error_label.setObjectName("error")

        run_box = QGroupBox("Run")
        r = QGridLayout(run_box)
        r.addWidget(QLabel("Steps:"), 0, 0)
        srow = QHBoxLayout()
        srow.addWidget(self.steps)
        srow.addWidget(self.epochs_label, 1)
        r.addLayout(srow, 0, 1, 1, 4)
        r.addWidget(self.total_label, 1, 0, 1, 5)
        r.addWidget(QLabel("Name:"), 2, 0)
        self.name_edit.setMaximumWidth(220)
        r.addWidget(self.name_edit, 2, 1)
        r.addWidget(QLabel("Output folder:"), 2, 2)
        r.addWidget(self.output_edit, 2, 3)
        r.addWidget(self.output_button, 2, 4)
        r.setColumnStretch(3, 1)

        model_box = QGroupBox("Model")
        g = QGridLayout(model_box)
        g.addWidget(QLabel("Base model:"), 0, 0)
        g.addWidget(self.model_edit, 0, 1)
        g.addWidget(self.variant, 0, 2)
        g.addWidget(self.model_button, 0, 3)
        g.addWidget(self.model_status, 1, 1, 1, 3)
        g.addWidget(QLabel("Training adapter:"), 2, 0)
        g.addWidget(self.adapter_edit, 2, 1, 1, 2)
        g.addWidget(self.adapter_button, 2, 3)
        g.addWidget(self.adapter_status, 3, 1, 1, 3)
        g.addWidget(self.adapter_explain, 4, 0, 1, 4)
        g.addWidget(self.turbo_warning, 5, 0, 1, 4)
        g.setColumnStretch(1, 1)

        lay = QVBoxLayout(self)
        lay.setSpacing(6)
        lay.addWidget(self.card_label)
        lay.addWidget(self.tiers)
        lay.addWidget(self.how_label)
        lay.addWidget(self.fit_warning)
        lay.addWidget(run_box)
        lay.addWidget(model_box)
        lay.addStretch(1)
        lay.addWidget(self.error_label)

        self.tiers.currentItemChanged.connect(self._on_tier)
        self.steps.valueChanged.connect(self.update_estimates)
        self.model_edit.editingFinished.connect(self._on_model)
        self.model_button.clicked.connect(self._browse_model)
        self.variant.currentIndexChanged.connect(self.update_turbo_warning)
        self.variant.activated.connect(self._variant_touched)
        self.adapter_edit.textChanged.connect(self._on_adapter_text)
        self.adapter_edit.editingFinished.connect(self._check_adapter)
        self.adapter_button.clicked.connect(self._browse_adapter)
        self.name_edit.textEdited.connect(self._name_edited)
        self.output_edit.textEdited.connect(self._output_touched)
        self.output_button.clicked.connect(self._browse_output)
        self._variant_user = False
        self._output_user = False
        self._name_user = False

    # -- preset ----------------------------------------------------------------------------
    @property
    def preset(self) -> str:
        it = self.tiers.currentItem()
        return it.data(0, Qt.ItemDataRole.UserRole) if it else DEFAULT_PRESET

    def set_preset(self, name: str) -> None:
        self.tiers.setCurrentItem(self.items[name])

    @Slot()
    def _on_tier(self, *_a: Any) -> None:
        self.update_estimates()

    def update_estimates(self, *_a: Any) -> None:
        w = self.wiz
        est = w.estimates()
        s = w.survey
        for name, e in est.items():
            it = self.items[name]
            it.setText(2, f"{e.step_s:.2f} s")
            peak = f"{e.peak_gib:.1f} GiB"
            if e.fits is False:
                peak += " — does not fit"
            it.setText(3, peak)
            it.setText(4, format_duration(e.total_s))
            label = PRESETS[name].label + ("  ← your card" if name == w.detected_preset else "")
            it.setText(0, label)
            bad = e.fits is False
            it.setForeground(3, QColor(BAD) if bad else self.palette().text().color())
            it.setToolTip(
                3,
                "Expected peak GPU memory (measured on the full-size model; "
                "your display and other programs need some too)",
            )
            it.setToolTip(
                2, "Expected seconds per optimizer step, averaged over your dataset's buckets"
            )
            it.setToolTip(4, f"{e.steps} steps: {e.breakdown()}")
        self.tiers.headerItem().setText(4, f"Total, {self.steps.value()} steps")
        e = est.get(self.preset)
        if e is not None:
            self.how_label.setText(e.how)
            if e.fits is False and w.gpu is not None:
                fitting = [PRESETS[n].label for n, x in est.items() if x.fits]
                self.fit_warning.setText(
                    f"The {PRESETS[self.preset].label} preset needs about {e.peak_gib:.0f} GiB; "
                    f"your card has {w.gpu.vram_gib:.0f} GB, so it would run out of memory. "
                    + (f"Pick {fitting[0]} or lower." if fitting else "No preset fits this card.")
                )
            self.fit_warning.setVisible(e.fits is False)
            self.total_label.setText(
                f"Expected total ≈ {format_duration(e.total_s)} ({e.breakdown()})"
            )
        if s and s.images:
            epochs = self.steps.value() * w.batch() / max(1, w.entries())
            self.epochs_label.setText(
                f"≈ {epochs:.0f} passes over {w.entries()} training entries "
                f"({s.images} images × resolutions)"
            )
        else:
            self.epochs_label.setText("")

    # -- model and adapter --------------------------------------------------------------------
    @Slot()
    def _browse_model(self) -> None:
        d = QFileDialog.getExistingDirectory(
            self, "Base model folder", self.model_edit.text() or str(Path.home())
        )
        if d:
            self.model_edit.setText(d)
            self._on_model()

    @Slot()
    def _on_model(self) -> None:
        path = self.model_edit.text().strip()
        if not self._variant_user:
            v = guess_variant(path)
            if v:
                self.variant.setCurrentIndex(self.variant.findData(v))
        self.wiz.start_model_check(path)

    @Slot(int)
    def _variant_touched(self, _i: int) -> None:
        self._variant_user = True

    @property
    def variant_key(self) -> str:
        return self.variant.currentData()

    @Slot()
    def _browse_adapter(self) -> None:
        start = self.adapter_edit.text() or str(Path.home())
        path, _ = QFileDialog.getOpenFileName(
            self, "Training adapter", start, "LoRA files (*.safetensors);;All files (*)"
        )
        if path:
            self.set_adapter(path)

    def set_adapter(self, path: str) -> None:
        self.adapter_edit.setText(path)
        self._check_adapter()

    @Slot(str)
    def _on_adapter_text(self, text: str) -> None:
        if self.wiz.adapter_checked_for != text.strip():
            self.wiz.adapter_state = "none" if not text.strip() else "unchecked"
        self.update_turbo_warning()
        self.completeChanged.emit()

    @Slot()
    def _check_adapter(self) -> None:
        self.wiz.start_adapter_check(self.adapter_edit.text().strip())

    def show_adapter(self, ok: bool, message: str) -> None:
        self.adapter_status.setText(("✓ " if ok else "✗ ") + message)
        self.adapter_status.setVisible(True)
        self.adapter_status.setStyleSheet(f"color: {OK if ok else BAD};")
        self.update_turbo_warning()
        self.completeChanged.emit()

    @Slot()
    def update_turbo_warning(self, *_a: Any) -> None:
        turbo = self.variant_key == "turbo"
        no_adapter = not self.adapter_edit.text().strip()
        self.turbo_warning.setVisible(turbo and no_adapter)
        self.adapter_explain.setVisible(turbo)
        if not self.adapter_edit.text().strip():
            self.adapter_status.setText("")
        self.adapter_status.setVisible(bool(self.adapter_status.text()))

    # -- output --------------------------------------------------------------------------------
    @Slot(str)
    def _name_edited(self, text: str) -> None:
        self._name_user = True
        self._on_name(text)

    @Slot(str)
    def _on_name(self, text: str) -> None:
        if not self._output_user:
            self.output_edit.setText(str(unique_output(self.wiz.runs_root, safe_name(text))))

    @Slot(str)
    def _output_touched(self, _t: str) -> None:
        self._output_user = True

    @Slot()
    def _browse_output(self) -> None:
        d = QFileDialog.getExistingDirectory(
            self, "Output folder", self.output_edit.text() or str(self.wiz.runs_root)
        )
        if d:
            self.output_edit.setText(d)
            self._output_user = True

    # -- QWizardPage ------------------------------------------------------------------------
    def initializePage(self) -> None:  # noqa: N802 - Qt override
        w = self.wiz
        self.card_label.setText(w.card_text())
        if not self.name_edit.text() or not self._name_user:
            folder = w.dataset_page.folder
            name = safe_name(Path(folder).name if folder else "lora")
            self.name_edit.setText(name)
            self._on_name(name)
        self.update_estimates()
        self.update_turbo_warning()

    def isComplete(self) -> bool:  # noqa: N802 - Qt override
        # a refused or unchecked adapter blocks Start; no adapter (Turbo) only warns
        return self.wiz.adapter_state in ("none", "ok")

    def validatePage(self) -> bool:  # noqa: N802 - Qt override
        try:
            cfg = self.wiz.draft_config().validate()
        except RequestError as exc:
            self.error_label.setText(str(exc))
            return False
        self.error_label.setText("")
        self.wiz.result_config = cfg
        return True
