"""A workspace that is not built yet: says plainly what is coming."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class PlaceholderWorkspace(QWidget):
    def __init__(
        self, title: str, lines: list[str], meanwhile: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.title = title
        head = QLabel(title)
        head.setObjectName("placeholderTitle")
        body = QLabel(
            "<p>Coming in a next version:</p><ul>"
            + "".join(f"<li>{ln}</li>" for ln in lines)
            + "</ul>"
            + (f"<p>{meanwhile}</p>" if meanwhile else "")
        )
        body.setWordWrap(True)
        body.setObjectName("muted")
        body.setFixedWidth(640)
        body.setMinimumHeight(body.heightForWidth(640))
        lay = QVBoxLayout(self)
        lay.addStretch(1)
        lay.addWidget(head, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addSpacing(12)
        lay.addWidget(body, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addStretch(2)
