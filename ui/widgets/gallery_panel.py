"""Gallery of this session's results: thumbnails and the actions on one image."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QFile, QModelIndex, QPoint, QRect, QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from ui.dialogs.image_viewer import ImageViewerDialog
from ui.models.gallery_model import GalleryItem, GalleryModel, ItemRole

THUMB_BOX = 128  # the square each thumbnail is fitted into (aspect kept, small ones scaled up)
CELL = QSize(THUMB_BOX + 16, THUMB_BOX + 30)


class ThumbnailDelegate(QStyledItemDelegate):
    """A whole thumbnail fitted into a fixed box (never cropped), with its seed below it."""

    def sizeHint(self, option, index) -> QSize:  # noqa: N802
        return CELL

    @staticmethod
    def image_rect(cell: QRect, pm_size: QSize) -> QRect:
        box = QRect(cell.x() + (cell.width() - THUMB_BOX) // 2, cell.y() + 4, THUMB_BOX, THUMB_BOX)
        if pm_size.isEmpty():
            return box
        fitted = pm_size.scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
        return QRect(
            box.x() + (box.width() - fitted.width()) // 2,
            box.y() + (box.height() - fitted.height()) // 2,
            fitted.width(),
            fitted.height(),
        )

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index) -> None:
        p.save()
        if option.state & QStyle.StateFlag.State_Selected:
            p.fillRect(option.rect.adjusted(1, 1, -1, -1), option.palette.highlight())
        pm = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pm, QIcon) and pm.availableSizes():  # the thumbnail at its own size
            sizes = pm.availableSizes()
            pm = pm.pixmap(max(sizes, key=lambda z: z.width() * z.height()))
        if isinstance(pm, QPixmap) and not pm.isNull():
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawPixmap(self.image_rect(option.rect, pm.size()), pm)
        item = index.data(ItemRole)
        seed = getattr(item, "seed", None)
        text_rect = QRect(
            option.rect.x(),
            option.rect.y() + THUMB_BOX + 6,
            option.rect.width(),
            option.rect.height() - THUMB_BOX - 6,
        )
        role = (
            option.palette.ColorRole.HighlightedText
            if option.state & QStyle.StateFlag.State_Selected
            else option.palette.ColorRole.Text
        )
        p.setPen(option.palette.color(role))
        p.drawText(
            text_rect,
            Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop,
            f"seed {seed}" if seed is not None else "",
        )
        p.restore()


class GalleryPanel(QWidget):
    reuse_requested = Signal(object)  # GalleryItem
    show_requested = Signal(object)  # GalleryItem: show it in the big preview (a click)
    more_requested = Signal()  # the next page of older results from the outputs folder
    use_as_input_requested = Signal(object)  # GalleryItem: the init image of the next job
    upscale_requested = Signal(object)  # GalleryItem: "Upscale ×2" (tiled image to image)
    message = Signal(str, str)  # text, level

    def __init__(self, model: GalleryModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.view = QListView()
        self.view.setModel(model)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setIconSize(QSize(THUMB_BOX, THUMB_BOX))
        self.view.setGridSize(CELL + QSize(6, 6))
        self.view.setItemDelegate(ThumbnailDelegate(self.view))
        self.view.setMinimumHeight(CELL.height() + 12)
        self.view.setSpacing(4)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setUniformItemSizes(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.empty = QLabel("Results appear here (newest first, earlier sessions too).")
        self.empty.setObjectName("hint")
        self.actions: dict[str, QAction] = {}
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        for key, text, tip in (
            ("open", "Open", "Open the image large (double-click)"),
            ("folder", "Folder", "Show the output folder"),
            ("copy_prompt", "Copy prompt", "Copy the prompt to the clipboard"),
            ("copy_seed", "Copy seed", "Copy the seed to the clipboard"),
            ("reuse", "Reuse all", "Put every parameter of this image back into the form"),
            ("trash", "Delete", "Move the image to the trash"),
        ):
            act = QAction(text, self)
            act.setToolTip(tip)
            act.triggered.connect(getattr(self, f"_do_{key}"))
            self.actions[key] = act
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(act.trigger)
            bar.addWidget(button)
            act.setProperty("button", button)
        for key, text, tip in (  # menu only (right-click): the button row is full
            ("use_input", "Use as input", "Start image to image or inpaint from this image"),
            ("upscale", "Upscale ×2", "Tiled image to image at twice the size, low strength"),
        ):
            act = QAction(text, self)
            act.setToolTip(tip)
            act.triggered.connect(getattr(self, f"_do_{key}"))
            self.actions[key] = act
        bar.addStretch(1)
        self.more_button = QPushButton("Older…")
        self.more_button.setToolTip("Show the next page of earlier results from the outputs folder")
        self.more_button.clicked.connect(self.more_requested)
        self.more_button.hide()
        bar.addWidget(self.more_button)
        title = QLabel("Results")
        title.setObjectName("sectionTitle")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(title)
        head.addWidget(self.empty, 1)
        lay.addLayout(head)
        lay.addWidget(self.view, 1)
        lay.addLayout(bar)
        self.view.doubleClicked.connect(self._on_double_click)
        self.view.clicked.connect(self._on_click)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().selectionChanged.connect(self._update_actions)
        model.rowsInserted.connect(self._update_actions)
        model.rowsRemoved.connect(self._update_actions)
        model.dataChanged.connect(self._on_data_changed)
        self._update_actions()

    def _on_data_changed(self, _top, _bottom, roles=()) -> None:
        # Uniform item sizes are measured once, before the first thumbnail has loaded (text
        # only: a 14 px strip); lay the items out again when a thumbnail arrives.
        if not roles or Qt.ItemDataRole.DecorationRole in roles:
            self.view.doItemsLayout()

    def set_more(self, left: int) -> None:
        """``left`` older results are not shown yet (0 hides the button)."""
        self.more_button.setVisible(left > 0)
        self.more_button.setText(f"Older ({left})…")

    def current_item(self) -> GalleryItem | None:
        idx = self.view.currentIndex()
        if not idx.isValid():
            return None
        return idx.data(ItemRole)

    def select_row(self, row: int) -> None:
        self.view.setCurrentIndex(self.model.index(row))

    def _update_actions(self, *_args) -> None:
        has = self.current_item() is not None
        for act in self.actions.values():
            act.setEnabled(has)
            if act.property("button") is not None:
                act.property("button").setEnabled(has)
        self.empty.setVisible(self.model.rowCount() == 0)

    @Slot(QPoint)
    def _context_menu(self, pos: QPoint) -> None:
        if not self.view.indexAt(pos).isValid():
            return
        self.view.setCurrentIndex(self.view.indexAt(pos))
        menu = QMenu(self)
        for act in self.actions.values():
            menu.addAction(act)
        menu.exec(self.view.viewport().mapToGlobal(pos))

    @Slot(QModelIndex)
    def _on_click(self, index: QModelIndex) -> None:
        item = index.data(ItemRole)
        if item is not None:
            self.show_requested.emit(item)

    @Slot(QModelIndex)
    def _on_double_click(self, _index: QModelIndex) -> None:
        self._do_open()

    @Slot()
    def _do_open(self) -> None:
        item = self.current_item()
        if item is not None:
            dlg = ImageViewerDialog(item, self)
            dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            dlg.show()

    @Slot()
    def _do_folder(self) -> None:
        item = self.current_item()
        if item is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(item.path).parent)))

    @Slot()
    def _do_copy_prompt(self) -> None:
        item = self.current_item()
        if item is not None:
            QGuiApplication.clipboard().setText(item.prompt)
            self.message.emit("Prompt copied.", "info")

    @Slot()
    def _do_copy_seed(self) -> None:
        item = self.current_item()
        if item is not None:
            QGuiApplication.clipboard().setText(str(item.seed))
            self.message.emit(f"Seed {item.seed} copied.", "info")

    @Slot()
    def _do_reuse(self) -> None:
        item = self.current_item()
        if item is not None:
            self.reuse_requested.emit(item)

    @Slot()
    def _do_use_input(self) -> None:
        item = self.current_item()
        if item is not None:
            self.use_as_input_requested.emit(item)

    def _do_upscale(self) -> None:
        item = self.current_item()
        if item is not None:
            self.upscale_requested.emit(item)

    def _do_trash(self) -> None:
        item = self.current_item()
        if item is None:
            return
        if not Path(item.path).exists() or QFile.moveToTrash(item.path):
            self.model.remove_path(item.path)
            self.message.emit(f"{item.name} moved to the trash.", "info")
        else:
            self.message.emit(
                f"{item.name} could not be moved to the trash; it was left in place.", "warning"
            )
