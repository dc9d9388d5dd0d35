"""Item model and filter proxy over the Qt-free LoRA index.

:class:`LibraryModel` only translates :class:`~zitdesk.library.index.LoraEntry` records (plus the
user's :class:`~zitdesk.library.store.UserRecord`) into roles; previews are decoded on the thread
pool by a :class:`ui.thumbnails.ThumbnailCache`, never in ``data()``. Updates are incremental
(rows inserted, removed or changed in place), so a watcher-driven rescan keeps the selection.

:class:`LibraryFilterProxy` filters by search text, architecture group, favourites, trigger
words, folder and duplicates, and sorts by the chosen key. Incompatible files are never filtered
out by default; the delegates grey them.

Strings from files are untrusted: the tooltip is built with ``html.escape`` (Qt would otherwise
auto-detect rich text in a tooltip) and views draw text as plain text.
"""

from __future__ import annotations

import html
import os
from collections import Counter
from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Slot,
)

from zitdesk.library.index import LoraEntry
from zitdesk.library.store import LibraryStore, UserRecord

_Index = QModelIndex | QPersistentModelIndex
_U = Qt.ItemDataRole.UserRole
EntryRole = _U + 1
PathRole = _U + 2
FavouriteRole = _U + 3
RatingRole = _U + 4
CompatibleRole = _U + 5
ArchRole = _U + 6
PreviewPathRole = _U + 7
DuplicateRole = _U + 8
RecordRole = _U + 9

SORT_MODES = ("usable", "name", "newest", "rating", "rank", "size")
SORT_LABELS = {
    "usable": "Usable first",
    "name": "Name",
    "newest": "Newest",
    "rating": "Rating",
    "rank": "Rank",
    "size": "Size",
}

#: Architecture filter groups (value → label); specific architectures are added by the UI.
ARCH_GROUPS = {
    "": "All architectures",
    "usable": "Usable with this model",
    "zimage": "Z-Image",
    "foreign": "Other architectures",
    "broken": "Unreadable / unsupported",
}


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def tooltip_html(entry: LoraEntry) -> str:
    """A short tooltip; every string from the file is escaped (never rendered as markup)."""
    esc = html.escape
    lines = [f"<b>{esc(entry.display_name)}</b>", esc(entry.file_name)]
    if entry.status == "ok":
        bits = [entry.arch_label, entry.dialect]
        if entry.rank:
            bits.append(f"rank {entry.rank}")
        if entry.coverage_badge:
            bits.append(f"{entry.coverage_badge} modules")
        lines.append(esc(" · ".join(bits)))
    lines.append(esc(entry.reason))
    return "<p style='white-space:pre-wrap'>" + "<br>".join(lines) + "</p>"


