"""Crash safety: ``zitdesk train --resume`` killed with SIGKILL at random moments (mid-step and
mid-checkpoint: it saves every step) always resumes, never leaves a corrupt file, and ends with
exactly the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from trainhelp import make_config, run_job

from zitdesk.engine.events import JobFinished
from zitdesk.train.checkpoint import list_checkpoints, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
STEPS = 60
KILLS = 3

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def _start(config: Path, home: Path) -> tuple[subprocess.Popen, queue.Queue]:
    env = {
        **os.environ,
        "ZITDESK_HOME": str(home),
        "OMP_NUM_THREADS": "1",
        "ZITDESK_DEVICE": "cpu",
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "zitdesk.train.cli", str(config), "--resume", "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def _wait_for_step(lines: queue.Queue, target: int, timeout: float = 120.0) -> int | None:
    """Block until the trainer reports a step ≥ ``target``; returns the first step it reported."""
    end = time.monotonic() + timeout
    first = None
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            continue
        if line is None:
            return None
        ev = json.loads(line)
        if ev["event"] == "TrainStep":
            first = ev["step"] if first is None else first
            if ev["step"] >= target:
                return first
    raise AssertionError("the trainer never reached the step")


def _check_outputs(out: Path) -> int:
    """Every checkpoint and LoRA file on disk loads; no temp file carries a final name."""
    from safetensors import safe_open

    ckpts = list_checkpoints(out / "checkpoints")
    for c in ckpts:
        adapter, trainer, state = load_checkpoint(c.path)
        assert state["step"] == c.step and adapter and "runner" in trainer
    for f in out.glob("*.safetensors"):
        with safe_open(str(f), "pt") as fh:
            assert len(list(fh.keys())) > 0
    return ckpts[-1].step if ckpts else 0


def test_sigkill_at_random_moments(train_model, dataset, tmp_path):
    out = tmp_path / "run"
    cfg = make_config(
        train_model, dataset, out, optim={"steps": STEPS}, save={"every": 1, "keep_last": 2}
    )
    config = cfg.write(tmp_path / "train.toml")
    rng = random.Random(20260611)
    last_step = 0
    for _ in range(KILLS):
        proc, lines = _start(config, tmp_path / "home")
        first = _wait_for_step(lines, last_step + rng.randint(1, 8))
        assert first == last_step + 1, "resumed from the newest checkpoint"
        time.sleep(rng.uniform(0.0, 0.05))  # lands mid-step or mid-checkpoint
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        last_step = _check_outputs(out)
        assert last_step < STEPS, "the run finished before it could be killed; raise STEPS"
    proc, lines = _start(config, tmp_path / "home")
    assert proc.wait(timeout=180) == 0
    assert _check_outputs(out) == STEPS
    assert (out / "lora.safetensors").is_file()
    leftovers = [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    straight = run_job(cfg.with_changes(save={"output_dir": str(tmp_path / "straight")}))
    assert isinstance(straight.last, JobFinished)
    a = load_checkpoint(list_checkpoints(out / "checkpoints")[-1].path)[0]
    b = load_checkpoint(list_checkpoints(tmp_path / "straight" / "checkpoints")[-1].path)[0]
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6, rtol=0), k


def test_stale_temp_files_are_cleaned_at_start(train_model, dataset, tmp_path):
    out = tmp_path / "run"
    (out / "samples" / "000000005").mkdir(parents=True)
    stale = [
        out / ".lora_000000005.ab12cd_3.safetensors",
        out / ".train_config.toml.x1y2z3w4.tmp",
        out / "samples" / "000000005" / ".0_42.q1w2e3r4.png",
    ]
    for f in stale:
        f.write_bytes(b"half")
    (out / ".keepme").write_text("user file")
    rec = run_job(make_config(train_model, dataset, out, optim={"steps": 1}))
    assert isinstance(rec.last, JobFinished)
    assert not any(f.exists() for f in stale) and (out / ".keepme").exists()
