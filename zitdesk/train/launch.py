"""Starting a data-parallel training run: ``zitdesk train CONFIG --gpus N`` (issue #19).

:func:`launch` runs torch's own launcher (``torch.distributed.run``, i.e. ``torchrun
--standalone``) in this process; it starts one ``python -m zitdesk.cli.train CONFIG …`` per GPU
(or per CPU process with ``--processes N``, gloo), which finds RANK/WORLD_SIZE in its environment
and joins the group (:mod:`zitdesk.train.distributed`). In the frozen app (PyInstaller, no
``python -m``) each process is the bundle's console executable, ``zitdesk-console train CONFIG …``
(torchrun's ``--no-python``; :func:`rank_command`). ``--gpus 0,2`` picks cards through
``CUDA_VISIBLE_DEVICES``. Rank 0 shows the progress; a failing process writes its one sentence to
the report folder (``ZITDESK_DIST_REPORT``), torchrun stops the others, and :func:`launch` prints
the first failure as one sentence (the last checkpoint stays; ``--resume`` continues).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from zitdesk.errors import RequestError

REPORT_ENV = "ZITDESK_DIST_REPORT"


def parse_gpus(text: str) -> tuple[int, list[int] | None]:
    """``"2"`` → (2, None: the first two cards); ``"0,2"`` → (2, [0, 2]); bad text: one sentence."""
    text = text.strip()
    try:
        if "," in text:
            ids = [int(t) for t in text.split(",") if t.strip()]
            if not ids or len(set(ids)) != len(ids) or min(ids) < 0:
                raise ValueError
            return len(ids), ids
        n = int(text)
        if n < 1:
            raise ValueError
        return n, None
    except ValueError:
        raise RequestError(
            f"--gpus takes a number of GPUs (2) or a list of GPU numbers (0,2), not {text!r}."
        ) from None


def check_gpus(n: int, ids: list[int] | None) -> None:
    import torch

    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    need = (max(ids) + 1) if ids else n
    if have == 0:
        raise RequestError(
            "--gpus needs NVIDIA GPUs and this machine has none; use --processes N to run "
            "N processes on the CPU."
        )
    if need > have:
        raise RequestError(f"--gpus asks for {need} GPU(s) but this machine has {have}.")
    import torch.distributed as dist

    if n > 1 and not (dist.is_available() and dist.is_nccl_available()):  # Windows builds
        raise RequestError(
            "--gpus with more than one GPU needs NCCL, which this PyTorch build (Windows) lacks; "
            "train on Linux, or on one GPU here with --gpus 1 or --device cuda:1."
        )


def write_report(message: str) -> None:
    """A failing rank's sentence for the launcher (no-op outside a launched run)."""
    folder = os.environ.get(REPORT_ENV)
    if not folder:
        return
    from zitdesk.io import atomic_write

    rank = int(os.environ.get("RANK", "0"))
    doc = {"rank": rank, "time": time.time(), "message": message}
    try:
        atomic_write(Path(folder) / f"rank{rank}.json", json.dumps(doc))
    except OSError:
        pass


def first_failure(folder: Path) -> dict | None:
    docs = []
    for p in folder.glob("rank*.json"):
        try:
            docs.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return min(docs, key=lambda d: d.get("time", 0.0)) if docs else None


def _root_cause(exc: Any, report: Path, processes: int) -> tuple[str, int]:
    """What stopped the run, and the exit code: a process that died without a report (killed,
    crashed) caused it (the others then fail in their collectives); else the first report."""
    reported = {int(p.stem[4:]) for p in report.glob("rank*.json") if p.stem[4:].isdigit()}
    failed = [
        (int(getattr(info, "exitcode", 1) or 1), int(rank))
        for rank, info in getattr(exc, "failures", {}).items()
        if int(rank) not in reported
    ]
    # a process torchrun itself stopped (SIGTERM) is a consequence, not the cause
    for code, rank in sorted(failed, key=lambda f: (f[0] == -15, f[1])):
        if code < 0:
            return f"process {rank} of {processes} was killed (signal {-code})", 1
        return f"process {rank} of {processes} ended with exit code {code}", 1
    found = first_failure(report)
    if found is None:
        return f"a process of {processes} failed", 1
    message = str(found.get("message", "")).strip() or "it failed"
    cancelled = message == "cancelled"
    what = f"process {found['rank']} of {processes} failed: {message}"
    return ("cancelled" if cancelled else what), (130 if cancelled else 1)


def rank_command() -> list[str]:
    """torchrun's arguments that name the program of each process: ``--module zitdesk.cli.train``
    from a checkout; in the frozen app, which has no ``-m``, ``--no-python`` and this
    installation's CLI (:func:`zitdesk.paths.cli_command`: the console executable) with ``train``.
    torchrun starts a command by path with ``subprocess`` (no multiprocessing spawn of
    ``sys.executable``), and the children see RANK/WORLD_SIZE, so they train and never relaunch."""
    if not getattr(sys, "frozen", False):
        return ["--module", "zitdesk.cli.train"]
    from zitdesk.paths import cli_command

    program, *prefix = cli_command()
    return ["--no-python", program, *prefix, "train"]


def launch(child_args: list[str], processes: int, gpu_ids: list[int] | None, cuda: bool) -> int:
    """Run ``zitdesk train *child_args`` on ``processes`` ranks (:func:`rank_command`); the exit
    code."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    names = [n for n in logging.Logger.manager.loggerDict if n.startswith("torch.distributed")]
    for name in {"torch.distributed", *names}:  # (torch's agent sets levels on its own loggers)
        logging.getLogger(name).setLevel(logging.CRITICAL)  # the failure is told in one sentence
    with tempfile.TemporaryDirectory(prefix="zitdesk-dist-") as report:
        os.environ[REPORT_ENV] = report
        if gpu_ids is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in gpu_ids)
        argv = [
            "--standalone",
            f"--nproc-per-node={processes}",
            "--max-restarts=0",
            *rank_command(),
            *child_args,
            "--device",
            "cuda" if cuda else "cpu",
        ]
        try:
            run(get_args_parser().parse_args(argv))
            return 0
        except ChildFailedError as exc:
            what, code = _root_cause(exc, Path(report), processes)
            print(
                f"zitdesk: training stopped, {what.rstrip('.')}; the last checkpoint is kept "
                "(continue with --resume).",
                file=sys.stderr,
            )
            return code
        except KeyboardInterrupt:
            print(
                "zitdesk: stopped; the last checkpoint is kept (continue with --resume).",
                file=sys.stderr,
            )
            return 130
        except Exception as exc:
            if type(exc).__name__ != "SignalException":  # torchrun's agent got Ctrl-C / SIGTERM
                raise
            print(
                "zitdesk: stopped; the last checkpoint is kept (continue with --resume).",
                file=sys.stderr,
            )
            return 130
        finally:
            os.environ.pop(REPORT_ENV, None)
