"""A workspace that is not built yet: says plainly what is coming."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class PlaceholderWorkspace(QWidget):
    def __init__(self, title: str, lines: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        head = QLabel(title)
        head.setObjectName("placeholderTitle")
        body = QLabel(
            "<p>Coming in a next version:</p><ul>"
            + "".join(f"<li>{ln}</li>" for ln in lines)
            + "</ul>"
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


DATASETS = [
    "Import a folder of images and their .txt captions",
    "Thumbnail grid with caption editing, tag autocomplete and undo",
    "Bulk find/replace with a preview, near-duplicate finder",
    "A pre-flight report for the chosen training preset (sizes, token overflow, trigger word)",
]
TRAIN = [
    "Z-Image Turbo LoRA presets by GPU memory (8 / 12 / 16 / 24 GB) and goal",
    "Loss chart and sample images on one timeline, rendered by the Generate pipeline",
    "Pause, try prompts on the live LoRA, resume; checkpoints that load in ComfyUI",
    "Training jobs share the queue with generation, so the GPU is never double-booked",
]
LIBRARY = [
    "Scan your LoRA folders (ComfyUI, Forge, SwarmUI) without copying anything",
    'A coverage badge per LoRA ("loads 240/240 modules"); incompatible ones greyed out, '
    "with the reason",
    "Trigger words and previews from every sidecar format; one click adds a LoRA to the "
    "Generate stack",
]
