"""The dataset: a folder of images with same-name ``.txt`` captions, plus ``.zitdesk/``.

The folder is what ai-toolkit, kohya/musubi, OneTrainer and zitdesk's own trainer read; the
``.txt`` files are always the captions' only authoritative copy. ``.zitdesk/`` holds what a
``.txt`` cannot: ``index.json`` (flags, ratings, and a cache of sizes and content hashes keyed by
file size and mtime), ``journal.jsonl`` (the edit history, :mod:`zitdesk.dataset.history`) and
``snapshots/`` (all captions, taken before each bulk edit). Trainers ignore it (hidden folder).

The image list follows :func:`zitdesk.folder.scan_folder` exactly (same extensions, not
recursive, hidden files skipped, sorted by name); ``tests/dataset`` checks that.

Threads: a :class:`Dataset` is shared between the GUI thread (edits in memory) and one worker
at a time (flush, poll, analysis). Every mutation takes :attr:`Dataset.lock`; plain attribute
reads need no lock.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from zitdesk.captions import caption_line
from zitdesk.dataset.captions import (
    CaptionStyle,
    FileSig,
    conflict_path,
    is_stale_temp,
    normalise_caption,
    read_caption_file,
    write_caption_file,
)
from zitdesk.dataset.fsnames import SaveFailed, dumps, os_error_sentence, shown
from zitdesk.errors import RequestError
from zitdesk.folder import EXCLUDE_FILE, IMAGE_EXTS, DatasetItem, image_size, read_excluded
from zitdesk.io import atomic_write, clean_temp_files

log = logging.getLogger(__name__)

META_DIR = ".zitdesk"
INDEX_NAME = "index.json"
INDEX_VERSION = 1
CAPTION_EXT = ".txt"


@dataclass(slots=True, eq=False)
class ImageRecord:
    """One image of a dataset and its caption (``caption is None``: no caption file)."""

    name: str
    width: int
    height: int
    size: int
    mtime_ns: int
    caption: str | None = None
    style: CaptionStyle = field(default_factory=CaptionStyle)
    sig: FileSig | None = None
    sha256: str | None = None
    phash: int | None = None
    flagged: bool = False
    rating: int = 0
    conflict: str = ""
    excluded: bool = False  # kept in the folder, left out of training (.zitdesk/exclude)

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    @property
    def caption_name(self) -> str:
        return Path(self.name).with_suffix(CAPTION_EXT).name

    @property
    def train_caption(self) -> str:
        """The caption as the trainer reads it (:func:`zitdesk.captions.caption_line`)."""
        return caption_line(self.caption or "")

    @property
    def missing_caption(self) -> bool:
        return self.caption is None or not self.caption.strip()


@dataclass(frozen=True)
class Conflict:
    """A caption changed on disk while we had an unsaved edit: theirs kept, ours beside it."""

    name: str
    ours: str | None
    theirs: str | None
    ours_saved_as: str


@dataclass
class FlushReport:
    saved: list[str] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class PollReport:
    reloaded: list[str] = field(default_factory=list)
    images_changed: bool = False


class Dataset:
    """A managed dataset folder (see the module doc). Use :meth:`open` to build one."""

    def __init__(self, folder: Path, items: list[ImageRecord], problems: list[str]) -> None:
        self.folder = folder
        self.items = items
        self.by_name = {it.name: it for it in items}
        self.problems = problems
        self.lock = threading.RLock()
        self._pending: dict[str, str | None] = {}
        self._index_dirty = False
        self._exclude_dirty = False
        # every image file seen when the folder was read, readable or not: what poll_external
        # compares with (an unreadable image is not "added outside zitdesk")
        self.scanned_names: set[str] = set(self.by_name)

    # --- opening -----------------------------------------------------------------------------

    @property
    def meta_dir(self) -> Path:
        return self.folder / META_DIR

    @classmethod
    def open(
        cls,
        folder: str | os.PathLike[str],
        *,
        create: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> Dataset:
        """Read the folder: image headers (cached in the index), captions, flags.

        ``create`` makes the folder if missing. Stale temp files left by a killed writer are
        removed. Raises :class:`RequestError` if the folder does not exist.
        """
        root = Path(folder)
        if create:
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RequestError(
                    os_error_sentence(
                        exc, f"the dataset folder {shown(str(root))}", verb="created", kept=False
                    )
                ) from None
        if not root.is_dir():
            raise RequestError(f"The dataset folder {root} does not exist.")
        index = _load_index(root / META_DIR / INDEX_NAME)
        excluded = read_excluded(root)
        entries: dict[str, os.DirEntry] = {}
        with os.scandir(root) as it:
            for e in it:
                entries[e.name] = e
        names = sorted(
            n
            for n, e in entries.items()
            if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_EXTS and e.is_file()
        )
        for n, e in entries.items():
            if is_stale_temp(n) and e.is_file():
                try:
                    os.unlink(e.path)
                except OSError:
                    pass
        clean_temp_files(root / META_DIR)  # an index write a kill interrupted
        items: list[ImageRecord] = []
        problems: list[str] = []
        for i, name in enumerate(names):
            if progress is not None and i % 256 == 0:
                progress(i, len(names))
            e = entries[name]
            try:
                st = e.stat()
            except OSError:
                continue  # gone meanwhile
            cached = _sane_entry(index.get(name), st)
            if cached.get("w"):
                w, h = cached["w"], cached["h"]
                sha, ph = cached.get("sha256"), cached.get("phash")
            else:
                try:
                    w, h = image_size(Path(e.path))
                except Exception as exc:  # noqa: BLE001 - same rule as the trainer: skip it
                    problems.append(
                        f"{shown(name)} is not a readable image ({type(exc).__name__}); skipped."
                    )
                    continue
                sha, ph = None, None
            rec = ImageRecord(
                name,
                w,
                h,
                st.st_size,
                st.st_mtime_ns,
                sha256=sha,
                phash=ph,
                flagged=cached.get("flagged", False),
                rating=cached.get("rating", 0),
                excluded=name in excluded,
            )
            try:
                cap = read_caption_file(root / rec.caption_name)
                side = conflict_path(root / rec.caption_name)
                if os.path.lexists(side):
                    rec.conflict = side.name
            except OSError as exc:  # a caption we cannot read is never overwritten: left out
                problems.append(
                    f"{shown(rec.caption_name)} cannot be read "
                    f"({exc.strerror or exc}); {shown(name)} is left out until it can."
                )
                continue
            if cap is not None:
                rec.caption, rec.style, rec.sig = cap.text, cap.style, cap.sig
            items.append(rec)
        if progress is not None:
            progress(len(names), len(names))
        ds = cls(root, items, problems)
        ds.scanned_names = set(names)
        ds._index_dirty = any(it.name not in index for it in items)
        return ds

    def caption_path(self, item: ImageRecord) -> Path:
        return self.folder / item.caption_name

    def image_path(self, item: ImageRecord) -> Path:
        return self.folder / item.name

    def train_items(self) -> list[DatasetItem]:
        """The items as the trainer's :func:`scan_folder` would build them (from memory)."""
        return [
            DatasetItem(
                self.folder / it.name,
                it.train_caption,
                self.caption_path(it) if it.caption is not None else None,
                it.width,
                it.height,
            )
            for it in self.items
            if not it.excluded
        ]

    # --- captions ----------------------------------------------------------------------------

    def set_caption(self, item: ImageRecord, text: str | None) -> bool:
        """Change a caption in memory and queue it for :meth:`flush`. False if unchanged.

        The text is normalised (``\n`` line ends, no leading BOM) as it will read back."""
        if text is not None:
            text = normalise_caption(text)
        with self.lock:
            if item.caption == text:
                return False
            item.caption = text
            self._pending[item.name] = text
            return True

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> FlushReport:
        """Write every queued caption atomically; a file changed on disk is never overwritten.

        For each caption the file's signature is compared with the one we last read or wrote.
        If another program changed it, their file stays, ours is written to
        ``name.txt.zitdesk-conflict``, the record takes their text and the conflict is reported.
        """
        report = FlushReport()
        with self.lock:
            pending, self._pending = self._pending, {}
        for name, text in pending.items():
            item = self.by_name.get(name)
            if item is None:
                continue
            try:
                self._write_one(item, text, report)
            except Exception as exc:  # noqa: BLE001 - one caption never costs the others
                with self.lock:  # keep it queued: the next flush tries again
                    self._pending.setdefault(name, text)
                if not isinstance(exc, OSError):
                    log.warning("Saving %s failed", item.caption_name, exc_info=True)
                report.errors.append(os_error_sentence(exc, shown(item.caption_name)))
        return report

    def _write_one(self, item: ImageRecord, text: str | None, report: FlushReport) -> None:
        path = self.caption_path(item)
        with self.lock:
            known = item.sig
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        changed_outside = False
        disk = None
        if st is not None and (known is None or not known.same_stat(st)):
            disk = read_caption_file(path)
            if disk is not None and (known is None or disk.sig.sha1 != known.sha1):
                changed_outside = disk.text != text
        if changed_outside and disk is not None:
            side = conflict_path(path)
            if text is not None:
                write_caption_file(side, text, item.style)
            with self.lock:
                if self._pending.get(item.name, text) == text:
                    item.caption, item.style = disk.text, disk.style
                item.sig = disk.sig
                item.conflict = side.name if text is not None else ""
            report.conflicts.append(
                Conflict(item.name, text, disk.text, side.name if text is not None else "")
            )
            return
        if text is None:
            if st is not None:
                os.unlink(path)
            with self.lock:
                item.sig = None
        else:
            sig = write_caption_file(path, text, item.style)
            with self.lock:
                item.sig = sig
        report.saved.append(item.caption_name)

    def save_caption_now(self, item: ImageRecord, text: str | None) -> FlushReport:
        """Set and write one caption immediately (CLI, tests)."""
        self.set_caption(item, text)
        return self.flush()

    def resolve_conflict(self, item: ImageRecord) -> None:
        """Forget a conflict: delete ``name.txt.zitdesk-conflict`` (after the user chose)."""
        if item.conflict:
            try:
                os.unlink(self.folder / item.conflict)
            except FileNotFoundError:
                pass
            item.conflict = ""

    def conflict_text(self, item: ImageRecord) -> str | None:
        if not item.conflict:
            return None
        cap = read_caption_file(self.folder / item.conflict)
        return None if cap is None else cap.text

    def poll_external(self, between: Callable[[], None] | None = None) -> PollReport:
        """Reload captions changed by other programs (those without a pending edit).

        ``between()`` is called every 256 images (a GUI passes a gate that pauses the scan while
        the user scrolls)."""
        report = PollReport()
        with os.scandir(self.folder) as it:
            stats = {e.name: e for e in it}
        images = {
            n for n in stats if not n.startswith(".") and Path(n).suffix.lower() in IMAGE_EXTS
        }
        report.images_changed = images != self.scanned_names
        for k, item in enumerate(self.items):
            if between is not None and k % 256 == 255:
                between()
            e = stats.get(item.caption_name)
            st = e.stat() if e is not None else None
            if st is None and item.sig is None:
                continue
            if st is not None and item.sig is not None and item.sig.same_stat(st):
                continue
            with self.lock:
                if item.name in self._pending:
                    continue  # flush() will detect and report the conflict
                disk = read_caption_file(self.caption_path(item)) if st is not None else None
                if disk is None:
                    if item.caption is not None:
                        item.caption, item.sig = None, None
                        report.reloaded.append(item.name)
                    continue
                if item.sig is not None and disk.sig.sha1 == item.sig.sha1:
                    item.sig = disk.sig
                    continue
                item.caption, item.style, item.sig = disk.text, disk.style, disk.sig
                report.reloaded.append(item.name)
        return report

    # --- flags and index ---------------------------------------------------------------------

    def set_flagged(self, item: ImageRecord, flagged: bool) -> None:
        with self.lock:
            item.flagged = flagged
            self._index_dirty = True

    def set_excluded(self, item: ImageRecord, excluded: bool) -> None:
        """Keep the image but leave it out of training (saved to ``.zitdesk/exclude``)."""
        with self.lock:
            if item.excluded != excluded:
                item.excluded = excluded
                self._exclude_dirty = self._index_dirty = True

    def remove_item(self, name: str) -> ImageRecord | None:
        """Forget an image the user deleted (moved to the trash) with its caption."""
        with self.lock:
            item = self.by_name.pop(name, None)
            if item is None:
                return None
            self.items.remove(item)
            self._pending.pop(name, None)
            self.scanned_names.discard(name)
            self._index_dirty = True
            if item.excluded:
                self._exclude_dirty = True
            return item

    def image_rewritten(self, item: ImageRecord) -> None:
        """zitdesk rewrote the image file (a crop or its undo): size, mtime and dimensions are
        read again, the content hashes forgotten (learnt again by the next check)."""
        path = self.image_path(item)
        st = os.stat(path)
        w, h = image_size(path)
        with self.lock:
            item.width, item.height = w, h
            item.size, item.mtime_ns = st.st_size, st.st_mtime_ns
            item.sha256 = item.phash = None
            self._index_dirty = True

    def set_rating(self, item: ImageRecord, rating: int) -> None:
        with self.lock:
            item.rating = max(0, min(5, int(rating)))
            self._index_dirty = True

    def record_analysis(self, item: ImageRecord, sha256: str, phash: int) -> None:
        with self.lock:
            item.sha256, item.phash = sha256, phash
            self._index_dirty = True

    @property
    def index_dirty(self) -> bool:
        return self._index_dirty

    def save_index(self, force: bool = False) -> bool:
        """Write ``.zitdesk/index.json`` if anything changed. Returns True if written."""
        with self.lock:
            if not (self._index_dirty or force):
                return False
            entries = [(it.name, _index_entry(it)) for it in self.items]
            excluded = (
                sorted(it.name for it in self.items if it.excluded) if self._exclude_dirty else None
            )
            self._index_dirty = self._exclude_dirty = False
        try:
            if excluded is not None:
                atomic_write(self.folder / EXCLUDE_FILE, "".join(f"{n}\n" for n in excluded))
            atomic_write(self.meta_dir / INDEX_NAME, _index_json(entries))
        except OSError as exc:
            with self.lock:
                self._index_dirty = True  # written again by the next save
                self._exclude_dirty = self._exclude_dirty or excluded is not None
            raise SaveFailed(exc, "the dataset index (flags and ratings)") from exc
        return True

    # --- changes with conflict checks (bulk edits, undo, redo) ----------------------------------

    def apply_changes(
        self, changes: Iterable[tuple[str, str | None, str | None]]
    ) -> tuple[list[str], list[str]]:
        """Apply ``(image name, expected, new)`` caption changes in memory (queued for flush).

        A change applies when the caption is still ``expected``; one already at ``new`` counts as
        done; any other caption was changed meanwhile and is left alone (listed in ``skipped``).
        Returns ``(applied names, skipped sentences)``.
        """
        applied: list[str] = []
        skipped: list[str] = []
        with self.lock:
            for name, expected, new in changes:
                expected = None if expected is None else normalise_caption(expected)
                new = None if new is None else normalise_caption(new)
                item = self.by_name.get(name)
                if item is None:
                    skipped.append(f"{shown(name)} is no longer in the dataset.")
                    continue
                if item.caption == new:
                    applied.append(name)
                    continue
                if item.caption != expected:
                    skipped.append(f"{shown(item.caption_name)} was changed since; left as it is.")
                    continue
                self.set_caption(item, new)
                applied.append(name)
        return applied, skipped

    def captions(self) -> dict[str, str | None]:
        """Caption file name → text (None: no file), for snapshots."""
        with self.lock:
            return {it.name: it.caption for it in self.items}