class LibraryModel(QAbstractListModel):
    """One row per library file; ``EntryRole`` returns the :class:`LoraEntry`."""

    def __init__(
        self, store: LibraryStore, thumbnails: Any = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.thumbnails = thumbnails
        self._rows: list[LoraEntry] = []
        self._row_of: dict[str, int] = {}
        self._search: list[str] = []
        self._sha_count: Counter[str] = Counter()
        self._by_preview: dict[str, set[str]] = {}
        self._new_dups: set[str] = set()
        if thumbnails is not None:
            thumbnails.thumbnail_ready.connect(self._on_thumbnail)

    # -- access --------------------------------------------------------------------------------
    @property
    def entries(self) -> list[LoraEntry]:
        return list(self._rows)

    def entry_at(self, row: int) -> LoraEntry:
        return self._rows[row]

    def row_of(self, path: str) -> int:
        return self._row_of.get(path, -1)

    def entry(self, path: str) -> LoraEntry | None:
        r = self._row_of.get(path)
        return self._rows[r] if r is not None else None

    def record(self, path: str) -> UserRecord:
        return self.store.get(path)

    def search_text(self, row: int) -> str:
        return self._search[row]

    def is_duplicate(self, row: int) -> bool:
        sha = self._rows[row].sha256
        return bool(sha) and self._sha_count[sha] > 1

    def duplicates_of(self, path: str) -> list[str]:
        e = self.entry(path)
        if e is None or not e.sha256:
            return []
        return [x.path for x in self._rows if x.sha256 == e.sha256 and x.path != path]

    def preview_path(self, entry: LoraEntry) -> str:
        rec = self.store.get(entry.path)
        if rec.preview and os.path.isfile(rec.preview):
            return rec.preview
        return entry.preview

    # -- updates -------------------------------------------------------------------------------
    def set_entries(self, entries: Iterable[LoraEntry]) -> None:
        """Make the rows equal ``entries``: remove missing rows, update changed ones, append new."""
        new = {e.path: e for e in entries}
        gone = sorted((self._row_of[p] for p in self._row_of if p not in new), reverse=True)
        for start, end in _runs(gone):
            self.beginRemoveRows(QModelIndex(), start, end)
            for r in range(end, start - 1, -1):
                self._forget(self._rows[r])
            del self._rows[start : end + 1]
            del self._search[start : end + 1]
            self.endRemoveRows()
        self._reindex()
        self.upsert(list(new.values()))

    def upsert(self, entries: Iterable[LoraEntry]) -> None:
        """Add new entries and update known ones in place (chunked row inserts)."""
        fresh: list[LoraEntry] = []
        changed: list[int] = []
        for e in entries:
            r = self._row_of.get(e.path)
            if r is None:
                fresh.append(e)
            elif self._rows[r] != e:
                self._forget(self._rows[r])
                self._rows[r] = e
                self._remember(e)
                self._search[r] = self._make_search(e)
                changed.append(r)
        # A file that just got a twin is now a duplicate too: repaint and re-filter it.
        for sha in self._new_dups:
            changed += [i for i, x in enumerate(self._rows) if x.sha256 == sha and i not in changed]
        self._new_dups.clear()
        for r in changed:
            idx = self.index(r)
            self.dataChanged.emit(idx, idx)
        if fresh:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            for e in fresh:
                self._row_of[e.path] = len(self._rows)
                self._rows.append(e)
                self._search.append(self._make_search(e))
                self._remember(e)
            self.endInsertRows()

    def update_record(self, path: str) -> None:
        """The user's record changed (favourite, rating, notes, preview): refresh that row."""
        r = self._row_of.get(path)
        if r is not None:
            self._search[r] = self._make_search(self._rows[r])
            self._watch_preview(self._rows[r])
            idx = self.index(r)
            self.dataChanged.emit(idx, idx)

    def _reindex(self) -> None:
        self._row_of = {e.path: i for i, e in enumerate(self._rows)}

    def _remember(self, e: LoraEntry) -> None:
        if e.sha256:
            self._sha_count[e.sha256] += 1
            if self._sha_count[e.sha256] == 2:
                self._new_dups.add(e.sha256)
        self._watch_preview(e)

    def _forget(self, e: LoraEntry) -> None:
        if e.sha256:
            self._sha_count[e.sha256] -= 1
            if self._sha_count[e.sha256] <= 0:
                del self._sha_count[e.sha256]

    def _watch_preview(self, e: LoraEntry) -> None:
        p = self.preview_path(e)
        if p:
            self._by_preview.setdefault(p, set()).add(e.path)

    def _make_search(self, e: LoraEntry) -> str:
        rec = self.store.get(e.path)
        parts = [
            e.display_name,
            e.file_name,
            e.title,
            e.author,
            e.arch_label,
            e.dialect,
            e.base_model_version,
            os.path.basename(e.folder),
            rec.notes,
        ]
        parts += [t.word for t in e.trigger_words] + list(e.tags)
        return "\n".join(p for p in parts if p).casefold()

    @Slot(str)
    def _on_thumbnail(self, path: str) -> None:
        for lora in self._by_preview.get(path, ()):
            r = self._row_of.get(lora)
            if r is not None:
                idx = self.index(r)
                self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    # -- Qt model ------------------------------------------------------------------------------
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        e = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return e.display_name
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip_html(e)
        if role == Qt.ItemDataRole.DecorationRole:
            p = self.preview_path(e)
            return self.thumbnails.pixmap(p) if (p and self.thumbnails is not None) else None
        if role == EntryRole:
            return e
        if role == PathRole:
            return e.path
        if role == FavouriteRole:
            return self.store.get(e.path).favourite
        if role == RatingRole:
            return self.store.get(e.path).rating
        if role == RecordRole:
            return self.store.get(e.path)
        if role == CompatibleRole:
            return e.compatible
        if role == ArchRole:
            return e.arch if e.status == "ok" else e.status
        if role == PreviewPathRole:
            return self.preview_path(e)
        if role == DuplicateRole:
            return self.is_duplicate(index.row())
        return None

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return False
        path = self._rows[index.row()].path
        if role == FavouriteRole:
            self.store.set_favourite(path, bool(value))
        elif role == RatingRole:
            self.store.set_rating(path, int(value))
        else:
            return False
        self.update_record(path)
        return True

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        # Incompatible files stay enabled and selectable: the details pane says why.
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def roleNames(self) -> dict[int, bytes]:
        names = super().roleNames()
        names.update(
            {
                EntryRole: b"entry",
                PathRole: b"path",
                FavouriteRole: b"favourite",
                RatingRole: b"rating",
                CompatibleRole: b"compatible",
                ArchRole: b"arch",
            }
        )
        return names


def _runs(rows_desc: list[int]) -> list[tuple[int, int]]:
    """Descending row numbers → ``(start, end)`` runs, last run first (safe removal order)."""
    runs: list[tuple[int, int]] = []
    for r in rows_desc:
        if runs and runs[-1][0] == r + 1:
            runs[-1] = (r, runs[-1][1])
        else:
            runs.append((r, r))
    return runs


class LibraryFilterProxy(QSortFilterProxyModel):
    """Search and filters for the library views (each setter re-filters)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._terms: list[str] = []
        self._arch = ""
        self._favourites = False
        self._has_trigger = False
        self._duplicates = False
        self._folder = ""
        self._sort = "usable"
        self.setDynamicSortFilter(True)
        self.sort(0)

    # -- properties ----------------------------------------------------------------------------
    @property
    def search(self) -> str:
        return " ".join(self._terms)

    def set_search(self, text: str) -> None:
        terms = text.casefold().split()
        if terms != self._terms:
            self._terms = terms
            self.invalidateFilter()

    @property
    def arch(self) -> str:
        return self._arch

    def set_arch(self, arch: str) -> None:
        """``""`` all, ``usable``, ``zimage``, ``foreign``, ``broken`` or an arch id (``sdxl`` …)."""
        if arch != self._arch:
            self._arch = arch
            self.invalidateFilter()

    def set_favourites_only(self, on: bool) -> None:
        if on != self._favourites:
            self._favourites = on
            self.invalidateFilter()

    def set_has_trigger(self, on: bool) -> None:
        if on != self._has_trigger:
            self._has_trigger = on
            self.invalidateFilter()

    def set_duplicates_only(self, on: bool) -> None:
        if on != self._duplicates:
            self._duplicates = on
            self.invalidateFilter()

    def set_folder(self, folder: str) -> None:
        """Only files under ``folder`` ("" = all)."""
        folder = folder.rstrip("/\\")
        if folder != self._folder:
            self._folder = folder
            self.invalidateFilter()

    @property
    def sort_mode(self) -> str:
        return self._sort

    def set_sort_mode(self, mode: str) -> None:
        if mode not in SORT_MODES:
            raise ValueError(mode)
        if mode != self._sort:
            self._sort = mode
            self.invalidate()
            self.sort(0)

    def _src(self) -> LibraryModel:
        m = self.sourceModel()
        assert isinstance(m, LibraryModel)
        return m

    # -- Qt ------------------------------------------------------------------------------------
    def filterAcceptsRow(self, source_row: int, source_parent: _Index) -> bool:
        src = self._src()
        e = src.entry_at(source_row)
        a = self._arch
        if a:
            if a == "usable" and not e.compatible:
                return False
            if a == "zimage" and not (e.status == "ok" and e.arch == "zimage"):
                return False
            if a == "foreign" and not (e.status == "ok" and e.arch not in ("zimage",)):
                return False
            if a == "broken" and e.status == "ok":
                return False
            if a not in ARCH_GROUPS and not (e.status == "ok" and e.arch == a):
                return False
        if self._folder:
            f = e.path
            if not f.startswith((self._folder + "/", self._folder + "\\")):
                return False
        if self._has_trigger and not e.trigger_words:
            return False
        if self._favourites and not src.store.get(e.path).favourite:
            return False
        if self._duplicates and not src.is_duplicate(source_row):
            return False
        if self._terms:
            text = src.search_text(source_row)
            if not all(t in text for t in self._terms):
                return False
        return True

    def lessThan(self, left: _Index, right: _Index) -> bool:
        src = self._src()
        a, b = src.entry_at(left.row()), src.entry_at(right.row())
        return self._key(a, src) < self._key(b, src)

    def _key(self, e: LoraEntry, src: LibraryModel) -> tuple:
        name = e.display_name.casefold()
        s = self._sort
        if s == "name":
            return (name, e.path)
        if s == "newest":
            return (-e.mtime_ns, name)
        if s == "rating":
            rec = src.store.get(e.path)
            return (-rec.rating, not rec.favourite, name)
        if s == "rank":
            return (-(e.rank or 0), name)
        if s == "size":
            return (-e.size, name)
        return (not e.compatible, e.status != "ok", name, e.path)  # usable first
