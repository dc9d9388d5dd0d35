"""Auto-caption the open dataset with a local tagger or vision-language model (issue #18).

The dialog builds a :class:`~zitdesk.caption.request.CaptionRequest` and submits it to the one
engine queue (kind ``caption``), so it waits behind a running generation or training job and
never shares the GPU with one. The job only reports (it never writes a caption): each
:class:`~zitdesk.caption.request.CaptionReady` comes back through
``EngineController.caption_ready``. *Preview* captions the first few images of the chosen scope
and shows old → new as a word diff; *Caption N images* runs on all of them and, when the job
ends (finished or cancelled), pushes the results as **one** undoable command through the
:class:`~ui.datasets.session.DatasetSession` (snapshot, journal, atomic writes). A caption the
user edited after the job started differs from the text the request carried and is left alone
(:meth:`zitdesk.dataset.store.Dataset.apply_changes`).

The chosen model folders are remembered in the app settings (``caption_tagger_path``,
``caption_vlm_path``); *Find* lists the tagger and VLM folders in the usual places
(:mod:`zitdesk.caption.locate`); a wrong folder is said in one sentence and blocks the buttons.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QStackedWidget,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.datasets.bulk_dialog import diff_html
from ui.widgets.text import plain_label
from zitdesk.caption.locate import check_model, find_candidates
from zitdesk.caption.request import CaptionReady, CaptionRequest

PREVIEW_COUNT = 3
KINDS = (("tagger", "Tagger — booru tags (WD ONNX)"), ("vlm", "Vision-language model — sentences"))
MODES = (
    ("replace", "Replace the caption"),
    ("append", "Append to the caption"),
    ("prepend", "Prepend tags to the description"),
)
TEMPLATES = (
    ("short", "Short (one sentence)"),
    ("detailed", "Detailed"),
    ("training", "For training: everything but the trigger subject"),
)
QUANTS = (("none", "Full precision"), ("8bit", "8-bit (CUDA, bitsandbytes)"), ("4bit", "4-bit"))
SETTING = {"tagger": "caption_tagger_path", "vlm": "caption_vlm_path"}


def _eta(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


class CaptionDialog(QDialog):
    """See the module doc. ``selected``: the image names selected in the workspace."""

    def __init__(
        self,
        session: Any,
        controller: Any,
        settings: Any = None,
        selected: list[str] | tuple[str, ...] = (),
        trigger: str = "",
        parent: QWidget | None = None,
        saver: Any = None,
    ) -> None:
        super().__init__(parent)
        self.saver = saver  # the app's SettingsSaver: the chosen folders are kept
        self.setWindowTitle("Auto-caption")
        self.session, self.controller, self.settings = session, controller, settings
        self.selected = list(selected)
        self._job_id = ""
        self._purpose = ""
        self._results: list[CaptionReady] = []
        self._warnings: list[str] = []
        self.last_label = ""

        self.kind = QComboBox()
        for key, label in KINDS:
            self.kind.addItem(label, key)
        self.path = QLineEdit()
        self.path.setPlaceholderText("the model's folder")
        browse = QPushButton("Browse…")
        self.find_button = QToolButton()
        self.find_button.setText("Find…")
        self.find_button.setToolTip("Tagger and VLM folders in the HF cache and ComfyUI models")
        self.find_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.find_menu = QMenu(self.find_button)
        self.find_button.setMenu(self.find_menu)
        self.find_menu.aboutToShow.connect(self._fill_find_menu)
        path_row = QHBoxLayout()
        path_row.addWidget(self.path, 1)
        path_row.addWidget(browse)
        path_row.addWidget(self.find_button)
        self.problem = plain_label("", "warning", wrap=True)

        self.options = QStackedWidget()
        tag_page, vlm_page = QWidget(), QWidget()
        tf, vf = QFormLayout(tag_page), QFormLayout(vlm_page)
        tf.setContentsMargins(0, 0, 0, 0)
        vf.setContentsMargins(0, 0, 0, 0)
        self.general = self._spin(0.35)
        self.character = self._spin(0.85)
        self.exclude = QLineEdit()
        self.exclude.setPlaceholderText("comma-separated, e.g. simple background, signature")
        self.ratings = QCheckBox("Add the rating tag (general, sensitive, …)")
        self.underscores = QCheckBox("Underscores to spaces (long hair, not long_hair)")
        self.underscores.setChecked(True)
        thr = QHBoxLayout()
        thr.addWidget(QLabel("General"))
        thr.addWidget(self.general)
        thr.addSpacing(12)
        thr.addWidget(QLabel("Character"))
        thr.addWidget(self.character)
        thr.addStretch(1)
        tf.addRow("Thresholds", thr)
        tf.addRow("Leave out", self.exclude)
        tf.addRow("", self.ratings)
        tf.addRow("", self.underscores)
        self.template = QComboBox()
        for key, label in TEMPLATES:
            self.template.addItem(label, key)
        self.trigger = QLineEdit(trigger)
        self.trigger.setPlaceholderText("the trigger word (used by 'For training')")
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(8, 1024)
        self.max_tokens.setValue(160)
        self.quant = QComboBox()
        for key, label in QUANTS:
            self.quant.addItem(label, key)
        vf.addRow("Prompt", self.template)
        vf.addRow("Trigger", self.trigger)
        vf.addRow("Max tokens", self.max_tokens)
        vf.addRow("Load as", self.quant)
        self.options.addWidget(tag_page)
        self.options.addWidget(vlm_page)

        self.scope_group = QButtonGroup(self)
        scope_row = QHBoxLayout()
        self.scopes: dict[str, QRadioButton] = {}
        for key in ("selected", "all", "uncaptioned"):
            rb = QRadioButton()
            self.scopes[key] = rb
            self.scope_group.addButton(rb)
            scope_row.addWidget(rb)
        scope_row.addStretch(1)
        self.mode = QComboBox()
        for key, label in MODES:
            self.mode.addItem(label, key)

        form = QFormLayout()
        form.addRow("Model", self.kind)
        folder_box = QVBoxLayout()  # the path, and under it why it cannot be used
        folder_box.setSpacing(2)
        folder_box.addLayout(path_row)
        folder_box.addWidget(self.problem)
        form.addRow("Folder", folder_box)
        form.addRow("Options", self.options)
        form.addRow("Images", scope_row)
        form.addRow("Mode", self.mode)

        self.preview = QTextBrowser()
        self.preview.setOpenLinks(False)
        self.preview.setMinimumHeight(170)
        self.progress = QProgressBar()
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.status = plain_label("", "muted", wrap=True)
        self.preview_button = QPushButton(f"Preview ({PREVIEW_COUNT} images)")
        self.run_button = QPushButton("Caption")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel job")
        self.close_button = QPushButton("Close")
        buttons = QHBoxLayout()
        buttons.addWidget(self.preview_button)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)

        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(QLabel("Preview"))
        lay.addWidget(self.preview, 1)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addLayout(buttons)
        self.resize(880, 660)

        self.kind.currentIndexChanged.connect(self._kind_changed)
        self.path.textChanged.connect(self._validate)
        browse.clicked.connect(self._browse)
        for rb in self.scopes.values():
            rb.toggled.connect(self._update_buttons)
        self.preview_button.clicked.connect(self.start_preview)
        self.run_button.clicked.connect(self.start_run)
        self.cancel_button.clicked.connect(self.cancel_job)
        self.close_button.clicked.connect(self.reject)
        c = controller
        c.caption_ready.connect(self._on_ready)
        c.job_started.connect(self._on_started)
        c.phase_changed.connect(self._on_phase)
        c.warning.connect(self._on_warning)
        c.job_ended.connect(self._on_ended)

        self._count_scopes()
        self._kind_changed()
        self.preview.setHtml(
            '<i style="color:#9aa0a6">Preview a few images before captioning all.</i>'
        )

    @staticmethod
    def _spin(value: float) -> QDoubleSpinBox:
        s = QDoubleSpinBox()
        s.setRange(0.0, 1.0)
        s.setSingleStep(0.05)
        s.setDecimals(2)
        s.setValue(value)
        return s

    # --- model choice ----------------------------------------------------------------------------

    @property
    def kind_key(self) -> str:
        return str(self.kind.currentData())

    def _kind_changed(self) -> None:
        self.options.setCurrentIndex(0 if self.kind_key == "tagger" else 1)
        saved = getattr(self.settings, SETTING[self.kind_key], "") if self.settings else ""
        self.path.setText(saved or "")
        self._validate()

    def _validate(self) -> None:
        text = self.path.text().strip()
        self.problem.setText(check_model(self.kind_key, text) if text else "")
        self.problem.setVisible(bool(self.problem.text()))
        self._update_buttons()

    def _browse(self) -> None:
        start = self.path.text().strip() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Choose the model folder", start)
        if folder:
            self.path.setText(folder)

    def _fill_find_menu(self) -> None:
        self.find_menu.clear()
        roots = getattr(self.settings, "extra_model_roots", []) if self.settings else []
        found = [c for c in find_candidates(roots) if c.kind == self.kind_key]
        if not found:
            act = self.find_menu.addAction("Nothing found in the HF cache or ComfyUI folders")
            act.setEnabled(False)
        for c in found:
            act = self.find_menu.addAction(f"{c.label}  ({c.origin})")
            act.setData(c.path)
            act.triggered.connect(self._pick_found)

    @Slot()
    def _pick_found(self) -> None:
        act = self.sender()
        if act is not None:
            self.path.setText(str(act.data()))

    # --- scope -----------------------------------------------------------------------------------

    def _items(self) -> list:
        ds = self.session.dataset
        return list(ds.items) if ds is not None else []

    def _count_scopes(self) -> None:
        items = self._items()
        n_unc = sum(1 for it in items if it.missing_caption)
        self.scopes["selected"].setText(f"Selected ({len(self.selected)})")
        self.scopes["all"].setText(f"All ({len(items)})")
        self.scopes["uncaptioned"].setText(f"Only uncaptioned ({n_unc})")
        self.scopes["selected"].setEnabled(bool(self.selected))
        self.scopes["selected" if len(self.selected) > 1 else "all"].setChecked(True)

    def scope(self) -> str:
        return next((k for k, rb in self.scopes.items() if rb.isChecked()), "all")

    def scope_names(self) -> list[str]:
        items = self._items()
        if self.scope() == "selected":
            chosen = set(self.selected)
            return [it.name for it in items if it.name in chosen]
        if self.scope() == "uncaptioned":
            return [it.name for it in items if it.missing_caption]
        return [it.name for it in items]

    # --- jobs ------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self._job_id)

    def _update_buttons(self) -> None:
        ok = bool(self.path.text().strip()) and not self.problem.text() and not self.running
        n = len(self.scope_names())
        self.run_button.setText(f"Caption {n} image{'s' if n != 1 else ''}")
        self.preview_button.setEnabled(ok and n > 0)
        self.run_button.setEnabled(ok and n > 0)
        self.cancel_button.setEnabled(self.running)
        for w in (self.kind, self.path, self.options, self.mode, self.find_button):
            w.setEnabled(not self.running)

    def build_request(self, preview: bool) -> CaptionRequest:
        names = self.scope_names()
        ds = self.session.dataset
        expected = tuple((n, ds.by_name[n].caption) for n in names if n in ds.by_name)
        return CaptionRequest(
            folder=str(ds.folder),
            model_kind=self.kind_key,
            model_path=self.path.text().strip(),
            names=tuple(names),
            mode=str(self.mode.currentData()),
            limit=PREVIEW_COUNT if preview else 0,
            expected=expected,
            general_threshold=self.general.value(),
            character_threshold=self.character.value(),
            exclude=tuple(t.strip() for t in self.exclude.text().split(",") if t.strip()),
            ratings=self.ratings.isChecked(),
            underscores_to_spaces=self.underscores.isChecked(),
            template=str(self.template.currentData()),
            trigger=self.trigger.text().strip(),
            max_tokens=self.max_tokens.value(),
            quant=str(self.quant.currentData()),
        )

    @Slot()
    def start_preview(self) -> None:
        self._start("preview")

    @Slot()
    def start_run(self) -> None:
        self._start("run")

    def _start(self, purpose: str) -> None:
        if self.running or self.session.dataset is None:
            return
        req = self.build_request(purpose == "preview")
        if self.settings is not None:
            setattr(self.settings, SETTING[self.kind_key], req.model_path)
            if self.saver is not None:
                self.saver.mark_dirty()
        self._purpose, self._job_id = purpose, req.job_id
        self._results, self._warnings = [], []
        total = min(len(req.names), PREVIEW_COUNT) if purpose == "preview" else len(req.names)
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(0)
        if purpose == "preview":
            self.preview.clear()
        job = self.controller.submit(req, "caption")
        waiting = job.state == "queued"  # another job runs on the card it needs
        self.status.setText("Waiting for the running job to finish…" if waiting else "Starting…")
        self._update_buttons()

    @Slot()
    def cancel_job(self) -> None:
        if self.running:
            self.controller.cancel(self._job_id)
            self.status.setText("Cancelling after the current image…")

    @Slot(object)
    def _on_started(self, ev) -> None:
        if ev.job_id == self._job_id:
            self.status.setText("Loading the model…")

    @Slot(object)
    def _on_phase(self, ev) -> None:
        if ev.job_id == self._job_id and ev.phase == "loading":
            self.status.setText(f"Loading {ev.detail}…")

    @Slot(object)
    def _on_warning(self, ev) -> None:
        if ev.job_id == self._job_id:
            self._warnings.append(ev.message)

    @Slot(object)
    def _on_ready(self, ev: CaptionReady) -> None:
        if ev.job_id != self._job_id:
            return
        self._results.append(ev)
        self.progress.setMaximum(max(1, ev.total))
        self.progress.setValue(ev.index + 1)
        left = f" · about {_eta(ev.eta_s)} left" if ev.index + 1 < ev.total else ""
        self.status.setText(f"{ev.index + 1} / {ev.total}{left}")
        self._append_preview(ev)

    def _append_preview(self, ev: CaptionReady) -> None:
        row = (
            f'<p style="margin:2px 0 8px 0"><b>{html.escape(ev.name)}</b><br>'
            f"{diff_html(ev.old, ev.new)}</p>"
        )
        self.preview.append(row)

    @Slot(object)
    def _on_ended(self, job) -> None:
        if job.job_id != self._job_id:
            return
        purpose, self._job_id = self._purpose, ""
        state, ev = job.state, job.result
        done = len(self._results)
        if state == "failed":
            self.status.setText(getattr(ev, "message", "") or "The caption job failed.")
        elif purpose == "preview":
            self.status.setText(
                f"Preview of {done} image(s); nothing was written. "
                "Caption them all when it looks right."
            )
        else:
            self._apply(state == "cancelled")
        if self._warnings:
            more = f" (and {len(self._warnings) - 2} more)" if len(self._warnings) > 2 else ""
            self.status.setText(self.status.text() + " " + " ".join(self._warnings[:2]) + more)
        self._update_buttons()

    def _apply(self, cancelled: bool) -> None:
        changes = [(r.name, r.old, r.new) for r in self._results if r.new != r.old]
        what = "tagger" if self.kind_key == "tagger" else "model"
        label = (
            f"Auto-caption {len(changes)} image(s) with the {what} {Path(self.path.text()).name}"
        )
        before = self.session.undo_stack.count()
        if changes:
            self.session.edit(label, changes, snapshot=True)
        self.last_label = label if self.session.undo_stack.count() > before else ""
        head = f"Cancelled after {len(self._results)} image(s); " if cancelled else ""
        self.status.setText(
            f"{head}{len(changes)} caption(s) changed as one step (Ctrl+Z in the dataset undoes it)."
            if changes
            else f"{head}no caption changed."
        )

    def reject(self) -> None:
        if self.running:
            self.cancel_job()  # what is finished is still applied when the job ends
        super().reject()


def open_caption_dialog(actions: Any, parent: QWidget | None = None) -> CaptionDialog | None:
    """The Datasets workspace's "Caption…" action: the dialog over the open dataset, with the
    main window's engine controller and settings (``None`` without a dataset or an engine)."""
    session = actions.session
    win = (parent or actions.dialog_parent).window()
    controller = getattr(win, "controller", None)
    if session.dataset is None or controller is None:
        return None
    actions.commit_editors.emit()
    dlg = CaptionDialog(
        session,
        controller,
        getattr(win, "settings", None),
        actions.selected_names(),
        actions.training_trigger() or session.trigger,
        parent=actions.dialog_parent,
        saver=getattr(win, "saver", None),
    )
    dlg.show()
    return dlg