def _index_entry(it: ImageRecord) -> dict:
    d: dict = {"size": it.size, "mtime_ns": it.mtime_ns, "w": it.width, "h": it.height}
    if it.sha256:
        d["sha256"] = it.sha256
    if it.phash is not None:
        d["phash"] = f"{it.phash:016x}"
    if it.flagged:
        d["flagged"] = True
    if it.rating:
        d["rating"] = it.rating
    return d


def _sane_entry(e: object, st: os.stat_result) -> dict:
    """The parts of an index entry that have the right types: flags and rating always; size,
    hashes only while the file has the size and mtime they were taken at. Anything else in a
    hand-edited or damaged entry is ignored, never an error."""
    if not isinstance(e, dict):
        return {}
    out: dict = {}
    if e.get("flagged") is True:
        out["flagged"] = True
    r = e.get("rating")
    if isinstance(r, int) and not isinstance(r, bool):
        out["rating"] = max(0, min(5, r))
    if e.get("size") != st.st_size or e.get("mtime_ns") != st.st_mtime_ns:
        return out
    w, h = e.get("w"), e.get("h")
    if all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1 << 20 for v in (w, h)):
        out["w"], out["h"] = w, h
        sha, ph = e.get("sha256"), e.get("phash")
        if isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha):
            out["sha256"] = sha
        if isinstance(ph, str) and re.fullmatch(r"[0-9a-f]{1,16}", ph):
            out["phash"] = int(ph, 16)
    return out


