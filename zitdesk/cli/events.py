"""The one printer of a job's events on the terminal, for ``zitdesk generate`` and ``zitdesk train``.

:class:`EventPrinter` is the ``emit`` callback the engine calls (the same callback the app's
engine thread gets). It owns the progress bar (opened on the first progress event, so loading
errors are not mixed with a bar), prints warnings, info and result lines, optionally every event
as a JSON line, and keeps the terminal event; :meth:`EventPrinter.run` runs the job (Ctrl-C:
cancel, exit 130) and :func:`job_exit_code` turns the terminal event into the exit code.

Streams: results (image paths, ``--json`` documents and JSON lines) on stdout; progress, info,
warnings and errors on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from zitdesk.cli.common import EXIT_CANCELLED, debug, fail


def job_exit_code(ev: Any, cancelled: str = "cancelled.") -> int | None:
    """The exit code for a job's terminal event (the one handling of generate and train).

    ``JobFailed``: its sentence on stderr (its traceback first with ``ZITDESK_DEBUG=1``), 1.
    ``JobCancelled``: ``cancelled`` on stderr, 130. No terminal event: an error, 1.
    ``JobFinished``: None, the caller prints its own summary.
    """
    from zitdesk.engine.events import JobCancelled, JobFailed, JobFinished

    if isinstance(ev, JobFailed):
        if debug() and ev.traceback:
            print(ev.traceback, file=sys.stderr)
        return fail(" ".join(ev.message.split()) or "the job failed.")
    if isinstance(ev, JobCancelled):
        return fail(cancelled, EXIT_CANCELLED)
    if not isinstance(ev, JobFinished):
        return fail("the job ended without a result; rerun with ZITDESK_DEBUG=1 to see why.")
    return None


def event_json(ev: Any) -> str:
    """One event as a JSON line (``{"event": "TrainStep", ...}``; tracebacks left out)."""
    d = asdict(ev)
    d["event"] = type(ev).__name__
    d.pop("traceback", None)
    return json.dumps(d, default=str)


class EventPrinter:
    """Prints one job's events; pass it as the engine's ``emit``.

    ``describe(printer, ev)`` handles the command's own events (progress, info, results);
    terminal events are kept in :attr:`terminal` and ``JobWarning`` is printed here.
    ``bar``: show a progress bar of ``total`` units; ``info``: print info lines; ``warnings``:
    print warnings; ``json_lines``: print every event as a JSON line on stdout.
    """

    def __init__(
        self,
        describe: Callable[[EventPrinter, Any], None],
        total: int,
        *,
        unit: str = "step",
        bar: bool = True,
        info: bool = True,
        warnings: bool = True,
        json_lines: bool = False,
    ) -> None:
        self._describe = describe
        self.total, self.unit = total, unit
        self.show_bar, self.show_info, self.show_warnings = bar, info, warnings
        self.json_lines = json_lines
        self.bar: Any = None
        self.terminal: Any = None

    def __call__(self, ev: Any) -> None:
        from zitdesk.engine.events import JobCancelled, JobFailed, JobFinished, JobWarning

        if self.json_lines:
            print(event_json(ev), flush=True)
        if isinstance(ev, (JobFinished, JobFailed, JobCancelled)):
            self.terminal = ev
        elif isinstance(ev, JobWarning):
            self.warn(ev.message)
        else:
            self._describe(self, ev)

    # -- output -------------------------------------------------------------------------------

    def progress(self, n: int, postfix: str) -> None:
        """Move the bar to ``n`` of :attr:`total` (the bar opens on the first call)."""
        if not self.show_bar:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, unit=self.unit, file=sys.stderr, dynamic_ncols=True)
        self.bar.n = n
        self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.refresh()

    def _line(self, text: str, stream: Any) -> None:
        if self.bar is not None:
            self.bar.write(text, file=stream)
        else:
            print(text, file=stream)

    def info(self, text: str) -> None:
        """A status line on stderr (above the bar)."""
        if self.show_info:
            self._line(text, sys.stderr)

    def warn(self, text: str) -> None:
        """``warning: text`` on stderr."""
        if self.show_warnings:
            self._line(f"warning: {text}", sys.stderr)

    def result(self, text: str) -> None:
        """A result line (a written file) on stdout."""
        if self.show_info:
            self._line(text, sys.stdout)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # -- the job ------------------------------------------------------------------------------

    def run(
        self, job: Callable[[], None], cancel: Any, interrupted: str = "cancelled."
    ) -> int | None:
        """Run ``job`` (which emits to this printer); Ctrl-C cancels it: ``interrupted`` on stderr,
        130. Otherwise None: read :attr:`terminal` (:meth:`exit_code`)."""
        try:
            job()
        except KeyboardInterrupt:
            cancel.cancel()
            self.close()  # the sentence goes below the bar, not into its line
            return fail(interrupted, EXIT_CANCELLED)
        finally:
            self.close()
        return None

    def exit_code(self, cancelled: str = "cancelled.") -> int | None:
        """:func:`job_exit_code` of the terminal event (None: it finished)."""
        return job_exit_code(self.terminal, cancelled)
