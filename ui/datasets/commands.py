"""Undo commands for the dataset workspace (one command per edit, on the session's stack).

:class:`CaptionCommand` wraps a journal :class:`~zitdesk.dataset.history.Entry`: its first
``redo`` applies the changes and journals ``do``; later ``undo``/``redo`` apply the reverse or the
changes again and journal ``undo``/``redo``, so the stack can be rebuilt after a restart.
Commands rebuilt from the journal are pushed while ``session.restoring`` is set and change
nothing. A change whose caption was edited elsewhere meanwhile is skipped and reported
(:meth:`zitdesk.dataset.store.Dataset.apply_changes`), never forced.
"""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from zitdesk.dataset.crop import CropDone
from zitdesk.dataset.history import Entry


class CaptionCommand(QUndoCommand):
    def __init__(self, session, entry: Entry, journaled: bool = False) -> None:
        super().__init__(entry.label)
        self.session = session
        self.entry = entry
        self._journaled = journaled

    def redo(self) -> None:
        if self.session.restoring:
            return
        self.session.apply(self.entry.changes)
        if self.session.history is None:
            return
        if self._journaled:
            self.session.history.record_redo(self.entry.id)
        else:
            self.session.history.record_do(self.entry)
            self._journaled = True

    def undo(self) -> None:
        if self.session.restoring:
            return
        self.session.apply([(n, new, old) for n, old, new in reversed(self.entry.changes)])
        if self.session.history is not None:
            self.session.history.record_undo(self.entry.id)


class FlagCommand(QUndoCommand):
    """Flag or unflag images (kept in the dataset index, not in the caption journal)."""

    def __init__(self, session, names: list[str], flagged: bool) -> None:
        n = len(names)
        super().__init__(
            f"{'Flag' if flagged else 'Unflag'} {names[0] if n == 1 else f'{n} images'}"
        )
        self.session = session
        self.names = list(names)
        self.flagged = flagged
        self.before = {nm: bool(getattr(session.record(nm), "flagged", False)) for nm in names}

    def redo(self) -> None:
        if not self.session.restoring:
            self.session.set_flags(self.names, self.flagged)

    def undo(self) -> None:
        if self.session.restoring:
            return
        for value in (True, False):
            names = [n for n, v in self.before.items() if v == value]
            if names:
                self.session.set_flags(names, value)


class ExcludeCommand(QUndoCommand):
    """Exclude images from training or include them again (``.zitdesk/exclude``; the files stay)."""

    def __init__(self, session, names: list[str], excluded: bool) -> None:
        n = len(names)
        what = names[0] if n == 1 else f"{n} images"
        super().__init__(f"{'Exclude' if excluded else 'Include'} {what}")
        self.session = session
        self.names = list(names)
        self.excluded = excluded
        self.before = {nm: bool(getattr(session.record(nm), "excluded", False)) for nm in names}

    def redo(self) -> None:
        self.session.set_excluded(self.names, self.excluded)

    def undo(self) -> None:
        for value in (True, False):
            names = [n for n, v in self.before.items() if v == value]
            if names:
                self.session.set_excluded(names, value)


class CropCommand(QUndoCommand):
    """A crop (or a restore of the original) that was already written; undo writes the kept
    copy back, redo does it again from that copy (:mod:`zitdesk.dataset.crop`)."""

    def __init__(self, session, done: CropDone) -> None:
        w, h = done.after
        what = "Restore original of" if done.restored_from is not None else "Crop"
        super().__init__(f"{what} {done.name} ({w}×{h})")
        self.session = session
        self.done = done
        self._first = True

    def redo(self) -> None:
        if self._first:  # pushed after the crop was written
            self._first = False
            return
        self.session.redo_crop(self.done)

    def undo(self) -> None:
        self.session.undo_crop(self.done)
