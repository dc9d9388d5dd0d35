"""An inline message strip (info / warning / error) with an optional action button.

Used for out-of-memory errors with a one-click retry, job failures and "parameters loaded" notes,
instead of modal boxes that block the window. The text is plain: messages embed file names, LoRA
names and engine errors, which must never be rendered as markup (:mod:`ui.widgets.text`).
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QFrame, QHBoxLayout, QPushButton, QToolButton, QWidget

from ui.widgets.text import plain_label


class BannerWidget(QFrame):
    action_clicked = Signal(str)  # the action key given to show()
    details_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.label = plain_label(wrap=True, selectable=True)
        self.action_button = QPushButton()
        self.details_button = QPushButton("Details…")
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAutoRaise(True)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 6, 6)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.details_button)
        lay.addWidget(self.action_button)
        lay.addWidget(self.close_button)
        self.action_key = ""
        self.details = ""
        self.action_button.clicked.connect(self._on_action)
        self.details_button.clicked.connect(self.details_requested)
        self.close_button.clicked.connect(self.hide)
        self.hide()

    def show_message(
        self,
        text: str,
        level: str = "info",
        action: str = "",
        action_key: str = "",
        details: str = "",
    ) -> None:
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self.label.setText(text)
        self.action_key = action_key
        self.action_button.setText(action)
        self.action_button.setVisible(bool(action))
        self.details = details
        self.details_button.setVisible(bool(details))
        self.show()

    @Slot()
    def _on_action(self) -> None:
        key = self.action_key
        self.hide()
        self.action_clicked.emit(key)
