"""Thread-safe cancel and pause flags for engine jobs."""

from __future__ import annotations

import threading


class Cancelled(Exception):  # noqa: N818 - the name reads as the event it becomes
    """Raised inside a job when its :class:`CancelToken` is set; becomes a ``JobCancelled`` event."""


class CancelToken:
    """A flag any thread may set; the engine checks it at every step.

    The GUI sets it directly (never through a queued signal: the worker thread is busy and would
    only see a queued call after the job ended).
    """

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._resume = threading.Event()
        self._resume.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._resume.set()  # a paused job must wake up to notice the cancel

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def raise_if_cancelled(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    # Pause is used by long jobs (training); generation only checks cancel.
    def pause(self) -> None:
        self._resume.clear()

    def resume(self) -> None:
        self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def wait_if_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; return True if the job was paused at all."""
        if self._resume.is_set():
            return False
        self._resume.wait(timeout)
        return True