def _load_index(path: Path) -> dict[str, dict]:
    """The index's image table; a missing or damaged index is an empty one (it is a cache +
    flags; a damaged file is kept as ``index.json.bad`` so flags can be recovered by hand)."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.warning("Cannot read %s (%s); starting without it.", path, exc)
        return {}
    try:
        data = json.loads(raw)
        images = data["images"]
        if not isinstance(images, dict):
            raise TypeError("images is not a table")
        return {k: v for k, v in images.items() if isinstance(v, dict)}
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        log.warning("Damaged %s (%s); kept as .bad, starting without it.", path, exc)
        try:
            os.replace(path, path.with_suffix(".json.bad"))
        except OSError:
            pass
        return {}


def _index_json(entries: list[tuple[str, dict]]) -> str:
    """The index as JSON, one small ``dumps`` per image: the same text as one big ``dumps``, but
    a Python loop, so a GUI thread waiting for the GIL gets it within the switch interval
    instead of after the whole 10,000-image encode."""
    parts = [dumps(name) + ":" + json.dumps(e, separators=(",", ":")) for name, e in entries]
    return f'{{"version":{INDEX_VERSION},"images":{{' + ",".join(parts) + "}}"


def merge_index_entries(folder: Path, entries: dict[str, dict]) -> None:
    """Add/replace index entries for files just written into ``folder`` (used by import)."""
    path = folder / META_DIR / INDEX_NAME
    index = _load_index(path)
    index.update(entries)
    atomic_write(path, _index_json(list(index.items())))
