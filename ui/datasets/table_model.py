"""``DatasetTableModel``: the Qt adapter over a Qt-free :class:`~zitdesk.dataset.store.Dataset`.

Columns: thumbnail, file name, resolution, caption (editable, multi-line), token count, flags.
``ItemRole`` returns the :class:`~zitdesk.dataset.store.ImageRecord`. Thumbnails come from a
:class:`~ui.datasets.thumbs.ThumbnailService` (never decoded in ``data()``).

**Filtering and sorting live in the model, not in a ``QSortFilterProxyModel``.** A proxy calls
Python for every row (``filterAcceptsRow``) and for every comparison while sorting (≈ 140,000
calls for 10,000 rows, about half a second of frozen GUI). Here the visible rows are a list of
indices computed with one Python pass (``sorted`` with a key), a few milliseconds for 10,000
images; filter changes reset the model, sorting is a ``layoutChanged`` that keeps selections.

Caption edits are not applied here: ``setData`` emits ``caption_edited(label, changes)`` and the
session applies them as one undoable edit. A model with ``direct_edits=True`` (no session: tests,
tools) applies them to the dataset itself.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor

from ui.widgets.text import plain_tooltip
from zitdesk.dataset.store import Dataset, ImageRecord

_ROOT = QModelIndex()
ItemRole = Qt.ItemDataRole.UserRole + 1
FlagsRole = Qt.ItemDataRole.UserRole + 2  # set[str] of badge codes

WARN = QColor("#e0a030")
BAD = QColor("#e05545")
MUTED = QColor("#9aa0a6")


class Col(enum.IntEnum):
    THUMB = 0
    NAME = 1
    SIZE = 2
    CAPTION = 3
    TOKENS = 4
    FLAGS = 5


HEADERS = {
    Col.THUMB: "",
    Col.NAME: "File",
    Col.SIZE: "Size",
    Col.CAPTION: "Caption",
    Col.TOKENS: "Tokens",
    Col.FLAGS: "Flags",
}


class FilterMode(enum.Enum):
    ALL = "All images"
    MISSING = "Missing caption"
    FLAGGED = "Flagged"
    DUPLICATE = "Duplicates"
    LOW_RES = "Low resolution"
    LONG = "Over token budget"
    CONFLICT = "Changed outside"
    ISSUE = "Check finding"  # a set of names from the statistics panel


#: badge code → (short text, colour, explanation)
BADGES: dict[str, tuple[str, QColor, str]] = {
    "flagged": ("⚑", WARN, "flagged by you"),
    "conflict": ("changed outside", BAD, "the caption file was changed by another program"),
    "missing_caption": ("no caption", WARN, "no caption text"),
    "over_token_budget": ("too long", BAD, "longer than the text encoder reads"),
    "duplicate": ("duplicate", WARN, "identical to another image"),
    "near_duplicate": ("near-dup", WARN, "looks almost the same as another image"),
    "low_res": ("low-res", WARN, "below the training resolution"),
    "too_small": ("too small", BAD, "too small to train"),
    "very_low_res": ("far too small", BAD, "far below the training size: trains as a blur"),
    "excluded": ("excluded", MUTED, "excluded from training (kept in the folder)"),
    "trigger_doubled": ("trigger ×2", WARN, "training adds the trigger word again"),
    "shared_caption": ("shared .txt", WARN, "shares a caption file with another image"),
}
_FILTER_CODES = {
    FilterMode.DUPLICATE: {"duplicate", "near_duplicate"},
    FilterMode.LOW_RES: {"low_res", "too_small", "very_low_res"},
    FilterMode.LONG: {"over_token_budget"},
}


class DatasetTableModel(QAbstractTableModel):
    """See the module doc. ``visible_changed`` fires after every filter/sort/reset."""

    visible_changed = Signal()
    caption_edited = Signal(str, object)  # label, [(name, old, new)] (when not direct_edits)

    def __init__(self, thumbs=None, parent=None, *, direct_edits: bool = True) -> None:
        super().__init__(parent)
        self._ds: Dataset | None = None
        self._items: list[ImageRecord] = []
        self._rows: list[int] = []
        self._row_of: dict[str, int] = {}
        self._pos_of: dict[str, int] = {}
        self._thumbs = thumbs
        self._tokens: dict[str, int] = {}
        self._token_limit = 504
        self._check_flags: dict[str, set[str]] = {}
        self._hay: dict[str, str] = {}  # lower-cased "name\ncaption" for the text filter
        self._text = ""
        self._mode = FilterMode.ALL
        self._issue_names: set[str] = set()
        self._sort: tuple[int, Qt.SortOrder] | None = None
        self.direct_edits = direct_edits
        if thumbs is not None:
            thumbs.ready.connect(self._on_thumbs)

    # --- data source -------------------------------------------------------------------------

    @property
    def dataset(self) -> Dataset | None:
        return self._ds

    def set_dataset(self, ds: Dataset | None) -> None:
        self.beginResetModel()
        self._ds = ds
        self._items = list(ds.items) if ds is not None else []
        self._pos_of = {it.name: i for i, it in enumerate(self._items)}
        self._tokens = {}
        self._check_flags = {}
        self._hay = {}
        self._rows = self._compute_rows()
        self._index_rows()
        self.endResetModel()
        self.visible_changed.emit()

    def _index_rows(self) -> None:
        self._row_of = {self._items[i].name: r for r, i in enumerate(self._rows)}

    def item(self, row: int) -> ImageRecord:
        return self._items[self._rows[row]]

    def row_of(self, name: str) -> int | None:
        return self._row_of.get(name)

    def visible_items(self) -> list[ImageRecord]:
        return [self._items[i] for i in self._rows]

    @property
    def total(self) -> int:
        return len(self._items)

    # --- extra facts (tokens, check flags) -----------------------------------------------------

    def set_tokens(self, counts: dict[str, int], limit: int | None = None) -> None:
        self._tokens.update(counts)
        if limit is not None:
            self._token_limit = limit
        if self._rows:
            self.dataChanged.emit(
                self.index(0, Col.TOKENS), self.index(len(self._rows) - 1, Col.FLAGS)
            )
        if self._mode is FilterMode.LONG:
            self.refilter()

    def tokens(self, name: str) -> int | None:
        return self._tokens.get(name)

    def set_check_flags(self, flags: dict[str, set[str]]) -> None:
        self._check_flags = flags
        if self._rows:
            self.dataChanged.emit(
                self.index(0, Col.FLAGS), self.index(len(self._rows) - 1, Col.FLAGS)
            )
        if self._mode in _FILTER_CODES:
            self.refilter()

    def badges(self, it: ImageRecord) -> list[str]:
        out = []
        if it.excluded:
            out.append("excluded")
        if it.flagged:
            out.append("flagged")
        if it.conflict:
            out.append("conflict")
        if it.missing_caption:
            out.append("missing_caption")
        n = self._tokens.get(it.name)
        if n is not None and n > self._token_limit:
            out.append("over_token_budget")
        for code in (
            "duplicate",
            "near_duplicate",
            "too_small",
            "very_low_res",
            "low_res",
            "trigger_doubled",
            "shared_caption",
        ):
            if code in self._check_flags.get(it.name, ()):
                out.append(code)
        return out

    # --- filter and sort ---------------------------------------------------------------------

    def set_filter(
        self,
        text: str | None = None,
        mode: FilterMode | None = None,
        issue_names: Iterable[str] | None = None,
    ) -> None:
        if text is not None:
            self._text = text
        if mode is not None:
            self._mode = mode
        if issue_names is not None:
            self._issue_names = set(issue_names)
        self.refilter()

    @property
    def filter_mode(self) -> FilterMode:
        return self._mode

    @property
    def filter_text(self) -> str:
        return self._text

    def refilter(self) -> None:
        rows = self._compute_rows()
        if rows == self._rows:
            return
        self.beginResetModel()
        self._rows = rows
        self._index_rows()
        self.endResetModel()
        self.visible_changed.emit()

    def _accepts(self) -> Callable[[ImageRecord], bool] | None:
        mode, text = self._mode, self._text.strip().lower()
        if mode is FilterMode.ALL:
            test = None
        elif mode is FilterMode.MISSING:

            def test(it):
                return it.missing_caption
        elif mode is FilterMode.FLAGGED:

            def test(it):
                return it.flagged
        elif mode is FilterMode.CONFLICT:

            def test(it):
                return bool(it.conflict)
        elif mode is FilterMode.ISSUE:
            names = self._issue_names

            def test(it):
                return it.name in names
        elif mode is FilterMode.LONG:
            toks, lim = self._tokens, self._token_limit

            def test(it):
                return toks.get(it.name, 0) > lim
        else:
            codes, flags = _FILTER_CODES[mode], self._check_flags

            def test(it):
                return bool(codes & flags.get(it.name, set()))

        if not text:
            return test
        words = text.split()
        hays = self._hay

        def match(it: ImageRecord) -> bool:
            hay = hays.get(it.name)
            if hay is None:
                hay = hays[it.name] = f"{it.name}\n{it.caption or ''}".lower()
            return all(w in hay for w in words) and (test is None or test(it))

        return match

    def _compute_rows(self) -> list[int]:
        acc = self._accepts()
        items = self._items
        rows = (
            list(range(len(items))) if acc is None else [i for i, it in enumerate(items) if acc(it)]
        )
        if self._sort is not None:
            key = self._sort_key(self._sort[0])
            rows.sort(
                key=lambda i: key(items[i]), reverse=self._sort[1] == Qt.SortOrder.DescendingOrder
            )
        return rows

    def _sort_key(self, col: int):
        toks = self._tokens
        return {
            Col.NAME: lambda it: it.name.lower(),
            Col.SIZE: lambda it: (it.width * it.height, it.width),
            Col.CAPTION: lambda it: (it.caption or "").lower(),
            Col.TOKENS: lambda it: toks.get(it.name, -1),
            Col.FLAGS: lambda it: len(self.badges(it)),
        }.get(Col(col), lambda it: it.name.lower())

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        if column == Col.THUMB:
            column = Col.NAME
        self._sort = (column, order)
        self.layoutAboutToBeChanged.emit()
        old = self.persistentIndexList()
        old_names = [self.item(i.row()).name if i.isValid() else None for i in old]
        self._rows = self._compute_rows()
        self._index_rows()
        new = []
        for pi, name in zip(old, old_names, strict=True):
            r = self._row_of.get(name) if name is not None else None
            new.append(self.index(r, pi.column()) if r is not None else QModelIndex())
        self.changePersistentIndexList(old, new)
        self.layoutChanged.emit()
        self.visible_changed.emit()

    # --- Qt model API ------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(Col)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ):
        if (
            orientation == Qt.Orientation.Horizontal
            and role == Qt.ItemDataRole.DisplayRole
            and 0 <= section < len(Col)
        ):
            return HEADERS[Col(section)]
        return None

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        f = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == Col.CAPTION:
            f |= Qt.ItemFlag.ItemIsEditable
        return f

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        it = self._items[self._rows[index.row()]]
        col = index.column()
        if role == ItemRole:
            return it
        if role == FlagsRole:
            return self.badges(it)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == Col.NAME:
                return it.name
            if col == Col.SIZE:
                return f"{it.width}×{it.height}"
            if col == Col.CAPTION:
                return it.caption or ""
            if col == Col.TOKENS:
                n = self._tokens.get(it.name)
                return "…" if n is None else str(n)
            if col == Col.FLAGS:
                return "  ".join(BADGES[c][0] for c in self.badges(it))
            return None
        if role == Qt.ItemDataRole.EditRole and col == Col.CAPTION:
            return it.caption or ""
        if role == Qt.ItemDataRole.DecorationRole and col == Col.THUMB and self._thumbs:
            return self._thumbs.pixmap(it)
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = self._tooltip(it, col)  # names and captions: shown literally
            return plain_tooltip(tip) if tip else None
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == Col.TOKENS:
                n = self._tokens.get(it.name)
                if n is not None and n > self._token_limit:
                    return BAD
                if n is not None and n > 0.9 * self._token_limit:
                    return WARN
            if col == Col.FLAGS:
                b = self.badges(it)
                if b:
                    return BADGES[b[0]][1] if b[0] != "flagged" or len(b) == 1 else BADGES[b[1]][1]
            if col == Col.CAPTION and it.missing_caption:
                return MUTED
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (Col.SIZE, Col.TOKENS):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _tooltip(self, it: ImageRecord, col: int) -> str | None:
        if col == Col.FLAGS:
            b = self.badges(it)
            return "\n".join(f"{BADGES[c][0]}: {BADGES[c][2]}" for c in b) or None
        if col == Col.TOKENS:
            n = self._tokens.get(it.name)
            if n is None:
                return "Counting tokens…"
            return (
                f"{n} of the {self._token_limit} tokens Z-Image reads "
                "(Qwen3, trigger word included as training applies it)."
            )
        if col == Col.CAPTION:
            return it.caption if it.caption else "No caption (F2 or Enter to write one)"
        if col in (Col.NAME, Col.THUMB):
            extra = "".join(f"\n● {BADGES[c][2]}" for c in self.badges(it))
            return f"{it.name}\n{it.width}×{it.height}, {it.size / 1024:.0f} KiB{extra}"
        return None

    def setData(
        self,
        index: QModelIndex | QPersistentModelIndex,
        value,
        role: int = Qt.ItemDataRole.EditRole,
    ) -> bool:
        if not index.isValid() or index.column() != Col.CAPTION or role != Qt.ItemDataRole.EditRole:
            return False
        it = self.item(index.row())
        new = str(value)
        old = it.caption
        if new == (old or ""):
            return False
        if not self.direct_edits:
            self.caption_edited.emit(f"Edit caption of {it.name}", [(it.name, old, new)])
        elif self._ds is not None:
            self._ds.set_caption(it, new)
            self.captions_changed([it.name])
        return True

    # --- change notifications ----------------------------------------------------------------

    def captions_changed(self, names: Iterable[str]) -> None:
        """Rows whose caption (or flags) changed: repaint them; refilter when it matters."""
        for n in names:
            self._hay.pop(n, None)
        # Rows stay where they are even if they no longer match the filter: a row vanishing
        # under the cursor while typing is worse than a stale filter (it reapplies on change).
        rows = [r for r in (self._row_of.get(n) for n in names) if r is not None]
        if not rows:
            return
        # one signal for the span: views repaint only what is on screen
        self.dataChanged.emit(self.index(min(rows), Col.NAME), self.index(max(rows), Col.FLAGS))

    def _on_thumbs(self, names: list[str]) -> None:
        """A batch of thumbnails arrived: one ``dataChanged`` over the rows they span."""
        rows = [r for r in (self._row_of.get(n) for n in names) if r is not None]
        if rows:
            self.dataChanged.emit(
                self.index(min(rows), Col.THUMB),
                self.index(max(rows), Col.THUMB),
                [Qt.ItemDataRole.DecorationRole],
            )
