"""A ``zitdesk train --json`` child process for crash tests, and waits on its own JSON events.

Used by tests/train/test_kill.py, tests/train/test_runs.py and tests/ui/test_ui_train_e2e.py:
the child runs on the CPU with one thread; a reader thread puts each stdout line on a queue
(``None`` when the process exits), so a test blocks on the trainer's events, never on sleeps.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_train_cli(
    config: Path, *, resume: bool = False, home: Path | None = None
) -> tuple[subprocess.Popen, queue.Queue]:
    """Start ``python -m zitdesk.cli.train CONFIG --json [--resume]``; returns (process, lines)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZITDESK_DEVICE": "cpu", "PYTHONPATH": str(ROOT)}
    if home is not None:
        env["ZITDESK_HOME"] = str(home)
    args = [sys.executable, "-m", "zitdesk.cli.train", str(config), "--json"]
    proc = subprocess.Popen(
        args + (["--resume"] if resume else []),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def events(lines: queue.Queue, timeout: float) -> Iterator[dict]:
    """The child's JSON events as they come, until it exits; AssertionError after ``timeout``."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no expected trainer event within {timeout:.0f} s")
        try:
            line = lines.get(timeout=min(left, 1.0))
        except queue.Empty:
            continue
        if line is None:
            return
        if line.startswith("{"):
            yield json.loads(line)


def wait_for_step(lines: queue.Queue, target: int, timeout: float = 180.0) -> int | None:
    """Block until a ``TrainStep`` ≥ ``target``; the first step reported (None: it exited)."""
    first = None
    for ev in events(lines, timeout):
        if ev["event"] == "TrainStep":
            first = ev["step"] if first is None else first
            if ev["step"] >= target:
                return first
    return None


def wait_for_event(lines: queue.Queue, name: str, timeout: float = 180.0) -> dict:
    """Block until event ``name``; AssertionError when the trainer exits first."""
    for ev in events(lines, timeout):
        if ev.get("event") == name:
            return ev
    raise AssertionError(f"the trainer exited before {name}")
