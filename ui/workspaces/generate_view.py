"""Layout of the Generate workspace: form and buttons | banner, preview and results | history.

Widgets only; :class:`ui.workspaces.generate.GenerateWorkspace` adds the behaviour.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSplitter, QVBoxLayout, QWidget

from ui.models.gallery_model import GalleryModel
from ui.models.history_model import HistoryModel
from ui.models.history_store import HistoryStore
from ui.thumbnails import ThumbnailCache
from ui.widgets.banner import BannerWidget
from ui.widgets.gallery_panel import GalleryPanel
from ui.widgets.generate_form import GenerateFormWidget
from ui.widgets.history_panel import HistoryPanel
from ui.widgets.progress_panel import ProgressPanel


class GenerateView(QWidget):
    def __init__(
        self, history: HistoryStore, thumbnails: ThumbnailCache, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.form = GenerateFormWidget()
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("primaryButton")
        self.generate_button.setToolTip("Generate (Ctrl+Enter)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("dangerButton")
        self.cancel_button.setToolTip("Cancel the running job (Esc)")
        self.cancel_button.setEnabled(False)
        self.banner = BannerWidget()
        self.progress = ProgressPanel()
        self.gallery_model = GalleryModel(thumbnails, self)
        self.gallery = GalleryPanel(self.gallery_model)
        self.history_model = HistoryModel(history, thumbnails, self)
        self.history = HistoryPanel(self.history_model)

        left = QWidget()
        left_lay = QVBoxLayout(left)
        left_lay.setContentsMargins(0, 0, 0, 0)
        left_lay.addWidget(self.form, 1)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(8, 4, 8, 8)
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button)
        left_lay.addLayout(buttons)
        center = QWidget()
        center_lay = QVBoxLayout(center)
        center_lay.setContentsMargins(4, 4, 4, 4)
        center_lay.addWidget(self.banner)
        self.center_split = QSplitter(Qt.Orientation.Vertical)
        self.center_split.addWidget(self.progress)
        self.center_split.addWidget(self.gallery)
        self.center_split.setStretchFactor(0, 3)
        self.center_split.setStretchFactor(1, 1)
        self.center_split.setChildrenCollapsible(False)
        self.center_split.setSizes([560, 230])
        center_lay.addWidget(self.center_split, 1)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(left)
        self.split.addWidget(center)
        # Right column: prompt history over the engine queue (the workspace adds the queue panel).
        self.right_split = QSplitter(Qt.Orientation.Vertical)
        self.right_split.addWidget(self.history)
        self.right_split.setChildrenCollapsible(False)
        self.split.addWidget(self.right_split)
        self.split.setStretchFactor(0, 0)
        self.split.setStretchFactor(1, 1)
        self.split.setStretchFactor(2, 0)
        self.split.setSizes([440, 700, 300])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.split)
