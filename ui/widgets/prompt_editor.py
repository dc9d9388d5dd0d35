"""Prompt editor with the Qwen3 token counter (Z-Image's 512-token budget, chat template included).

The tokenizer (transformers; about 2 s to load, and it pulls in torch) is loaded on the thread pool
after the window is up, via :meth:`PromptEditorWidget.load_tokenizer`. Counting also runs on the
pool, debounced, and only the newest text's result is shown. If the tokenizer module is missing
or fails, the editor still works and says the counter is unavailable.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.tasks import TaskSignals, run_task
from ui.widgets.text import plain_tooltip
from zitdesk.models.tokenizer import DEFAULT_BUDGET

log = logging.getLogger(__name__)

PLACEHOLDER = (
    "Describe the image. Lists work best:\n"
    "- a rainy street in Tokyo at night, neon signs\n"
    "- a girl -- short brown hair -- yellow raincoat -- on the left\n"
    "- a black cat -- on the right"
)


def _load_tokenizer() -> Any:
    from zitdesk.models.tokenizer import default_tokenizer

    return default_tokenizer()


def _count(prompt: str, tokenizer: Any, budget: int) -> Any:
    from zitdesk.models.tokenizer import count_tokens

    return count_tokens(prompt, tokenizer, budget=budget)


class PromptEditorWidget(QWidget):
    text_changed = Signal()
    count_changed = Signal(object)  # zitdesk.models.tokenizer.TokenCount
    structure_requested = Signal()

    def __init__(self, budget: int = DEFAULT_BUDGET, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.budget = budget
        self.edit = QPlainTextEdit()
        self.edit.setPlaceholderText(PLACEHOLDER)
        self.edit.setTabChangesFocus(True)
        self.edit.setMinimumHeight(110)
        self.counter = QLabel("Tokens: loading the tokenizer…")
        self.counter.setObjectName("muted")
        self.structure_button = QPushButton("Structure…")
        self.structure_button.setToolTip(
            "Build the prompt as a scene plus characters (attributes, position); "
            "Z-Image follows that markdown list better than one long sentence."
        )
        self.warning = QLabel()
        self.warning.setObjectName("warning")
        self.warning.setWordWrap(True)
        self.warning.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.counter, 1)
        row.addWidget(self.structure_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.edit)
        lay.addLayout(row)
        lay.addWidget(self.warning)

        self.count: Any = None
        self._tokenizer: Any = None
        self._tokenizer_state = "idle"  # idle | loading | ready | failed
        self._counting = False
        self._dirty = False
        self._tasks = TaskSignals(self)
        self._tasks.succeeded.connect(self._on_task_done)
        self._tasks.failed.connect(self._on_task_failed)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(150)
        self._debounce.timeout.connect(self._start_count)
        self.edit.textChanged.connect(self._on_text_changed)
        self.structure_button.clicked.connect(self.structure_requested)

    # -- text -----------------------------------------------------------------------------------
    def text(self) -> str:
        return self.edit.toPlainText()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(text)

    def focus_prompt(self) -> None:
        self.edit.setFocus()
        self.edit.selectAll()

    @Slot()
    def _on_text_changed(self) -> None:
        self.text_changed.emit()
        self._debounce.start()

    # -- tokenizer ------------------------------------------------------------------------------
    @property
    def tokenizer_ready(self) -> bool:
        return self._tokenizer_state == "ready"

    def load_tokenizer(self, loader=None) -> None:
        """Start loading the tokenizer on the pool (idempotent)."""
        if self._tokenizer_state in ("loading", "ready"):
            return
        self._tokenizer_state = "loading"
        run_task(self._tasks, "load", loader or _load_tokenizer)

    def set_tokenizer(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._tokenizer_state = "ready"
        self._start_count()

    @Slot()
    def _start_count(self) -> None:
        if self._tokenizer_state != "ready":
            return
        if self._counting:
            self._dirty = True
            return
        self._counting = True
        self._dirty = False
        run_task(self._tasks, "count", _count, self.text(), self._tokenizer, self.budget)

    @Slot(object, object)
    def _on_task_done(self, tag: object, result: object) -> None:
        if tag == "load":
            self.set_tokenizer(result)
            return
        self._counting = False
        if self._dirty:
            self._start_count()
            return
        self._show_count(result)

    @Slot(object, object)
    def _on_task_failed(self, tag: object, message: object) -> None:
        if tag == "load":
            self._tokenizer_state = "failed"
            log.warning("token counter unavailable: %s", message)
            self.counter.setText("Tokens: counter unavailable")
            tip = f"The Qwen tokenizer could not be loaded: {message}"  # may quote a path
            self.counter.setToolTip(plain_tooltip(tip))
            return
        self._counting = False
        self.counter.setText("Tokens: could not count this prompt")

    def _show_count(self, count: Any) -> None:
        self.count = count
        text = f"Tokens: {count.prompt_tokens} / {count.available}"
        if count.truncated:
            text += f" — {count.overflow} over"
        self.counter.setText(text)
        self.counter.setToolTip(
            f"Z-Image reads at most {count.budget} tokens; the chat template uses "
            f"{count.template_tokens}, leaving {count.available} for the prompt."
        )
        self.counter.setObjectName(
            "error" if count.truncated else "warning" if count.warning else "muted"
        )
        self.counter.style().unpolish(self.counter)
        self.counter.style().polish(self.counter)
        self.warning.setText(count.warning)
        self.warning.setVisible(bool(count.warning))
        self.count_changed.emit(count)
