"""The headless ``zitdesk`` command line, over the same engine as the app.

Contract (scripts call these exactly; flags may be added, never removed)::

    zitdesk make-tiny-model DIR [--layout diffusers|comfy]
    zitdesk generate --prompt TEXT [--model PATH] [--width N] [--height N] [--steps N] [--seed N]
                     [--count N] [--lora PATH:WEIGHT]... [--out DIR] [--json]
    zitdesk lora inspect FILE [--model PATH] --json
    zitdesk lora scan [DIR...] [--auto] [--hash] [--model PATH] --json
    zitdesk params IMAGE --json
    zitdesk train CONFIG.toml [--resume] [--init --preset P] [--json]
    zitdesk dataset import SRC... --to DIR --json | zitdesk dataset check DIR --json
    zitdesk dataset caption DIR --tagger PATH | --vlm PATH [--mode replace|append|prepend] [--json]
    zitdesk selftest | zitdesk doctor [--json]

Errors go to stderr as one plain sentence with a non-zero exit code, never a bare traceback
(set ``ZITDESK_DEBUG=1`` to see it). Layout:

* :mod:`~zitdesk.cli.app`: :func:`build_parser` and :func:`main` (the console script
  ``zitdesk.cli:main``, ``python -m zitdesk``, ``python -m zitdesk.cli``).
* :mod:`~zitdesk.cli.common`: exit codes, :func:`run_guarded` (the one top level),
  :class:`OneLineParser`, :func:`configure_logging`.
* :mod:`~zitdesk.cli.events`: :class:`EventPrinter`, the one printer of job events (progress bar,
  info, warnings, JSON lines) and :func:`job_exit_code`, for generate and train.
* One module per command group: :mod:`~zitdesk.cli.generate`, :mod:`~zitdesk.cli.train`
  (also ``python -m zitdesk.cli.train CONFIG``), :mod:`~zitdesk.cli.lora` (inspect, scan),
  :mod:`~zitdesk.cli.dataset` (import, check), :mod:`~zitdesk.cli.tools` (make-tiny-model,
  params, selftest, doctor).

The CLI is the top layer of ``zitdesk``: nothing else in ``zitdesk`` imports it.
"""

from zitdesk.cli.app import build_parser, main
from zitdesk.cli.common import EXIT_CANCELLED, EXIT_ERROR, EXIT_USAGE, OneLineParser, run_guarded
from zitdesk.cli.events import EventPrinter, job_exit_code

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_ERROR",
    "EXIT_USAGE",
    "EventPrinter",
    "OneLineParser",
    "build_parser",
    "job_exit_code",
    "main",
    "run_guarded",
]
