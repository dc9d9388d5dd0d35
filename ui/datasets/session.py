"""``DatasetSession``: one open dataset with its undo stack, autosave, watcher and workers.

It owns the Qt-free :class:`~zitdesk.dataset.store.Dataset` and
:class:`~zitdesk.dataset.history.History`, a ``QUndoStack`` whose commands
(:mod:`ui.datasets.commands`) call :meth:`apply`, and three timers:

* **autosave** (1 s debounce, restarted by every edit): one pool job writes queued journal lines
  and snapshots first, then the captions (atomic, outside changes detected), then the index.
  One flush at a time; edits made during a flush are written by the next one.
* **watch** (every 2 s): reloads captions changed by other programs; notices images added or
  removed outside the app.
* **tokens** (300 ms debounce): recounts the edited captions with the Qwen3 tokenizer, which is
  loaded once on a worker (importing transformers takes seconds, never on the GUI thread).

Signals carry names (``list``) or plain objects; every slot receiving pool results runs on the
GUI thread (queued connections from :class:`ui.tasks.TaskRunner`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtGui import QUndoStack

from ui.datasets.jobs import (
    check_job,
    count_job,
    default_tokenizer_loader,
    flush_job,
    load_tokenizer,
    open_job,
)
from ui.tasks import InteractionGate, Progress, TaskRunner
from zitdesk.dataset.check import CheckOptions
from zitdesk.dataset.crop import CropDone, crop_image, restore_original, undo_crop
from zitdesk.dataset.crop import redo as crop_redo
from zitdesk.dataset.history import Entry, History, Replayed
from zitdesk.dataset.store import Dataset, FlushReport, ImageRecord
from zitdesk.train.dataset import apply_trigger

log = logging.getLogger(__name__)

AUTOSAVE_MS = 1000
WATCH_MS = 2000
INDEX_SAVE_MS = 30_000
TOKENS_MS = 300

Change = tuple[str, str | None, str | None]

__all__ = ["DatasetSession", "default_tokenizer_loader"]


class DatasetSession(QObject):
    """See the module doc."""

    opened = Signal(object)  # Dataset
    open_failed = Signal(str)
    captions_changed = Signal(list)  # image names
    flags_changed = Signal(list)
    images_removed = Signal(list)  # image names moved to the trash
    images_rewritten = Signal(list)  # image names whose pixels zitdesk changed (crop, undo)
    image_changed = Signal(object)  # CropDone of a new crop or restore (not undo/redo)
    conflicts_found = Signal(list)  # [Conflict]
    images_changed_outside = Signal()
    message = Signal(str, str)  # level ("info"|"warning"|"error"), text
    save_state_changed = Signal(str)
    tokens_counted = Signal(dict, int)  # name → prompt tokens, available budget
    check_done = Signal(object)  # CheckReport

    def __init__(
        self,
        tokenizer_loader: Callable[[], Any] | None = default_tokenizer_loader,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.dataset: Dataset | None = None
        self.history: History | None = None
        self.undo_stack = QUndoStack(self)
        self.restoring = False
        self.trigger = ""
        self._tok_loader = tokenizer_loader
        self._tok: Any = None
        self._runner = TaskRunner(2, self, name="zitdesk-datasets")
        self._runner.done.connect(self._on_done)
        self._runner.failed.connect(self._on_failed)
        self._rewrites = TaskRunner(1, self, name="zitdesk-crops")
        self._rewrites.done.connect(self._on_rewritten)
        self._rewrites.failed.connect(self._on_rewrite_failed)
        self._check_box = Progress(self)
        self.check_progress = self._check_box.changed  # (done, total) while checking
        self.gate = InteractionGate(self)
        self._save_state = ""
        self._flushing = False
        self._flush_again = False
        self._polling = False
        self._counting = False
        self._count_again: set[str] = set()
        self._checking = False
        self._reload_pending = False
        self._images_outside_told = False
        self._generation = 0
        self._autosave = QTimer(self, singleShot=True, interval=AUTOSAVE_MS)
        self._autosave.timeout.connect(self.flush_now)
        self._index_timer = QTimer(self, singleShot=True, interval=INDEX_SAVE_MS)
        self._index_timer.timeout.connect(self.flush_now)
        self._watch = QTimer(self, interval=WATCH_MS)
        self._watch.timeout.connect(self._poll)
        self._tokens_timer = QTimer(self, singleShot=True, interval=TOKENS_MS)
        self._tokens_timer.timeout.connect(self._count_pending)
        self._token_dirty: set[str] = set()
        if tokenizer_loader is not None:
            # Parsing tokenizer.json holds the GIL for ~0.4 s (tokenizers' Rust parser): do it
            # now, while the app or the dataset is opening, not later in the middle of a scroll.
            self._runner.run(("tokload", 0), load_tokenizer, tokenizer_loader, None)

    # --- opening -----------------------------------------------------------------------------

    def open(self, folder: str | Path) -> None:
        """Open ``folder`` on a worker; ``opened`` fires when it is ready. The dataset open
        before is saved first (blocking: a few small writes)."""
        if self.dataset is not None:
            self._watch.stop()
            self._runner.wait(60_000)
            self._runner.drain()
            self._flushing = False
            if self.dirty and self.history is not None:
                rep = flush_job(self.dataset, self.history)
                if rep.conflicts:
                    self.message.emit(
                        "warning",
                        f"{len(rep.conflicts)} caption(s) of the "
                        "previous dataset were changed outside; yours are saved "
                        "beside them as .zitdesk-conflict files.",
                    )
        self._generation += 1
        self._runner.run(("open", self._generation), open_job, str(folder))

    def reload(self) -> None:
        """Re-read the folder (after an import): pending edits are flushed first, then kept."""
        if self.dataset is None:
            return
        self._reload_pending = True
        if not self._flushing:
            self.flush_now()

    def _adopt(self, ds: Dataset, replay: Replayed | None) -> None:
        old = self.dataset
        if old is not None and old.folder == ds.folder:
            with old.lock:  # edits made while the folder was being re-read
                for name, text in old._pending.items():
                    it = ds.by_name.get(name)
                    if it is not None:
                        ds.set_caption(it, text)
        same = old is not None and old.folder == ds.folder
        self.dataset = ds
        if not same:
            self.history = History(ds.meta_dir)
            self._restore_undo(replay or Replayed())
            self._tok_counts_reset()
        self._images_outside_told = False
        self._watch.start()
        self.opened.emit(ds)
        self._count_all()

    def _restore_undo(self, replay: Replayed) -> None:
        from ui.datasets.commands import CaptionCommand

        self.undo_stack.clear()
        self.restoring = True
        try:
            for e in replay.done:
                self.undo_stack.push(CaptionCommand(self, e, journaled=True))
            for e in reversed(replay.undone):
                self.undo_stack.push(CaptionCommand(self, e, journaled=True))
            self.undo_stack.setIndex(len(replay.done))
            self.undo_stack.setClean()
        finally:
            self.restoring = False

    # --- edits -------------------------------------------------------------------------------

    def record(self, name: str) -> ImageRecord | None:
        return self.dataset.by_name.get(name) if self.dataset else None

    def edit(self, label: str, changes: list[Change], snapshot: bool = False) -> None:
        """Push one undoable command (a bulk edit takes a snapshot of all captions first)."""
        from ui.datasets.commands import CaptionCommand

        if self.dataset is None or self.history is None or not changes:
            return
        snap = self.history.snapshot(self.dataset.captions(), label) if snapshot else None
        self.undo_stack.push(CaptionCommand(self, Entry.new(label, changes, snap)))
        if snapshot:
            self.flush_now()

    def apply(self, changes: list[Change]) -> None:
        """Apply caption changes (commands call this); skipped ones are reported, not forced."""
        if self.dataset is None:
            return
        applied, skipped = self.dataset.apply_changes(changes)
        if skipped:
            more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
            self.message.emit("warning", "Not changed: " + " ".join(skipped[:3]) + more)
        if applied:
            self.captions_changed.emit(applied)
            self._token_dirty.update(applied)
            self._tokens_timer.start()
            self.schedule_save()

    def set_flags(self, names: list[str], flagged: bool) -> None:
        if self.dataset is None:
            return
        for n in names:
            it = self.dataset.by_name.get(n)
            if it is not None:
                self.dataset.set_flagged(it, flagged)
        self.flags_changed.emit(names)
        self.schedule_save()

    def set_excluded(self, names: list[str], excluded: bool) -> None:
        """Leave images out of training (or take them back); the files stay in the folder."""
        if self.dataset is None:
            return
        for n in names:
            it = self.dataset.by_name.get(n)
            if it is not None:
                self.dataset.set_excluded(it, excluded)
        self.flags_changed.emit(names)
        self.schedule_save()

    def trash(self, names: list[str], move_to_trash: Callable[[Path], bool]) -> list[str]:
        """Move images and their caption files to the system trash (``move_to_trash``: the UI's
        ``QFile.moveToTrash``); returns the names removed. Pending edits are written first, so
        the trashed caption is the one the user saw."""
        ds = self.dataset
        if ds is None or not names:
            return []
        self.flush_blocking()
        removed: list[str] = []
        failed: list[str] = []
        for n in names:
            it = ds.by_name.get(n)
            if it is None:
                continue
            if not move_to_trash(ds.image_path(it)):
                failed.append(n)
                continue
            cap = ds.caption_path(it)
            if cap.exists() and not any(
                o is not it and o.caption_name == it.caption_name for o in ds.items
            ):
                move_to_trash(cap)
            ds.remove_item(n)
            removed.append(n)
        if failed:
            more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
            self.message.emit(
                "error", "Could not move to the trash: " + ", ".join(failed[:3]) + more + "."
            )
        if removed:
            self.images_removed.emit(removed)
            self.schedule_save(edited=False)
            self.flush_now()
        return removed

    # --- crops ------------------------------------------------------------------------------
    # Crops, their undo/redo and restores run one at a time, in order, on their own worker (a
    # 12 MP JPEG takes ~0.2-0.4 s to decode and encode); ``images_rewritten`` follows each.

    def crop(self, name: str, box) -> bool:
        """Crop an image in place (its previous bytes kept, undoable). False when there is no
        such image; a crop that cannot be done says why as a message."""
        return self._rewrite(name, lambda folder: crop_image(folder, name, box), push=True)

    def restore_original(self, name: str) -> bool:
        """Put back the image as it was before its first crop (undoable)."""
        return self._rewrite(name, lambda folder: restore_original(folder, name), push=True)

    def undo_crop(self, done: CropDone) -> None:
        def job(folder: Path) -> CropDone:
            undo_crop(folder, done)
            return done

        self._rewrite(done.name, job)

    def redo_crop(self, done: CropDone) -> None:
        self._rewrite(done.name, lambda folder: crop_redo(folder, done))

    @property
    def rewriting(self) -> bool:
        return self._rewrites.active > 0

    def _rewrite(self, name: str, job, push: bool = False) -> bool:
        ds, it = self.dataset, self.record(name)
        if ds is None or it is None:
            return False

        def work(folder: Path) -> CropDone:
            done = job(folder)
            ds.image_rewritten(it)  # under the dataset's lock
            return done

        self._rewrites.run((name, push, self._generation), work, ds.folder)
        return True

    @Slot(object, object)
    def _on_rewritten(self, tag, done: CropDone) -> None:
        from ui.datasets.commands import CropCommand

        name, push, gen = tag
        if gen != self._generation:
            return
        self.images_rewritten.emit([name])
        self.schedule_save(edited=False)
        if push:
            self.undo_stack.push(CropCommand(self, done))
            self.image_changed.emit(done)

    @Slot(object, object)
    def _on_rewrite_failed(self, _tag, msg) -> None:
        self.message.emit("error", str(msg))

    def flush_blocking(self) -> None:
        """Wait for running work and write pending edits now (GUI thread, short)."""
        if self.dataset is None or self.history is None:
            return
        self._runner.wait(60_000)
        self._runner.drain()
        if self.dirty:
            self._after_flush(flush_job(self.dataset, self.history))

    @Slot(list)
    def record_analyses(self, facts: list) -> None:
        """``[(name, sha256, phash)]`` learnt by the thumbnail workers."""
        for name, sha, ph in facts:
            self.record_analysis(name, sha, ph)

    def record_analysis(self, name: str, sha: str, phash: int) -> None:
        it = self.record(name)
        if it is not None and it.sha256 != sha:
            self.dataset.record_analysis(it, sha, phash)
            self.schedule_save(edited=False)  # the index learns hashes while browsing

    def resolve_conflict(self, name: str, use_mine: bool) -> None:
        it = self.record(name)
        if it is None or self.dataset is None:
            return
        mine = self.dataset.conflict_text(it)
        self.dataset.resolve_conflict(it)
        if use_mine and mine is not None and mine != it.caption:
            self.edit(f"Use my caption for {name}", [(name, it.caption, mine)])
        else:
            self.captions_changed.emit([name])

    # --- saving ------------------------------------------------------------------------------

    def schedule_save(self, edited: bool = True) -> None:
        """Start (restart) the autosave delay; ``edited``: a user edit (shown as unsaved).

        Cache-only changes (hashes learnt while browsing) wait :data:`INDEX_SAVE_MS`: rewriting
        a 10,000-entry index every second would compete with the GUI for nothing."""
        if edited:
            self._autosave.start()
            self._set_save_state("Unsaved changes…")
        elif not self._autosave.isActive() and not self._index_timer.isActive():
            self._index_timer.start()

    @property
    def dirty(self) -> bool:
        return bool(
            self.dataset
            and (self.dataset.pending or self.dataset.index_dirty)
            or self.history
            and self.history.pending
        )

    @Slot()
    def flush_now(self) -> None:
        self._autosave.stop()
        self._index_timer.stop()
        if self.dataset is None or self.history is None:
            return
        if self._flushing:
            self._flush_again = True
            return
        if not self.dirty and not self._reload_pending:
            self._set_save_state("All changes saved")
            return
        self._flushing = True
        if self.dataset.pending or (self.history and self.history.pending):
            self._set_save_state("Saving…")
        self._runner.run(("flush", self._generation), flush_job, self.dataset, self.history)

    def _after_flush(self, rep: FlushReport) -> None:
        self._flushing = False
        if rep.conflicts:
            self.conflicts_found.emit(list(rep.conflicts))
            self.captions_changed.emit([c.name for c in rep.conflicts])
        if rep.errors:  # each is a sentence that says what was not saved and what to do
            more = f" ({len(rep.errors) - 3} more)" if len(rep.errors) > 3 else ""
            self.message.emit("error", " ".join(rep.errors[:3]) + more)
        # a failed write stays queued for the next autosave, not retried in a tight loop
        if self._flush_again or (self.dataset and self.dataset.pending and not rep.errors):
            self._flush_again = False
            self.flush_now()
            return
        if self._reload_pending and self.dataset is not None:
            self._reload_pending = False
            self._runner.run(("reload", self._generation), open_job, str(self.dataset.folder))
        self._set_save_state("All changes saved" if not rep.errors else "Not saved")

    def shutdown(self) -> None:
        """Stop timers, wait for workers, write everything still pending (blocking)."""
        for t in (self._autosave, self._index_timer, self._watch, self._tokens_timer):
            t.stop()
        self.gate.release()
        self._rewrites.wait(60_000)
        self._rewrites.discard()
        self._runner.wait(60_000)
        self._runner.discard()
        if self.dataset is not None and self.history is not None:
            try:
                rep = flush_job(self.dataset, self.history)
                if rep.conflicts:
                    log.warning(
                        "%d caption conflict(s) at shutdown; ours saved beside theirs.",
                        len(rep.conflicts),
                    )
            except OSError:
                log.exception("final dataset flush failed")

    def wait_idle(self, msecs: int = 30_000) -> bool:
        return self._runner.wait(msecs)

    # --- watching ----------------------------------------------------------------------------

    @Slot()
    def _poll(self) -> None:
        if self.dataset is None or self._polling or self._flushing or not self.gate.is_open:
            return
        # a 10,000-image folder is scanned every 10 s, a 1,000-image one every 2 s
        n = len(self.dataset.items)
        self._watch.setInterval(max(WATCH_MS, min(10_000, n)))
        self._polling = True
        self._runner.run(("poll", self._generation), self.dataset.poll_external, self.gate.wait)

    # --- tokens ------------------------------------------------------------------------------

    def set_trigger(self, trigger: str) -> None:
        if trigger != self.trigger:
            self.trigger = trigger
            self._count_all()

    def _tok_counts_reset(self) -> None:
        self._token_dirty.clear()

    def _count_all(self) -> None:
        if self.dataset is not None:
            self._token_dirty = {it.name for it in self.dataset.items}
            self._count_pending()

    @Slot()
    def _count_pending(self) -> None:
        if (
            self.dataset is None
            or not self._token_dirty
            or (self._tok_loader is None and self._tok is None)
        ):
            return
        if self._counting:
            self._tokens_timer.start()
            return
        names, self._token_dirty = self._token_dirty, set()
        pairs = [
            (n, apply_trigger(it.train_caption, self.trigger))
            for n in names
            if (it := self.dataset.by_name.get(n)) is not None
        ]
        self._counting = True
        self._runner.run(
            ("tokens", self._generation), count_job, self._tok_loader, self._tok, pairs, self.gate
        )

    # --- check -------------------------------------------------------------------------------

    def run_check(self, opts: CheckOptions) -> bool:
        """Start the pre-flight check on the in-memory captions; False if one is running."""
        if self.dataset is None or self._checking:
            return False
        ds = self.dataset
        # plain tuples here; the worker builds the trainer's DatasetItems (10k Paths ≈ 60 ms)
        kept = [it for it in ds.items if not it.excluded]  # as the trainer will see them
        rows = [
            (
                it.name,
                it.train_caption,
                it.caption_name,
                it.caption is not None,
                it.width,
                it.height,
            )
            for it in kept
        ]
        names = [it.name for it in kept]
        cached = {
            it.name: (it.sha256, it.phash) for it in kept if it.sha256 and it.phash is not None
        }
        self._checking = True
        self._check_box.reset()
        self._runner.run(
            ("check", self._generation),
            check_job,
            str(ds.folder),
            rows,
            names,
            cached,
            opts,
            self._tok_loader,
            self._tok,
            self._check_box,
            self.gate,
        )
        return True

    @property
    def checking(self) -> bool:
        return self._checking

    # --- results (the runner's signals, on the GUI thread) --------------------------------------

    def _set_save_state(self, text: str) -> None:
        if text != self._save_state:  # emitted only on change
            self._save_state = text
            self.save_state_changed.emit(text)

    @Slot(object, object)
    def _on_done(self, tag, result) -> None:
        kind, gen = tag
        if kind == "open":
            if gen == self._generation:
                self._adopt(*result)
            return
        if kind == "reload":
            if self.dataset is not None and result[0].folder == self.dataset.folder:
                self._adopt(result[0], None)
            return
        if kind == "flush":
            self._after_flush(result)
        elif kind == "poll":
            self._polling = False
            if result.reloaded:
                self.captions_changed.emit(result.reloaded)
                self._token_dirty.update(result.reloaded)
                self._tokens_timer.start()
                self.message.emit(
                    "info",
                    f"{len(result.reloaded)} caption(s) changed outside zitdesk were reloaded.",
                )
            if result.images_changed and not self._images_outside_told:
                self._images_outside_told = True
                self.images_changed_outside.emit()
        elif kind == "tokload":
            self._tok = result
        elif kind == "tokens":
            self._counting = False
            tok, counts, template = result
            self._tok = tok
            self.tokens_counted.emit(counts, 512 - template)
            if self._token_dirty:
                self._tokens_timer.start()
        elif kind == "check":
            self._checking = False
            rep, got, tok = result
            if tok is not None:
                self._tok = tok
            if self.dataset is not None and gen == self._generation:
                for name, (sha, ph) in got.items():
                    self.record_analysis(name, sha, ph)
                if self.dataset.index_dirty:
                    self.schedule_save(edited=False)
            self.check_done.emit(rep)

    @Slot(object, object)
    def _on_failed(self, tag, msg) -> None:
        kind, _gen = tag
        if kind == "open":
            self.open_failed.emit(str(msg))
        elif kind == "flush":
            self._flushing = False
            self.message.emit("error", f"Could not save captions: {msg}")
            self._set_save_state("Not saved")
        elif kind == "poll":
            self._polling = False
        elif kind in ("tokens", "tokload"):
            self._counting = False
            self._tok_loader = None  # no tokenizer: the column stays "…" with a tooltip
            self.message.emit("warning", f"Token counts unavailable: {msg}")
        elif kind == "check":
            self._checking = False
            self.message.emit("error", f"The check failed: {msg}")
        elif kind == "reload":
            self.message.emit("error", f"Could not re-read the dataset: {msg}")
