"""What every ``zitdesk`` command shares: exit codes, the one top level, one-line usage errors,
terminal-friendly logging.

* :func:`run_guarded` runs a command; any exception becomes one plain sentence on stderr
  (:func:`zitdesk.errors.user_message`) and exit code 1, Ctrl-C exit code 130.
* :class:`OneLineParser`: a bad flag is one line and exit code 2.
* :func:`configure_logging`: warnings and errors as one line each, tracebacks only with
  ``ZITDESK_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


def fail(message: str, code: int = EXIT_ERROR) -> int:
    """Print ``zitdesk: message`` on stderr and return ``code``."""
    print(f"zitdesk: {message}", file=sys.stderr)
    return code


def debug() -> bool:
    """``ZITDESK_DEBUG`` is set: show tracebacks."""
    return bool(os.environ.get("ZITDESK_DEBUG"))


def run_guarded(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command; every exception becomes one sentence on stderr and exit code 1.

    The one top level of every ``zitdesk`` command (``generate``, ``train``, ``dataset``,
    ``lora``, ``make-tiny-model``, ``params``, ``doctor``, also ``python -m zitdesk.cli.train``):
    the sentence comes from :func:`zitdesk.errors.user_message` (``ZITDESK_DEBUG=1`` prints the
    traceback first).
    """
    from zitdesk.errors import user_message

    try:
        return func(args)
    except KeyboardInterrupt:
        return fail("cancelled.", EXIT_CANCELLED)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the CLI never shows a bare traceback
        if debug():
            import traceback

            traceback.print_exc()
        return fail(user_message(exc))


class _NoTracebacks(logging.Filter):
    """Keep log records with a traceback off the terminal: the failure they describe reaches the
    user as the command's one sentence (``ZITDESK_DEBUG=1`` shows them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if debug():
            return True
        if record.exc_info or record.stack_info:
            return False
        return "Traceback (most recent call last)" not in record.getMessage()


def configure_logging() -> None:
    """Warnings and errors on stderr as one line each, tracebacks only with ZITDESK_DEBUG=1."""
    root = logging.getLogger()
    if root.handlers:  # someone (a host program, pytest) set logging up already: leave it
        return
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        handler.addFilter(_NoTracebacks())


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (``zitdesk: …; see … --help``), exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"zitdesk: {message}; see '{self.prog} --help'.\n")
