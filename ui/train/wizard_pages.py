"""The three pages of the New-run wizard (:class:`ui.train.wizard.NewRunWizard` holds the shared
state and the background checks; the pages show it)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWizardPage,
)

from ui.theme import BAD, MUTED, OK, WARN
from ui.train.settings_form import plain_tip
from ui.train.wizard_data import (
    GOALS,
    Goal,
    Survey,
    captions_with_trigger,
)
from zitdesk.io import user_dirs

if TYPE_CHECKING:
    from ui.train.wizard import NewRunWizard


def plain(label: QLabel, wrap: bool = True) -> QLabel:
    """``label`` showing its text as it is (file names, captions), word-wrapped by default."""
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(wrap)
    return label


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------


class DatasetPage(QWizardPage):
    def __init__(self, wizard: NewRunWizard) -> None:
        super().__init__()
        self.wiz = wizard
        self.setTitle("1 · Dataset")
        self.setSubTitle(
            "Pick the images to learn from: one of your datasets or any folder of "
            "images with same-name .txt captions."
        )
        self.combo = QComboBox()
        self.combo.setMinimumWidth(420)
        self.folder_button = QPushButton("Folder…")
        self.folder_button.setToolTip("Use any folder of images (with .txt captions)")
        row = QHBoxLayout()
        row.addWidget(QLabel("Dataset:"))
        row.addWidget(self.combo, 1)
        row.addWidget(self.folder_button)

        self.path_label = plain(QLabel())
        self.path_label.setObjectName("muted")
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.facts_label = plain(QLabel("No dataset chosen yet."))
        self.facts_label.setObjectName("sectionTitle")
        self.verdict_label = plain(QLabel())
        self.issues_label = plain(QLabel())
        self.fix_button = QPushButton("Fix in Datasets…")
        self.fix_button.setToolTip(
            "Open this folder in the Datasets tab (captions, duplicates, small images)"
        )
        fix_row = QHBoxLayout()
        fix_row.addWidget(self.verdict_label, 1)
        fix_row.addWidget(self.fix_button, 0, Qt.AlignmentFlag.AlignTop)

        lay = QVBoxLayout(self)
        lay.addLayout(row)
        lay.addWidget(self.path_label)
        lay.addSpacing(8)
        lay.addWidget(self.facts_label)
        lay.addLayout(fix_row)
        lay.addWidget(self.issues_label)
        lay.addStretch(1)
        hint = plain(
            QLabel(
                "A good dataset: 15–50 sharp images of the subject with varied backgrounds, poses "
                "and light, and captions that describe everything except what the LoRA should learn. "
                "The Datasets tab imports images, edits captions in bulk and runs this same check."
            )
        )
        hint.setObjectName("hint")
        lay.addWidget(hint)

        self.combo.currentIndexChanged.connect(self._on_choice)
        self.folder_button.clicked.connect(self.choose_folder)
        self.fix_button.clicked.connect(self._fix)

    def add_dataset(self, path: Path, select: bool = False) -> None:
        p = Path(path)
        i = self.combo.findData(str(p))
        if i < 0:
            self.combo.addItem(p.name or str(p), str(p))
            i = self.combo.count() - 1
            self.combo.setItemData(i, plain_tip(str(p)), Qt.ItemDataRole.ToolTipRole)
        if select:
            self.combo.setCurrentIndex(i)

    @Slot()
    def choose_folder(self) -> None:
        start = self.folder or str(user_dirs()["data"] / "datasets")
        d = QFileDialog.getExistingDirectory(self, "Dataset folder", start)
        if d:
            self.add_dataset(Path(d), select=True)

    @property
    def folder(self) -> str:
        return self.combo.currentData() or ""

    @Slot(int)
    def _on_choice(self, _i: int) -> None:
        folder = self.folder
        self.path_label.setText(folder)
        self.fix_button.setEnabled(bool(folder))
        if folder:
            self.facts_label.setText("Checking the dataset…")
            self.verdict_label.setText("")
            self.issues_label.setText("")
            self.wiz.start_survey(folder)
        self.completeChanged.emit()

    def show_survey(self, s: Survey) -> None:
        if s.error:
            self.facts_label.setText(s.error)
            self.verdict_label.setText("")
            self.issues_label.setText("")
            self.completeChanged.emit()
            return
        if not s.images:
            self.facts_label.setText(
                "No images in this folder: add images (PNG, JPEG, WebP…) with same-name .txt "
                "captions, or pick another folder."
            )
            self.verdict_label.setText("")
            self.issues_label.setText("")
            self.completeChanged.emit()
            return
        missing = s.images - s.captioned
        facts = f"{s.images} image{'s' if s.images != 1 else ''}, "
        facts += (
            "all with captions"
            if not missing and s.images
            else (f"{s.captioned} with captions, {missing} without")
        )
        self.facts_label.setText(facts)
        rep = s.report
        if rep is None:
            self.issues_label.setText("")
            self.verdict_label.setStyleSheet(f"color: {MUTED};")
            if self.wiz.checking:
                self.verdict_label.setText(
                    "Running the pre-flight check (captions, sizes, duplicates)… You can go on "
                    "meanwhile."
                )
            else:
                self.verdict_label.setText(self.wiz.check_error)
        else:
            self.verdict_label.setText(rep.summary)
            color = {"ready": OK, "warnings": WARN, "blocked": BAD}.get(rep.verdict, MUTED)
            self.verdict_label.setStyleSheet(f"color: {color};")
            lines = [f"• {i.message}" for i in rep.issues if i.severity in ("error", "warning")]
            if len(lines) > 5:
                lines = lines[:5] + [f"… and {len(lines) - 5} more in the Datasets tab."]
            self.issues_label.setText("\n".join(lines))
        self.completeChanged.emit()

    @Slot()
    def _fix(self) -> None:
        if self.folder:
            self.wiz.open_dataset.emit(self.folder)

    def isComplete(self) -> bool:  # noqa: N802 - Qt override
        s = self.wiz.survey
        if s is None or s.folder != self.folder or s.error or not s.images:
            return False
        if s.buckets and not any(s.buckets.values()):
            return False  # no image fits any bucket: nothing to train
        return s.report is None or s.report.verdict != "blocked"


class GoalPage(QWizardPage):
    def __init__(self, wizard: NewRunWizard) -> None:
        super().__init__()
        self.wiz = wizard
        self.setTitle("2 · What it learns")
        self.setSubTitle(
            "This sets sensible defaults for the LoRA size, steps and how training "
            "samples noise; all of them can be changed in Full settings."
        )
        self.group = QButtonGroup(self)
        self.radios: dict[str, QRadioButton] = {}
        goals = QVBoxLayout()
        for i, g in enumerate(GOALS.values()):
            r = QRadioButton(g.label)
            r.setStyleSheet("font-weight: 600;")
            blurb = plain(
                QLabel(
                    f"{g.blurb}  (rank {g.rank}, {g.steps} steps, caption dropout "
                    f"{g.caption_dropout:g}, {g.timestep_mode} timesteps)"
                )
            )
            blurb.setObjectName("muted")
            blurb.setContentsMargins(24, 0, 0, 4)
            self.group.addButton(r, i)
            self.radios[g.key] = r
            goals.addWidget(r)
            goals.addWidget(blurb)
        self.radios["character"].setChecked(True)

        self.trigger = QLineEdit()
        self.trigger.setPlaceholderText("e.g. ohwx, mycat — a word the model does not know")
        self.trigger.setMinimumWidth(320)
        trig_hint = plain(
            QLabel(
                "Use this word in prompts to call up what you trained. It replaces [trigger] in "
                "captions, or is put in front of captions without it. Leave it empty to train "
                "without one."
            )
        )
        trig_hint.setObjectName("muted")
        self.trigger_warning = plain(QLabel())
        self.trigger_warning.setObjectName("warning")
        self.trigger_fix = QPushButton("Fix in Datasets…")
        warn_row = QHBoxLayout()
        warn_row.addWidget(self.trigger_warning, 1)
        warn_row.addWidget(self.trigger_fix, 0, Qt.AlignmentFlag.AlignTop)
        self.trigger_warning.hide()
        self.trigger_fix.hide()

        self.prompts = QPlainTextEdit()
        self.prompts.setFixedHeight(56)
        self.prompts.setToolTip(
            "Rendered every 250 steps with your LoRA, so you can watch it "
            "learn. One per line; [trigger] becomes the trigger word."
        )
        self._prompts_goal = ""

        trig_row = QHBoxLayout()
        trig_row.addWidget(QLabel("Trigger word:"))
        trig_row.addWidget(self.trigger)
        trig_row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addLayout(goals)
        lay.addSpacing(6)
        lay.addLayout(trig_row)
        lay.addWidget(trig_hint)
        lay.addLayout(warn_row)
        lay.addSpacing(6)
        lay.addWidget(
            plain(
                QLabel(
                    "Sample prompts — rendered every 250 steps with the LoRA so far, so you can watch it "
                    "learn (one per line; [trigger] becomes the trigger word):"
                )
            )
        )
        lay.addWidget(self.prompts)
        lay.addStretch(1)

        self.group.idToggled.connect(self._on_goal)
        self.trigger.textChanged.connect(self.update_trigger_warning)
        self.trigger_fix.clicked.connect(self.wiz.dataset_page._fix)
        self._on_goal(0, True)

    @property
    def goal(self) -> Goal:
        for key, r in self.radios.items():
            if r.isChecked():
                return GOALS[key]
        return GOALS["character"]

    def set_goal(self, key: str) -> None:
        self.radios[key].setChecked(True)

    @Slot(int, bool)
    def _on_goal(self, _id: int, on: bool) -> None:
        if not on:
            return
        g = self.goal
        # replace the prompts only while they are another goal's defaults
        current = tuple(ln for ln in self.prompts.toPlainText().splitlines() if ln.strip())
        if not current or current == GOALS.get(self._prompts_goal, g).prompts:
            self.prompts.setPlainText("\n".join(g.prompts))
        self._prompts_goal = g.key
        self.wiz.goal_changed()

    def sample_prompts(self) -> tuple[str, ...]:
        return tuple(ln.strip() for ln in self.prompts.toPlainText().splitlines() if ln.strip())

    @Slot()
    def update_trigger_warning(self, *_a: Any) -> None:
        trig = self.trigger.text().strip()
        s = self.wiz.survey
        n = captions_with_trigger(s.captions, trig) if (s and trig) else 0
        if n:
            total = len(s.captions)
            self.trigger_warning.setText(
                f"{n} of {total} captions already contain “{trig}”: training puts it in front "
                f"again (“{trig}, {trig}, …”). Write [trigger] in those captions instead, or "
                "leave the trigger word empty."
            )
        self.trigger_warning.setVisible(bool(n))
        self.trigger_fix.setVisible(bool(n))

    def initializePage(self) -> None:  # noqa: N802 - Qt override
        self.update_trigger_warning()
