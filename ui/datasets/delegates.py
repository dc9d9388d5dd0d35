"""Painting and editing for the dataset views: thumbnails, wrapped captions, badges, grid tiles.

The caption editor is a :class:`~ui.datasets.caption_editor.CaptionEdit` (captions may span
lines): Return commits, Shift+Return inserts a line break, Escape reverts, focus-out commits (Qt's
default); entering it selects the whole caption and tags already used complete. Painting never decodes an image: thumbnails are the
model's cached pixmaps, or a grey placeholder while they load.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QModelIndex, QObject, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from ui.datasets.caption_editor import CaptionEdit, tag_completer
from ui.datasets.table_model import BADGES, Col, FlagsRole, ItemRole

PLACEHOLDER = QColor("#2b2f36")


def _draw_pixmap_fit(p: QPainter, rect: QRect, pm: QPixmap | None, failed: bool = False) -> None:
    if pm is None or pm.isNull():
        p.fillRect(rect.adjusted(4, 4, -4, -4), PLACEHOLDER)
        if failed:
            p.setPen(QColor("#e05545"))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, "unreadable")
        return
    size = pm.size().scaled(rect.size() - QSize(8, 8), Qt.AspectRatioMode.KeepAspectRatio)
    target = QRect(0, 0, size.width(), size.height())
    target.moveCenter(rect.center())
    p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    p.drawPixmap(target, pm)


def _draw_selection(p: QPainter, option: QStyleOptionViewItem) -> None:
    style = option.widget.style() if option.widget else None
    if style is not None:
        opt = QStyleOptionViewItem(option)
        opt.text = ""
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, p, option.widget)


class ThumbDelegate(QStyledItemDelegate):
    def __init__(self, thumbs, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thumbs = thumbs

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        _draw_selection(p, option)
        pm = index.data(Qt.ItemDataRole.DecorationRole)
        rec = index.data(ItemRole)
        _draw_pixmap_fit(p, option.rect, pm, rec is not None and self.thumbs.failed(rec))


class CaptionDelegate(QStyledItemDelegate):
    """Wrapped caption text (line breaks shown as ⏎) and a multi-line editor."""

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        _draw_selection(p, option)
        text = index.data(Qt.ItemDataRole.DisplayRole) or ""
        rec = index.data(ItemRole)
        p.save()
        r = option.rect.adjusted(6, 4, -6, -4)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        pal = option.palette
        if not text:
            p.setPen(pal.color(QPalette.ColorRole.PlaceholderText))
            text = "no caption file" if rec is not None and rec.caption is None else "empty caption"
        else:
            p.setPen(
                pal.color(
                    QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
                )
            )
            text = text.replace("\n", " ⏎ ")
        fm = QFontMetrics(option.font)
        lines = max(1, r.height() // fm.lineSpacing())
        # elide the last visible line instead of cutting it in half
        shown = _wrap_elide(text, fm, r.width(), lines)
        p.drawText(r, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop), shown)
        p.restore()

    def __init__(
        self, parent: QObject | None = None, vocabulary: Callable[[], list[str]] | None = None
    ) -> None:
        super().__init__(parent)
        self.vocabulary = vocabulary
        self.completer = tag_completer(self)  # shared by every editor (see tag_completer)

    def createEditor(self, parent, option, index):
        ed = CaptionEdit(parent, self.vocabulary, self.completer)
        ed.setObjectName("captionEditor")
        ed.commit_requested.connect(lambda: self._finish(ed, True))
        ed.revert_requested.connect(lambda: self._finish(ed, False))
        return ed

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        # while the tag list is open, Tab / Esc belong to it, not to the view (next cell, revert)
        if (
            isinstance(obj, CaptionEdit)
            and event.type() == QEvent.Type.KeyPress
            and obj.completer.popup().isVisible()
        ):
            return False
        return super().eventFilter(obj, event)

    def _finish(self, editor: CaptionEdit, commit: bool) -> None:
        if editor.property("closing"):  # a key typed before deleteLater removed it
            return
        editor.setProperty("closing", True)
        if commit:
            self.commitData.emit(editor)
            self.closeEditor.emit(editor, QStyledItemDelegate.EndEditHint.NoHint)
        else:
            self.closeEditor.emit(editor, QStyledItemDelegate.EndEditHint.RevertModelCache)

    def setEditorData(self, editor: CaptionEdit, index: QModelIndex) -> None:
        editor.setPlainText(index.data(Qt.ItemDataRole.EditRole) or "")
        editor.selectAll()  # typing replaces; an arrow key or a click edits in place

    def setModelData(self, editor: CaptionEdit, model, index: QModelIndex) -> None:
        model.setData(index, editor.toPlainText(), Qt.ItemDataRole.EditRole)

    def updateEditorGeometry(self, editor, option, index) -> None:
        r = QRect(option.rect)
        r.setHeight(max(r.height(), 110))
        editor.setGeometry(r)


def _wrap_elide(text: str, fm: QFontMetrics, width: int, lines: int) -> str:
    words = text.split(" ")
    out: list[str] = []
    cur = ""
    i = 0
    while i < len(words) and len(out) < lines:
        trial = f"{cur} {words[i]}" if cur else words[i]
        if fm.horizontalAdvance(trial) <= width or not cur:
            cur = trial
            i += 1
        else:
            out.append(cur)
            cur = ""
    if cur and len(out) < lines:
        out.append(cur)
    if i < len(words) or (out and fm.horizontalAdvance(out[-1]) > width):
        rest = " ".join([out[-1]] + words[i:]) if out else " ".join(words[i:])
        out[-1] = fm.elidedText(rest, Qt.TextElideMode.ElideRight, width)
    return "\n".join(out)


def draw_badges(p: QPainter, rect: QRect, codes: list[str], font, compact: bool = False) -> None:
    """Coloured pills (or dots when ``compact``) for badge codes, left to right."""
    p.save()
    p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    fm = QFontMetrics(font)
    x, y = rect.left(), rect.top()
    for code in codes:
        text, color, _ = BADGES[code]
        if compact:
            d = 9
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(color)
            p.drawEllipse(x, y + (rect.height() - d) // 2, d, d)
            x += d + 4
            continue
        w = fm.horizontalAdvance(text) + 12
        if x + w > rect.right():
            if y + 2 * (fm.height() + 6) > rect.bottom():
                break
            x, y = rect.left(), y + fm.height() + 6
        pill = QRect(x, y, w, fm.height() + 4)
        fill = QColor(color)
        fill.setAlpha(50)
        p.setPen(color)
        p.setBrush(fill)
        p.drawRoundedRect(pill, 6, 6)
        p.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)
        x += w + 4
    p.restore()


class FlagsDelegate(QStyledItemDelegate):
    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        _draw_selection(p, option)
        draw_badges(p, option.rect.adjusted(4, 6, -4, -4), index.data(FlagsRole) or [], option.font)


class GridDelegate(QStyledItemDelegate):
    """A grid tile: thumbnail, file name, a dot per badge."""

    TILE = QSize(152, 176)

    def __init__(self, thumbs, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.thumbs = thumbs

    def sizeHint(self, option, index) -> QSize:
        return self.TILE

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        _draw_selection(p, option)
        r = option.rect.adjusted(4, 4, -4, -4)
        model = index.model()
        thumb_ix = model.index(index.row(), Col.THUMB)
        pm = thumb_ix.data(Qt.ItemDataRole.DecorationRole)
        rec = index.data(ItemRole)
        img_rect = QRect(r.left(), r.top(), r.width(), r.width())
        _draw_pixmap_fit(p, img_rect, pm, rec is not None and self.thumbs.failed(rec))
        if rec is None:
            return
        fm = QFontMetrics(option.font)
        name_rect = QRect(r.left(), img_rect.bottom() + 2, r.width(), fm.height())
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        p.setPen(
            option.palette.color(
                QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
            )
        )
        p.drawText(
            name_rect,
            int(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignVCenter),
            fm.elidedText(rec.name, Qt.TextElideMode.ElideMiddle, r.width()),
        )
        codes = index.data(FlagsRole) or []
        if codes:
            draw_badges(
                p,
                QRect(r.left() + 4, r.top() + 4, r.width() - 8, 12),
                codes,
                option.font,
                compact=True,
            )
