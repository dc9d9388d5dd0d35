"""Kill a process in the middle of caption autosaves, many times: no caption lost or cut."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from _autosave_child import text_for
from messy import make_dataset

from zitdesk.dataset.history import History
from zitdesk.dataset.store import Dataset

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("_autosave_child.py")
KILLS = 15  # at least this many kills ...
MAX_KILLS = 60  # ... and more (up to this) until 3 of them landed mid-write


def test_kill_during_autosave_never_loses_or_truncates(tmp_path):
    folder = make_dataset(tmp_path / "ds", 12, size=(16, 16))
    rng = random.Random(1234)
    mid_write = 0  # kills that landed inside a round of writes
    acked = 0  # newest version the child reported fully written
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{CHILD.parent}")
    kill = -1
    while kill + 1 < KILLS or (mid_write < 3 and kill + 1 < MAX_KILLS):
        kill += 1
        start = (kill + 1) * 100_000  # versions of this run: start+1, start+2, ...
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(folder), str(start)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.02, 0.25))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        acks = [int(m) for m in re.findall(r"ack (\d+)", out)]
        floor = max(acks) if acks else acked
        temps = [p for p in folder.iterdir() if p.name.endswith(".tmp")]
        # every caption is a complete version, at least as new as the last acknowledged one
        ds = Dataset.open(folder)  # also removes the killed writer's temp files
        versions: set[int] = set()
        for it in ds.items:
            text = (folder / it.caption_name).read_text(encoding="utf-8")
            m = re.fullmatch(r"v(\d+)\|([^|]+)\|(\d+)\|.*\|end", text, flags=re.DOTALL)
            assert m, f"kill {kill}: {it.caption_name} is cut: {text[-40:]!r}"
            v = int(m.group(1))
            assert text == text_for(v, it.name), f"kill {kill}: {it.caption_name} is damaged"
            assert v >= floor, f"kill {kill}: {it.caption_name} lost version {floor} (has {v})"
            versions.add(v)
        assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
        acked = floor
        mid_write += bool(temps) or len(versions) > 1
        # the journal survives the kill too (a torn last line is dropped, not fatal)
        assert History(folder / ".zitdesk").load().done
    assert mid_write >= 3, f"only {mid_write} of {kill + 1} kills hit a round of writes"
