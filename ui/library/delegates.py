"""Card (grid) and row (list) delegates for the LoRA library.

Both paint plain text only (``QPainter.drawText``), so untrusted names from headers can never
become markup. Incompatible and unreadable files are drawn greyed (40 % opacity) with the short
reason, never hidden. A click on the star toggles the favourite through the model's
``setData(FavouriteRole)``.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPainterPath, QPalette, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from ui.library.model import DuplicateRole, EntryRole, FavouriteRole, RatingRole
from zitdesk.library.index import LoraEntry

_Index = QModelIndex | QPersistentModelIndex

ARCH_COLOURS = {
    "zimage": "#2e7d4f",
    "sdxl": "#6a4c93",
    "sd15": "#8a5a2b",
    "sd2": "#8a5a2b",
    "flux": "#3b5b92",
    "qwen_image": "#7a3b5e",
    "sd3": "#5b6b3b",
    "wan": "#356b6b",
    "hunyuan": "#6b3535",
    "lumina2": "#4d5a6b",
    "unknown": "#555a62",
}
BROKEN_COLOUR = "#8b2f2f"
STAR_ON, STAR_OFF = "#f2c94c", "#8a9099"
GREY_OPACITY = 0.42

CARD_W, CARD_H, PREVIEW_H = 196, 278, 176
ROW_H = 58
# drawText clips to its rectangle by default: at fm.height() the underscore of a small font
# falls just below it and vanishes ("kohya style.safetensors"). Text lines never clip.
_LINE = Qt.AlignmentFlag.AlignLeft | Qt.TextFlag.TextDontClip


def _draw_line(
    p: QPainter,
    fm: QFontMetrics,
    x: int,
    y: int,
    w: int,
    text: str,
    elide: Qt.TextElideMode = Qt.TextElideMode.ElideRight,
) -> int:
    """Draw one plain-text line (elided to ``w``) with its top at ``y``; returns the next y."""
    p.drawText(QRect(x, y, w, fm.height() + 2), _LINE, fm.elidedText(text, elide, w))
    return y + fm.height()


def title_lines(fm: QFontMetrics, text: str, width: int) -> list[str]:
    """``text`` in at most two lines of ``width`` (broken after a space, ``_``, ``-`` or ``.``
    where possible; the second line is elided)."""
    if fm.horizontalAdvance(text) <= width:
        return [text]
    cut = 0
    for i in range(1, len(text) + 1):
        if fm.horizontalAdvance(text[:i]) > width:
            break
        cut = i
    brk = max((text.rfind(c, 0, cut + 1) for c in " _-."), default=-1)
    if brk >= max(1, cut // 2):
        cut = brk + 1
    cut = max(cut, 1)
    first, rest = text[:cut].rstrip(), text[cut:].lstrip()
    return [first, fm.elidedText(rest, Qt.TextElideMode.ElideRight, width)] if rest else [first]


def short_reason(e: LoraEntry) -> str:
    """A few words for a card: why a file is greyed out."""
    if e.status == "unsupported":
        return "Not supported: unsafe format" if "unsafe" in e.reason else "Not supported"
    if e.status == "error":
        return "Unreadable file"
    if not e.compatible:
        if e.arch != "zimage" and e.arch != "unknown":
            return "Not for Z-Image"
        if e.coverage_matched:  # modules found, but zitdesk.lora.fit found other layer sizes
            return "Other layer sizes than this model"
        return "No Z-Image modules found"
    return ""


def arch_chip(e: LoraEntry) -> tuple[str, str]:
    if e.status == "unsupported":
        return ("unsafe" if "unsafe" in e.reason else "unsupported"), BROKEN_COLOUR
    if e.status == "error":
        return "unreadable", BROKEN_COLOUR
    label = {
        "Stable Diffusion 1.5": "SD 1.5",
        "Stable Diffusion 2": "SD 2",
        "Stable Diffusion 3": "SD 3",
    }.get(e.arch_label, e.arch_label)
    if e.arch == "zimage":  # which Z-Image it was trained on, when it says (models.variants)
        from zitdesk.models.variants import SHORT, entry_variant

        guess = entry_variant(e)
        if guess.known:
            label = f"{label} {SHORT[guess.variant]}"
    return label, ARCH_COLOURS.get(e.arch, ARCH_COLOURS["unknown"])


def _chip(p: QPainter, x: int, y: int, text: str, bg: str, font: QFont) -> int:
    fm = QFontMetrics(font)
    w = fm.horizontalAdvance(text) + 12
    h = fm.height() + 4
    path = QPainterPath()
    path.addRoundedRect(QRectF(x, y, w, h), 4, 4)
    p.fillPath(path, QColor(bg))
    p.setPen(QColor("#f4f4f4"))
    p.setFont(font)
    p.drawText(QRect(x, y, w, h), Qt.AlignmentFlag.AlignCenter, text)
    return x + w + 5


def _star(p: QPainter, rect: QRect, on: bool) -> None:
    f = QFont(p.font())
    f.setPixelSize(int(rect.height() * 0.9))
    p.setFont(f)
    p.setPen(QColor(STAR_ON if on else STAR_OFF))
    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, "★" if on else "☆")


def _placeholder(p: QPainter, rect: QRect, e: LoraEntry, font: QFont) -> None:
    text, colour = arch_chip(e)
    c = QColor(colour)
    c.setAlpha(70)
    p.fillRect(rect, c)
    f = QFont(font)
    f.setBold(True)
    px = max(9, rect.height() // 6)
    f.setPixelSize(px)
    while px > 8 and QFontMetrics(f).horizontalAdvance(text) > rect.width() - 8:
        px -= 1
        f.setPixelSize(px)
    p.setFont(f)
    p.setPen(QColor("#c8ccd2"))
    p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)


def _draw_pixmap(p: QPainter, rect: QRect, pm: QPixmap) -> None:
    scaled = pm.size().scaled(rect.size(), Qt.AspectRatioMode.KeepAspectRatio)
    x = rect.x() + (rect.width() - scaled.width()) // 2
    y = rect.y() + (rect.height() - scaled.height()) // 2
    p.drawPixmap(QRect(x, y, scaled.width(), scaled.height()), pm)


class _Base(QStyledItemDelegate):
    def star_rect(self, option_rect: QRect) -> QRect:  # pragma: no cover - overridden
        raise NotImplementedError

    def editorEvent(self, event, model, option, index) -> bool:
        if (
            event.type() == QEvent.Type.MouseButtonRelease
            and event.button() == Qt.MouseButton.LeftButton
            and self.star_rect(option.rect).contains(event.position().toPoint())
        ):
            model.setData(index, not bool(index.data(FavouriteRole)), FavouriteRole)
            return True
        return super().editorEvent(event, model, option, index)

    def _background(self, p: QPainter, option: QStyleOptionViewItem, rect: QRect) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hover = bool(option.state & QStyle.StateFlag.State_MouseOver)
        pal = option.palette
        bg = pal.color(QPalette.ColorRole.AlternateBase)
        if hover:
            bg = bg.lighter(120)
        path = QPainterPath()
        path.addRoundedRect(QRectF(rect), 6, 6)
        p.fillPath(path, bg)
        if selected:
            pen = p.pen()
            p.setPen(QColor(pal.color(QPalette.ColorRole.Highlight)))
            p.drawPath(path)
            p.setPen(pen)


class CardDelegate(_Base):
    """Grid card: preview, name, arch chip, rank, coverage badge, favourite star."""

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        # The grid widens its cells to fill a row (ui.library.views.CardGrid): the card follows.
        view = self.parent()
        grid = view.gridSize() if hasattr(view, "gridSize") else QSize()
        return QSize(max(CARD_W, grid.width() - 6) if grid.isValid() else CARD_W, CARD_H)

    def star_rect(self, option_rect: QRect) -> QRect:
        r = option_rect.adjusted(4, 4, -4, -4)
        return QRect(r.right() - 30, r.top() + 4, 26, 26)

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        e: LoraEntry = index.data(EntryRole)
        if e is None:
            return
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        rect = option.rect.adjusted(4, 4, -4, -4)
        self._background(p, option, rect)
        usable = e.compatible
        if not usable:
            p.setOpacity(GREY_OPACITY)
        prev = QRect(rect.x() + 6, rect.y() + 6, rect.width() - 12, PREVIEW_H - 12)
        p.fillRect(prev, QColor("#121417"))
        pm = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pm, QPixmap) and not pm.isNull():
            _draw_pixmap(p, prev, pm)
        else:
            _placeholder(p, prev, e, option.font)
        # name
        y = prev.bottom() + 8
        f = QFont(option.font)
        f.setBold(True)
        fm = QFontMetrics(f)
        p.setFont(f)
        p.setPen(option.palette.color(QPalette.ColorRole.Text))
        tw = rect.width() - 14
        lines = title_lines(fm, e.display_name, tw)
        for line in lines:
            y = _draw_line(p, fm, rect.x() + 7, y, tw, line)
        y += 4 + (fm.height() if len(lines) == 1 else 0)  # chips at the same height on every card
        # chips: arch, rank, coverage
        small = QFont(option.font)
        small.setPointSizeF(max(7.0, option.font.pointSizeF() * 0.85))
        text, colour = arch_chip(e)
        x = _chip(p, rect.x() + 7, y, text, colour, small)
        if e.rank:
            x = _chip(p, x, y, f"r{e.rank}", "#3a3f47", small)
        if (
            e.coverage_badge
            and e.status == "ok"
            and e.arch == "zimage"
            and (e.compatible or not e.coverage_matched)
        ):
            full = e.coverage_matched == e.coverage_total
            _chip(p, x, y, e.coverage_badge, "#2f5d3f" if full else "#6b5a2b", small)
        y += QFontMetrics(small).height() + 8
        # second line: the reason when greyed, else trigger words or the file name
        sfm = QFontMetrics(small)
        p.setFont(small)
        p.setPen(QColor("#e0a0a0") if not usable else QColor("#9aa0a6"))
        if not usable:
            line = short_reason(e)
        elif e.trigger_words:
            line = "trigger: " + ", ".join(t.word for t in e.trigger_words[:3])
        else:
            line = e.file_name
        _draw_line(p, sfm, rect.x() + 7, y, rect.width() - 14, line)
        p.setOpacity(1.0)
        # star and duplicate marker stay bright so they can be clicked/seen
        star = self.star_rect(option.rect)
        bg = QPainterPath()
        bg.addEllipse(QRectF(star).adjusted(-1, -1, 1, 1))
        p.fillPath(bg, QColor(0, 0, 0, 120))
        _star(p, star, bool(index.data(FavouriteRole)))
        rating = int(index.data(RatingRole) or 0)
        if rating:
            p.setFont(small)
            p.setPen(QColor(STAR_ON))
            p.drawText(
                QRect(prev.x() + 4, prev.bottom() - sfm.height() - 2, 80, sfm.height()),
                Qt.AlignmentFlag.AlignLeft,
                "★" * rating,
            )
        if index.data(DuplicateRole):
            _chip(p, prev.x() + 4, prev.y() + 4, "duplicate", "#8a5a2b", small)
        p.restore()


class RowDelegate(_Base):
    """List row: thumbnail, name + path or reason, arch chip, rank, coverage, star."""

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        return QSize(max(400, option.rect.width()), ROW_H)

    def star_rect(self, option_rect: QRect) -> QRect:
        return QRect(option_rect.right() - 34, option_rect.center().y() - 12, 24, 24)

    def paint(self, p: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        e: LoraEntry = index.data(EntryRole)
        if e is None:
            return
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        rect = option.rect.adjusted(2, 2, -2, -2)
        self._background(p, option, rect)
        if not e.compatible:
            p.setOpacity(GREY_OPACITY)
        thumb = QRect(rect.x() + 5, rect.y() + 4, rect.height() - 8, rect.height() - 8)
        p.fillRect(thumb, QColor("#121417"))
        pm = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pm, QPixmap) and not pm.isNull():
            _draw_pixmap(p, thumb, pm)
        else:
            _placeholder(p, thumb, e, option.font)
        small = QFont(option.font)
        small.setPointSizeF(max(7.0, option.font.pointSizeF() * 0.85))
        right_w = 300
        tx = thumb.right() + 10
        tw = max(80, rect.width() - (tx - rect.x()) - right_w)
        f = QFont(option.font)
        f.setBold(True)
        fm = QFontMetrics(f)
        p.setFont(f)
        p.setPen(option.palette.color(QPalette.ColorRole.Text))
        _draw_line(p, fm, tx, rect.y() + 8, tw, e.display_name)
        sfm = QFontMetrics(small)
        p.setFont(small)
        p.setPen(QColor("#e0a0a0") if not e.compatible else QColor("#9aa0a6"))
        second = e.reason if not e.compatible else e.path
        _draw_line(
            p,
            sfm,
            tx,
            rect.y() + 12 + fm.height(),
            tw,
            second,
            Qt.TextElideMode.ElideMiddle if e.compatible else Qt.TextElideMode.ElideRight,
        )
        x = rect.right() - right_w + 10
        y = rect.center().y() - (sfm.height() + 4) // 2
        text, colour = arch_chip(e)
        x = _chip(p, x, y, text, colour, small)
        if e.rank:
            x = _chip(p, x, y, f"r{e.rank}", "#3a3f47", small)
        if (
            e.coverage_badge
            and e.status == "ok"
            and e.arch == "zimage"
            and (e.compatible or not e.coverage_matched)
        ):
            full = e.coverage_matched == e.coverage_total
            x = _chip(p, x, y, e.coverage_badge, "#2f5d3f" if full else "#6b5a2b", small)
        if index.data(DuplicateRole):
            _chip(p, x, y, "duplicate", "#8a5a2b", small)
        p.setOpacity(1.0)
        _star(p, self.star_rect(option.rect), bool(index.data(FavouriteRole)))
        p.restore()
