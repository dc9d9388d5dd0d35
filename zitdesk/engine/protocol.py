"""The engine interface the UI talks to; ``FakeEngine`` in the tests implements it too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import EngineEvent

Emit = Callable[[EngineEvent], None]


class Engine(Protocol):
    """Runs one job at a time on the calling thread (the engine thread); never raises.

    ``run`` emits ``JobStarted`` … and exactly one terminal event (``JobFinished``,
    ``JobCancelled`` or ``JobFailed``). ``cancel`` may be set from any thread.
    """

    def run(self, request: Any, emit: Emit, cancel: CancelToken) -> None: ...

    def shutdown(self) -> None: ...
