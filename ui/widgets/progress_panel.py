"""Live preview, progress bar, phase text and the predicted memory peak of the next job."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QProgressBar, QSizePolicy, QVBoxLayout, QWidget

from ui.widgets.text import make_plain, plain_label, progress_text


class PreviewLabel(QLabel):
    """Shows a pixmap scaled to fit, keeping the aspect ratio, re-scaled on resize."""

    def __init__(self) -> None:
        super().__init__()
        self._pixmap: QPixmap | None = None
        make_plain(self)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(QSize(200, 200))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setObjectName("muted")

    def set_image(self, pixmap: QPixmap | None, text: str = "") -> None:
        self._pixmap = pixmap
        if pixmap is None:
            self.clear()
            self.setText(text)
        self._rescale()

    @property
    def has_image(self) -> bool:
        return self._pixmap is not None

    def _rescale(self) -> None:
        if self._pixmap is not None and not self._pixmap.isNull():
            super().setPixmap(
                self._pixmap.scaled(
                    self.size(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._rescale()


class ProgressPanel(QWidget):
    link_activated = Signal(str)
    IDLE_TEXT = "Your image appears here. Write a prompt and press Generate (Ctrl+Enter)."

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.preview = PreviewLabel()
        self.preview.set_image(None, self.IDLE_TEXT)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setFormat("Idle")
        self.bar.setValue(0)
        self.phase = plain_label(object_name="muted")  # engine phase text may name a LoRA
        self.prediction = QLabel()
        self.prediction.setObjectName("muted")
        self.prediction.setWordWrap(True)
        self.prediction.setTextFormat(Qt.TextFormat.RichText)
        self.prediction.linkActivated.connect(self.link_activated)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.preview, 1)
        lay.addWidget(self.bar)
        lay.addWidget(self.phase)
        lay.addWidget(self.prediction)
        self.preview_count = 0

    def start(self, total_steps: int) -> None:
        self.bar.setRange(0, max(total_steps, 1))
        self.bar.setValue(0)
        self.bar.setFormat("Starting… %p%")
        self.phase.setText("Starting")
        self.preview_count = 0

    def set_phase(self, text: str) -> None:
        self.phase.setText(text)
        if self.bar.value() == 0:
            self.bar.setFormat(progress_text(text) + "…")  # may name the model folder

    def set_step(self, done_steps: int, total_steps: int, label: str) -> None:
        self.bar.setRange(0, max(total_steps, 1))
        self.bar.setValue(done_steps)
        self.bar.setFormat(f"{progress_text(label)} — %p%")

    def show_preview(self, image: QImage) -> None:
        self.preview_count += 1
        self.preview.set_image(QPixmap.fromImage(image))

    def show_pixmap(self, pixmap: QPixmap) -> None:
        self.preview.set_image(pixmap)

    def finish(self, text: str) -> None:
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if text.startswith("Done") else 0)
        self.bar.setFormat(progress_text(text))
        self.phase.setText("")

    def set_prediction(self, text: str, level: str = "muted") -> None:
        """``text`` is rich text (a "Switch to …" link): callers escape any untrusted piece."""
        self.prediction.setText(text)
        name = {"too_big": "error", "tight": "warning"}.get(level, "muted")
        self.prediction.setObjectName(name)
        self.prediction.style().unpolish(self.prediction)
        self.prediction.style().polish(self.prediction)
