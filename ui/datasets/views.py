"""The two views over one :class:`~ui.datasets.table_model.DatasetTableModel`.

* :class:`CaptionTable` — a ``QTableView`` with fixed row heights (no per-row measuring, so
  10,000 rows scroll as fast as 100), thumbnails, wrapped captions and badge pills.
* :class:`GridPanel` — a virtualised thumbnail grid (``QListView`` in icon mode, uniform tiles)
  with a caption pane beside it. The pane edits the current image; its text is committed as one
  undoable edit after a pause in typing, on leaving the pane, or when moving to another image.
  A double-click on its preview asks for the crop tool (``crop_requested``).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QListView,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ui.datasets.caption_editor import CaptionEdit, tag_vocabulary
from ui.datasets.delegates import CaptionDelegate, FlagsDelegate, GridDelegate, ThumbDelegate
from ui.datasets.table_model import BADGES, Col, DatasetTableModel, FlagsRole, ItemRole
from ui.widgets.text import esc, make_plain, plain_label
from zitdesk.dataset.images import thumb_path
from zitdesk.train.dataset import bucket_for

ROW_HEIGHT = 64
PREVIEW_SIDE = 256
COMMIT_IDLE_MS = 1200


def model_vocabulary(model: DatasetTableModel, trigger=lambda: "") -> list[str]:
    """Tags used in the model's dataset, the trigger word first (for caption completion)."""
    ds = model.dataset
    if ds is None:
        return []
    return tag_vocabulary((it.caption for it in ds.items), trigger())


class CaptionTable(QTableView):
    def __init__(
        self, model: DatasetTableModel, thumbs, parent: QWidget | None = None, trigger=lambda: ""
    ) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setObjectName("captionTable")
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
        )
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setSortingEnabled(True)
        self.sortByColumn(Col.NAME, Qt.SortOrder.AscendingOrder)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setShowGrid(False)
        vh = self.verticalHeader()
        vh.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vh.setDefaultSectionSize(ROW_HEIGHT)
        vh.hide()
        hh = self.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        hh.setSectionResizeMode(Col.CAPTION, QHeaderView.ResizeMode.Stretch)
        hh.setHighlightSections(False)
        for col, w in (
            (Col.THUMB, ROW_HEIGHT + 8),
            (Col.NAME, 190),
            (Col.SIZE, 90),
            (Col.TOKENS, 64),
            (Col.FLAGS, 190),
        ):
            self.setColumnWidth(col, w)
        self.setItemDelegateForColumn(Col.THUMB, ThumbDelegate(thumbs, self))
        self.setItemDelegateForColumn(
            Col.CAPTION, CaptionDelegate(self, lambda: model_vocabulary(model, trigger))
        )
        self.setItemDelegateForColumn(Col.FLAGS, FlagsDelegate(self))

    def edit_current_caption(self) -> None:
        ix = self.currentIndex()
        if ix.isValid():
            self.edit(self.model().index(ix.row(), Col.CAPTION))


