"""Open a result large, with its prompt and seed."""

from __future__ import annotations

from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDialog, QVBoxLayout, QWidget

from ui.models.gallery_model import GalleryItem
from ui.widgets.progress_panel import PreviewLabel
from ui.widgets.text import plain_label, window_title


class ImageViewerDialog(QDialog):
    def __init__(self, item: GalleryItem, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(window_title(item.name))
        self.resize(900, 900)
        self.image = PreviewLabel()
        pm = QPixmap(item.path)  # one image, on request
        self.image.set_image(None if pm.isNull() else pm, f"{item.path} cannot be shown.")
        info = plain_label(
            f"Seed {item.seed} · {item.width}×{item.height}\n{item.prompt}", "muted", wrap=True
        )
        lay = QVBoxLayout(self)
        lay.addWidget(self.image, 1)
        lay.addWidget(info)
