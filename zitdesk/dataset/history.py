"""Per-dataset edit history (undo that survives a restart) and caption snapshots.

``.zitdesk/journal.jsonl`` holds one JSON object per line:

* ``{"op": "do", "id", "ts", "label", "changes": [[image, old, new], ...], "snapshot"}``
* ``{"op": "undo", "id"}`` / ``{"op": "redo", "id"}``

``old``/``new`` are caption texts (``null``: no caption file), normalised as captions are held in
memory (:func:`~zitdesk.dataset.captions.normalise_caption`), so they compare equal to the files
read back after a restart. Image names that are not UTF-8 are kept as ``\\udcXX`` escapes
(:func:`zitdesk.dataset.fsnames.dumps`). Replaying the lines gives the undo stack and the redo
stack as they were when the app closed. Lines are appended and fsynced; a line cut short by a
crash is ignored on load and the file is rewritten (atomically) without it. When the journal
grows past :data:`MAX_ENTRIES` commands it is rewritten with the newest ones.

A failed append (a full disk) never costs an entry: the torn part is cut off again (and, should
that fail too, before the next append), the lines stay queued and the next flush writes them;
the error is a :class:`~zitdesk.dataset.fsnames.SaveFailed` whose text is one sentence.
:meth:`History.load` never raises: an unreadable journal is an empty history (said in
:attr:`Replayed.problem`), a repair that cannot be written waits for the next load.

``.zitdesk/snapshots/<time>-<id>.json`` holds every caption of the dataset, taken before each
bulk edit; the newest :data:`MAX_SNAPSHOTS` are kept.

Writes are queued in memory and done by :meth:`History.flush` (the UI calls it on a worker, before
flushing captions, so the journal is always at least as new as the caption files).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from zitdesk.dataset.captions import normalise_caption
from zitdesk.dataset.fsnames import SaveFailed, dumps
from zitdesk.io import atomic_write, clean_temp_files, default_file_mode

log = logging.getLogger(__name__)

JOURNAL_NAME = "journal.jsonl"
SNAPSHOT_DIR = "snapshots"
MAX_ENTRIES = 500
MAX_SNAPSHOTS = 20

Change = tuple[str, str | None, str | None]


@dataclass
class Entry:
    """One undoable command: a label and its caption changes."""

    id: str
    label: str
    changes: list[Change]
    ts: float = 0.0
    snapshot: str | None = None

    def __post_init__(self) -> None:
        self.changes = [(str(n), _norm(old), _norm(new)) for n, old, new in self.changes]

    def to_json(self) -> dict:
        return {
            "op": "do",
            "id": self.id,
            "ts": self.ts,
            "label": self.label,
            "changes": [list(c) for c in self.changes],
            "snapshot": self.snapshot,
        }

    @classmethod
    def new(cls, label: str, changes: list[Change], snapshot: str | None = None) -> Entry:
        return cls(uuid.uuid4().hex[:16], label, list(changes), time.time(), snapshot)


def _norm(text: str | None) -> str | None:
    return None if text is None else normalise_caption(str(text))


@dataclass
class Replayed:
    done: list[Entry] = field(default_factory=list)
    undone: list[Entry] = field(default_factory=list)  # top of the redo stack is last
    bad_lines: int = 0
    problem: str = ""  # a sentence when the journal could not be read (history is empty)


def _parse_line(line: bytes) -> dict | None:
    """One journal record, or None. A line that an older version glued to a torn fragment
    (``{"op": "do", "id": "ab{"op": ...}``) gives its intact last record."""
    last = line.rfind(b'{"op"')
    for start in (0, last) if last > 0 else (0,):
        try:
            rec = json.loads(line[start:])
        except (ValueError, RecursionError):
            continue
        if isinstance(rec, dict) and "op" in rec:
            return rec
    return None


class History:
    """The journal and snapshots of one dataset's ``.zitdesk`` folder."""

    def __init__(self, meta_dir: str | os.PathLike[str]) -> None:
        self.meta_dir = Path(meta_dir)
        self.path = self.meta_dir / JOURNAL_NAME
        self.lock = threading.Lock()
        self._lines: list[str] = []
        self._snapshots: list[tuple[str, dict]] = []
        self._count = 0

    # --- reading -----------------------------------------------------------------------------

    def load(self) -> Replayed:
        """Replay the journal; repairs a torn last line and compacts a long journal."""
        out = Replayed()
        # temp files of journal/index/snapshot writes a killed process left behind
        clean_temp_files(self.meta_dir)
        clean_temp_files(self.meta_dir / SNAPSHOT_DIR)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return out
        except OSError as exc:
            log.warning("Cannot read %s (%s); opening without the edit history.", self.path, exc)
            out.problem = (
                "The edit history of this dataset cannot be read "
                f"({exc.strerror or exc}); "
                "undo starts empty, the captions are not affected."
            )
            return out
        lines = raw.split(b"\n")
        n = 0
        for line in lines:
            if not line.strip():
                continue
            rec = _parse_line(line)
            if rec is None:
                out.bad_lines += 1
                continue
            op = rec["op"]
            n += 1
            if op == "do":
                try:
                    snap = rec.get("snapshot")
                    e = Entry(
                        str(rec["id"]),
                        str(rec.get("label", "")),
                        [(str(c[0]), c[1], c[2]) for c in rec["changes"]],
                        float(rec.get("ts", 0.0)),
                        snap if isinstance(snap, str) else None,
                    )
                except (KeyError, TypeError, IndexError, ValueError):
                    out.bad_lines += 1
                    continue
                out.done.append(e)
                out.undone.clear()
            elif op == "undo" and out.done and out.done[-1].id == rec.get("id"):
                out.undone.append(out.done.pop())
            elif op == "redo" and out.undone and out.undone[-1].id == rec.get("id"):
                out.done.append(out.undone.pop())
        self._count = n
        if out.bad_lines or (raw and not raw.endswith(b"\n")) or len(out.done) > MAX_ENTRIES:
            out.done = out.done[-MAX_ENTRIES:]
            try:
                self._rewrite(out)
            except OSError as exc:  # full or read-only disk: repaired by a later load
                log.warning("Cannot repair %s (%s); kept as it is for now.", self.path, exc)
        return out

    def _rewrite(self, state: Replayed) -> None:
        lines = [dumps(e.to_json()) for e in state.done]
        for e in reversed(state.undone):  # re-create the redo stack: do, then undo, newest first
            lines.append(dumps(e.to_json()))
        for e in state.undone:
            lines.append(json.dumps({"op": "undo", "id": e.id}))
        with self.lock:
            atomic_write(self.path, "".join(s + "\n" for s in lines))
            self._count = len(lines)

    # --- recording (in memory; written by flush) ---------------------------------------------

    def record_do(self, entry: Entry) -> None:
        self._queue(dumps(entry.to_json()))

    def record_undo(self, entry_id: str) -> None:
        self._queue(json.dumps({"op": "undo", "id": entry_id}))

    def record_redo(self, entry_id: str) -> None:
        self._queue(json.dumps({"op": "redo", "id": entry_id}))

    def _queue(self, line: str) -> None:
        with self.lock:
            self._lines.append(line)

    def snapshot(self, captions: dict[str, str | None], label: str) -> str:
        """Queue a snapshot of ``captions``; returns its name (relative to the meta folder)."""
        ns = time.time_ns()  # names sort in time order, also within one second
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(ns / 1e9))
        name = f"{SNAPSHOT_DIR}/{stamp}.{ns % 10**9:09d}-{uuid.uuid4().hex[:6]}.json"
        with self.lock:
            self._snapshots.append(
                (
                    name,
                    {
                        "created": time.time(),
                        "label": label,
                        "captions": {k: _norm(v) for k, v in captions.items()},
                    },
                )
            )
        return name

    @property
    def pending(self) -> bool:
        return bool(self._lines or self._snapshots)

    def flush(self) -> None:
        """Write queued snapshots, then append queued journal lines (fsynced).

        On a failure nothing is dropped: what was not written stays queued, in order, for the
        next flush, and :class:`~zitdesk.dataset.fsnames.SaveFailed` (an ``OSError``) says why
        in one sentence."""
        with self.lock:
            snaps, self._snapshots = self._snapshots, []
            lines, self._lines = self._lines, []
        done = 0
        try:
            for name, data in snaps:
                atomic_write(self.meta_dir / name, dumps(data))
                done += 1
        except OSError as exc:
            self._requeue(snaps[done:], lines)
            raise SaveFailed(exc, "the snapshot of the captions") from exc
        if snaps:
            self._prune_snapshots()
        if not lines:
            return
        payload = "".join(s + "\n" for s in lines).encode("utf-8")
        try:
            self.meta_dir.mkdir(parents=True, exist_ok=True)
            with self.lock:
                self._append(payload)
                self._count += len(lines)
                grow = self._count > 4 * MAX_ENTRIES
        except OSError as exc:
            self._requeue([], lines)
            raise SaveFailed(exc, "the edit history (undo)") from exc
        if grow:
            self.load()  # compacts to the newest MAX_ENTRIES

    def _requeue(self, snaps: list[tuple[str, dict]], lines: list[str]) -> None:
        with self.lock:  # before anything queued meanwhile: the order of the journal is kept
            self._snapshots[:0] = snaps
            self._lines[:0] = lines

    def _append(self, payload: bytes) -> None:
        """Append whole lines, fsynced; a torn tail (ours, or a crashed writer's) is cut first,
        and what this append wrote is cut again if it fails, so lines are never glued."""
        fd = os.open(
            self.path,
            os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0),
            default_file_mode(),
        )
        try:
            size = _cut_torn_tail(fd)
            try:
                view = memoryview(payload)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                os.fsync(fd)
            except OSError:
                try:
                    os.ftruncate(fd, size)
                    os.fsync(fd)
                except OSError:
                    pass  # cut before the next append (see _cut_torn_tail)
                raise
        finally:
            os.close(fd)

    # --- snapshots ---------------------------------------------------------------------------

    def list_snapshots(self) -> list[Path]:
        d = self.meta_dir / SNAPSHOT_DIR
        return sorted(d.glob("*.json")) if d.is_dir() else []

    def _prune_snapshots(self) -> None:
        snaps = self.list_snapshots()
        for p in snaps[:-MAX_SNAPSHOTS]:
            try:
                p.unlink()
            except OSError:
                pass

    def read_snapshot(self, path: str | os.PathLike[str]) -> dict[str, str | None]:
        p = Path(path)
        if not p.is_absolute():
            p = self.meta_dir / p
        captions = json.loads(p.read_text(encoding="utf-8"))["captions"]
        return {k: _norm(v) for k, v in captions.items()}


def _cut_torn_tail(fd: int) -> int:
    """Cut the file open at ``fd`` after its last newline if it does not end with one; returns
    the (new) size."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    end = size
    while end > 0:
        start = max(0, end - 65536)
        chunk = os.pread(fd, end - start, start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            end = start + i + 1
            break
        end = start
    os.ftruncate(fd, end)
    return end


def restore_changes(
    current: dict[str, str | None], snapshot: dict[str, str | None]
) -> list[Change]:
    """Changes that bring ``current`` captions back to ``snapshot`` (images present in both)."""
    return [
        (name, current[name], old)
        for name, old in snapshot.items()
        if name in current and current[name] != old
    ]