class GridPanel(QWidget):
    """Thumbnail grid + caption pane. ``caption_committed(name, old, new)`` asks for an edit."""

    caption_committed = Signal(str, object, str)
    crop_requested = Signal()  # the preview was double-clicked

    def __init__(
        self, model: DatasetTableModel, thumbs, parent: QWidget | None = None, trigger=lambda: ""
    ) -> None:
        super().__init__(parent)
        self.model = model
        self.thumbs = thumbs
        self.grid = QListView()
        self.grid.setObjectName("datasetGrid")
        self.grid.setModel(model)
        self.grid.setModelColumn(Col.NAME)
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setUniformItemSizes(True)
        self.grid.setLayoutMode(QListView.LayoutMode.Batched)
        self.grid.setBatchSize(400)
        self.grid.setSpacing(4)
        self.grid.setGridSize(GridDelegate.TILE + QSize(6, 6))
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.grid.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.grid.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.grid.setItemDelegate(GridDelegate(thumbs, self.grid))

        self.preview = make_plain(QLabel())
        self.preview.setObjectName("captionPreview")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setFixedHeight(PREVIEW_SIDE + 8)
        self.preview.setMinimumWidth(200)
        self.preview.setToolTip("Double-click to crop this image (Ctrl+Shift+R)")
        self.preview.installEventFilter(self)
        self.name = plain_label("No image selected", "sectionTitle", wrap=True)  # file names
        self.meta = plain_label(object_name="muted", wrap=True)  # caption file name
        self.editor = CaptionEdit(vocabulary=lambda: model_vocabulary(model, trigger))
        self.editor.setObjectName("captionPane")
        self.editor.setPlaceholderText(
            "Write the caption here. Return saves it, Shift+Return starts a new line, Esc reverts."
        )
        self.editor.commit_requested.connect(self.commit)
        self.editor.revert_requested.connect(self.revert)
        self.editor.setEnabled(False)
        self.badges = QLabel()
        self.badges.setWordWrap(True)
        self.badges.setTextFormat(Qt.TextFormat.RichText)
        side = QWidget()
        sv = QVBoxLayout(side)
        sv.setContentsMargins(8, 0, 0, 0)
        sv.addWidget(self.preview)
        sv.addWidget(self.name)
        sv.addWidget(self.meta)
        sv.addWidget(self.badges)
        sv.addWidget(self.editor, 1)
        hint = QLabel(
            "Return save · Shift+Return new line · Esc revert · Alt+↓ / Alt+↑ next / "
            "previous image · F3 next missing caption"
        )
        hint.setObjectName("hint")
        hint.setWordWrap(True)
        sv.addWidget(hint)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.grid)
        split.addWidget(side)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        split.setChildrenCollapsible(False)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

        self._current: str | None = None
        self._loaded_text = ""
        self.resolution: int | None = None  # the check's largest training resolution
        self._timer = QTimer(self, singleShot=True, interval=COMMIT_IDLE_MS)
        self._timer.timeout.connect(self.commit)
        self.editor.textChanged.connect(self._on_text)
        self.grid.selectionModel().currentChanged.connect(self._on_current)
        model.modelReset.connect(self._on_reset)
        model.dataChanged.connect(self._on_data_changed)
        thumbs.ready.connect(self._on_thumbs)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt's name
        if obj is self.preview and event.type() == QEvent.Type.MouseButtonDblClick:
            if self._current is not None:
                self.crop_requested.emit()
            return True
        return super().eventFilter(obj, event)

    @Slot(QModelIndex, QModelIndex)
    def _on_current(self, cur: QModelIndex, _prev: QModelIndex) -> None:
        self.commit()
        self.show_record(cur.data(ItemRole) if cur.isValid() else None)

    def show_record(self, rec) -> None:
        self._current = rec.name if rec is not None else None
        self.editor.blockSignals(True)
        self._show_preview(rec)
        if rec is None:
            self.name.setText("No image selected")
            self.meta.setText("")
            self.badges.setText("")
            self.editor.setPlainText("")
            self.editor.setEnabled(False)
        else:
            self.name.setText(rec.name)
            n = self.model.tokens(rec.name)
            toks = "" if n is None else f" · {n} tokens"
            src = "no caption file yet" if rec.caption is None else rec.caption_name
            self.meta.setText(f"{rec.width}×{rec.height} · {src}{toks}{self._bucket_text(rec)}")
            row = self.model.row_of(rec.name)
            codes = self.model.index(row, Col.FLAGS).data(FlagsRole) if row is not None else []
            self.badges.setText(
                "  ".join(
                    f'<span style="color:{BADGES[c][1].name()}">● {esc(BADGES[c][2])}</span>'
                    for c in codes or []
                )
            )
            self.editor.setEnabled(True)
            self.editor.setPlainText(rec.caption or "")
        self._loaded_text = self.editor.toPlainText()
        self.editor.blockSignals(False)

    def _bucket_text(self, rec) -> str:
        """Where the trainer puts this image: its bucket at the largest training resolution."""
        if rec.excluded:
            return " · excluded from training"
        r = self.resolution
        if not r:
            return ""
        b = bucket_for(rec.width, rec.height, r)
        if b is None:
            return f" · too small for {r} px"
        crop = "" if b == (rec.width, rec.height) else " (scaled, centre-cropped)"
        return f" · trains at {r} px as {b[0]}×{b[1]}{crop}"

    def set_resolution(self, resolution: int | None) -> None:
        self.resolution = resolution
        if self._current is not None and self.model.dataset is not None:
            rec = self.model.dataset.by_name.get(self._current)
            if rec is not None and not self._timer.isActive():
                self.show_record(rec)

    def _show_preview(self, rec) -> None:
        """The 256 px cached thumbnail (one small JPEG read), else the grid's 128 px one."""
        pm = None
        if rec is not None:
            if rec.sha256:
                p = thumb_path(rec.sha256, self.thumbs.cache_dir)
                if p.is_file():
                    pm = QPixmap(str(p))
            if pm is None or pm.isNull():
                pm = self.thumbs.pixmap(rec)
        if pm is None or pm.isNull():
            self.preview.clear()
            return
        self.preview.setPixmap(
            pm.scaled(
                QSize(PREVIEW_SIDE, PREVIEW_SIDE),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )

    def _on_thumbs(self, names: list[str]) -> None:
        if self._current in names and self.model.dataset is not None:
            self._show_preview(self.model.dataset.by_name.get(self._current))

    @Slot()
    def _on_text(self) -> None:
        self._timer.start()

    @Slot()
    def commit(self) -> None:
        """Send the pane's text as an edit if it differs from the caption it was loaded from."""
        self._timer.stop()
        if self._current is None:
            return
        text = self.editor.toPlainText()
        if text == self._loaded_text:
            return
        rec = self.model.dataset.by_name.get(self._current) if self.model.dataset else None
        if rec is None:
            return
        self._loaded_text = text
        if text != (rec.caption or ""):
            self.caption_committed.emit(rec.name, rec.caption, text)

    @Slot()
    def revert(self) -> None:
        """Esc: drop what was typed since the caption was loaded or last committed."""
        self._timer.stop()
        if self.editor.toPlainText() != self._loaded_text:
            self.editor.blockSignals(True)
            self.editor.setPlainText(self._loaded_text)
            self.editor.blockSignals(False)

    @Slot()
    def _on_reset(self) -> None:
        if self._current is not None and self.model.row_of(self._current) is None:
            self.commit()
            self.show_record(None)

    @Slot(QModelIndex, QModelIndex)
    def _on_data_changed(self, tl: QModelIndex, br: QModelIndex, roles=()) -> None:
        if self._current is None or (roles and Qt.ItemDataRole.DecorationRole in roles):
            return
        row = self.model.row_of(self._current)
        if row is None or not tl.row() <= row <= br.row():
            return
        rec = self.model.item(row)
        # an undo/redo or outside change of the shown caption: reload unless the user is typing
        if not self._timer.isActive() and (rec.caption or "") != self.editor.toPlainText():
            self.show_record(rec)
        elif not self._timer.isActive():
            self.show_record(rec)  # refresh badges and token count
