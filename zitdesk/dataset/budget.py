"""The memory budget shared by a dataset import's (or check's) workers.

:class:`ByteBudget` counts the bytes of file data and decoded pixels all workers hold; a worker
waits for room, except the one the writer waits for (the head), so one file larger than the whole
budget still goes through. :class:`Held` is one worker's share, given back by the writer.
"""

from __future__ import annotations

import threading

#: File bytes + decoded pixels all import workers may hold at once (see importer's doc).
DEFAULT_MEMORY_BUDGET = 384 * 1024 * 1024


class ByteBudget:
    """Bytes the import workers hold in memory, together (see the module doc).

    ``take`` waits while the budget is used up, except for the file the writer waits for
    (``head``), which always proceeds: so there is no deadlock, and at most one file beyond the
    budget is in memory. With ``seq=None`` (holders that give back on their own, no writer
    waiting in order) a request proceeds when nothing else is held."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.used = 0
        self.head = 0
        self.closed = False
        self.cond = threading.Condition()

    def take(self, seq: int | None, n: int) -> None:
        with self.cond:
            while (
                self.used + n > self.cap
                and not self.closed
                and (self.used > 0 if seq is None else seq != self.head)
            ):
                self.cond.wait()
            self.used += n

    def give(self, n: int) -> None:
        if n:
            with self.cond:
                self.used -= n
                self.cond.notify_all()

    def set_head(self, seq: int) -> None:
        with self.cond:
            self.head = seq
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class Held:
    """What one candidate holds of the budget (given back once it is written)."""

    def __init__(self, budget: ByteBudget, seq: int) -> None:
        self.budget, self.seq, self.n = budget, seq, 0

    def take(self, n: int) -> None:
        self.budget.take(self.seq, n)
        self.n += n

    def give(self, n: int | None = None) -> None:
        n = self.n if n is None else min(n, self.n)
        self.n -= n
        self.budget.give(n)
