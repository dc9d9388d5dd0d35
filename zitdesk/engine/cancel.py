"""Thread-safe cancel and pause flags for engine jobs, and the side queue of a paused job.

While a training job is paused, other requests (a "try it" generation with the LoRA as of this
step) can be handed to it through :meth:`CancelToken.interject`; the paused job serves them from
its pause loop with the model it already holds (see ``zitdesk.train.trainer``). Whatever is left
in the side queue when the job ends is taken back by the caller (:meth:`drain_interjected`).
"""

from __future__ import annotations

import collections
import threading
from typing import Any


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
        self._wake = threading.Event()  # resume, cancel or an interjected request
        self._lock = threading.Lock()
        self._side: collections.deque[tuple[Any, CancelToken | None]] = collections.deque()

    def cancel(self) -> None:
        self._cancel.set()
        self._resume.set()  # a paused job must wake up to notice the cancel
        self._wake.set()

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
        self._wake.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def wait_if_paused(self, timeout: float | None = None) -> bool:
        """Block while paused; return True if the job was paused at all."""
        if self._resume.is_set():
            return False
        self._resume.wait(timeout)
        return True

    # -- side queue (requests served by a paused job) ----------------------------------------
    def interject(self, request: Any, cancel: CancelToken | None = None) -> None:
        """Hand ``request`` (with its own cancel token) to the job holding this token."""
        with self._lock:
            self._side.append((request, cancel))
        self._wake.set()

    def take_interjected(self) -> tuple[Any, CancelToken | None] | None:
        """The oldest interjected ``(request, cancel)``, or None."""
        with self._lock:
            return self._side.popleft() if self._side else None

    def withdraw(self, job_id: str) -> bool:
        """Remove a not-yet-served interjected request by job id; True if it was waiting."""
        with self._lock:
            for item in list(self._side):
                if getattr(item[0], "job_id", None) == job_id:
                    self._side.remove(item)
                    return True
        return False

    def drain_interjected(self) -> list[tuple[Any, CancelToken | None]]:
        """Everything still waiting in the side queue (the job ended or left its pause)."""
        with self._lock:
            items = list(self._side)
            self._side.clear()
        return items

    def wait_for_work(self, timeout: float | None = None) -> None:
        """While paused: sleep until resumed, cancelled or a request is interjected."""
        self._wake.wait(timeout)
        self._wake.clear()
