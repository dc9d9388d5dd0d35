"""The engine queue, visible: the running jobs (one per GPU in use) and every waiting one
(generations and training), each with what it is and, with several GPUs in use, the card it needs;
waiting jobs can be removed and reordered (``EngineController.move``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.widgets.text import plain_tooltip

JobIdRole = Qt.ItemDataRole.UserRole + 1
MIN_ROWS = 5  # the running job and four waiting ones fit without scrolling


def describe_job(job: Any) -> str:
    """One line saying what a job is: "Generate 4 × 1024×1024: a red fox…", "Train: my_run"."""
    req = job.request
    if job.kind == "train":
        cfg = getattr(req, "config", None)
        name = getattr(getattr(cfg, "save", None), "name", "") or "LoRA run"
        steps = getattr(getattr(cfg, "optim", None), "steps", None)
        resume = " (resume)" if getattr(req, "resume", False) else ""
        return f"Train LoRA {name}{resume}" + (f", {steps} steps" if steps else "")
    if job.kind == "caption":
        n = len(getattr(req, "names", ()) or ()) or "all"
        return f"Caption {n} image(s) with {Path(str(getattr(req, 'model_path', ''))).name}"
    prompt = " ".join(str(getattr(req, "prompt", "")).split())
    if len(prompt) > 60:
        prompt = prompt[:59] + "…"
    if job.kind == "enhance":  # the prompt enhancer (zitdesk.engine.enhance)
        return f"Enhance prompt: {prompt}"
    count = getattr(req, "count", 1)
    size = f"{getattr(req, 'width', '?')}×{getattr(req, 'height', '?')}"
    loras = len(getattr(req, "loras", ()) or ())
    extra = f" + {loras} LoRA" if loras else ""
    from zitdesk.engine.edit.options import MODE_LABELS, TXT2IMG, mode_of

    mode = mode_of(req)  # image to image, inpaint, ControlNet, tiled upscale
    if mode != TXT2IMG:
        extra += f" ({MODE_LABELS[mode]})"
    return f"Generate {count} × {size}{extra}: {prompt}"


class QueuePanel(QWidget):
    """A list over an :class:`~ui.engine_host.EngineController`'s running and pending jobs."""

    def __init__(self, controller: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.title = QLabel("Queue")
        self.title.setObjectName("sectionTitle")
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # One line a job (the whole text is its tooltip): four jobs and more show whole in the
        # narrow right column of a 1366×768 window instead of three lines each.
        self.list.setWordWrap(False)
        self.list.setUniformItemSizes(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMinimumHeight(self.rows_height(MIN_ROWS))
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Drop the selected waiting job from the queue")
        self.up_button = QToolButton()
        self.up_button.setText("▲")
        self.up_button.setToolTip("Run earlier")
        self.down_button = QToolButton()
        self.down_button.setText("▼")
        self.down_button.setToolTip("Run later")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.remove_button)
        row.addWidget(self.up_button)
        row.addWidget(self.down_button)
        row.addStretch(1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.title)
        lay.addWidget(self.list, 1)
        lay.addLayout(row)
        self.remove_button.clicked.connect(self.remove_selected)
        self.up_button.clicked.connect(self._up)
        self.down_button.clicked.connect(self._down)
        self.list.currentRowChanged.connect(self._update_buttons)
        for name in ("queue_changed", "job_started", "job_ended", "busy_changed"):
            sig = getattr(controller, name, None)
            if sig is not None:
                sig.connect(self.refresh)
        self.refresh()

    def rows_height(self, rows: int) -> int:
        """The list's height for ``rows`` one-line jobs (frame included)."""
        row = max(self.list.fontMetrics().height() + 4, self.list.sizeHintForRow(0))
        return rows * row + 2 * self.list.frameWidth() + 2

    # -- contents -------------------------------------------------------------------------------
    def pending_ids(self) -> list[str]:
        return [j.job_id for j in self.controller.pending]

    def texts(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    @Slot()
    def refresh(self, *_args) -> None:
        selected = self.selected_id()
        self.list.blockSignals(True)
        self.list.clear()
        running = self.controller.running_jobs
        pending = self.controller.pending
        cards = self._cards_shown(running + pending)
        for job in running:
            what = cards(job) + describe_job(job)  # the state first: a long line is cut at its end
            text = f"❚❚ Paused: {what}" if job.token.paused else f"▶ {what}"
            self._add(text, job.job_id, movable=False)
        for i, job in enumerate(pending, 1):
            self._add(f"{i}. {cards(job)}{describe_job(job)}", job.job_id, movable=True)
        if self.list.count() == 0:
            empty = QListWidgetItem("Nothing is running or waiting.")
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.list.addItem(empty)
        self.list.blockSignals(False)
        n = len(self.controller.pending)
        self.title.setText(f"Queue ({n} waiting)" if n else "Queue")
        self.select(selected)
        self._update_buttons()

    @staticmethod
    def _cards_shown(jobs: list[Any]) -> Any:
        """Each job's cards ("GPU 1 · ") once any job in view is for a card other than the first
        (several GPUs in use, #19); else nothing."""
        from zitdesk.engine.lanes import MAIN, cards_label, lanes_of

        if all(lanes_of(j.request) == (MAIN,) for j in jobs):
            return lambda job: ""
        return lambda job: f"{cards_label(lanes_of(job.request))} · "

    def _add(self, text: str, job_id: str, movable: bool) -> None:
        item = QListWidgetItem(text)
        item.setData(JobIdRole, job_id)
        item.setToolTip(plain_tooltip(text))
        if not movable:
            item.setFlags(Qt.ItemFlag.ItemIsEnabled)
        self.list.addItem(item)

    def selected_id(self) -> str:
        item = self.list.currentItem()
        return str(item.data(JobIdRole) or "") if item is not None else ""

    def select(self, job_id: str) -> bool:
        for i in range(self.list.count()):
            if job_id and self.list.item(i).data(JobIdRole) == job_id:
                self.list.setCurrentRow(i)
                return True
        return False

    # -- commands -------------------------------------------------------------------------------
    @Slot()
    def remove_selected(self) -> None:
        job_id = self.selected_id()
        if job_id in self.pending_ids():
            self.controller.cancel(job_id)

    def _move(self, delta: int) -> None:
        job_id = self.selected_id()
        ids = self.pending_ids()
        if job_id in ids and self.controller.move(job_id, ids.index(job_id) + delta):
            self.select(job_id)

    @Slot()
    def _up(self) -> None:
        self._move(-1)

    @Slot()
    def _down(self) -> None:
        self._move(1)

    @Slot()
    def _update_buttons(self, *_args) -> None:
        ids = self.pending_ids()
        job_id = self.selected_id()
        waiting = job_id in ids
        self.remove_button.setEnabled(waiting)
        self.up_button.setEnabled(waiting and ids.index(job_id) > 0)
        self.down_button.setEnabled(waiting and ids.index(job_id) < len(ids) - 1)
