"""Crash safety: ``zitdesk train --resume`` killed with SIGKILL at random moments (mid-step and
mid-checkpoint: it saves every step) always resumes, never leaves a corrupt file, and ends with
exactly the weights of an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from trainhelp import make_config, run_job

from tests.support.traincli import start_train_cli, wait_for_step
from zitdesk.engine.events import JobFinished
from zitdesk.train.checkpoint import list_checkpoints, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
STEPS = 60
KILLS = 3

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def _check_outputs(out: Path) -> int:
    """What a kill may leave, whenever it lands: every checkpoint loads; every file with a final
    name (anything ending in ``.safetensors``, hidden or not, anywhere under the run) is a
    complete safetensors file another program can read; every other hidden file is a temp file
    the app recognises (ends in ``.tmp``) and removes at the next start."""
    from safetensors import safe_open

    from zitdesk.io import is_temp_name

    ckpts = list_checkpoints(out / "checkpoints")
    for c in ckpts:
        adapter, trainer, state = load_checkpoint(c.path)
        assert state["step"] == c.step and adapter and "runner" in trainer
    for f in out.rglob("*"):
        if not f.is_file() or any(part.startswith((".tmp-", ".del-")) for part in f.parts):
            continue  # checkpoint folders being assembled / removed: cleaned at start
        if f.name.startswith("."):
            assert is_temp_name(f.name) and f.name.endswith(".tmp"), f"unrecognised {f}"
        elif f.suffix == ".safetensors":
            with safe_open(str(f), "pt") as fh:
                assert len(list(fh.keys())) > 0, f
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
        proc, lines = start_train_cli(config, resume=True, home=tmp_path / "home")
        first = wait_for_step(lines, last_step + rng.randint(1, 8))
        assert first == last_step + 1, "resumed from the newest checkpoint"
        time.sleep(rng.uniform(0.0, 0.05))  # lands mid-step or mid-checkpoint
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        last_step = _check_outputs(out)
        assert last_step < STEPS, "the run finished before it could be killed; raise STEPS"
    proc, lines = start_train_cli(config, resume=True, home=tmp_path / "home")
    assert proc.wait(timeout=180) == 0
    assert _check_outputs(out) == STEPS
    assert (out / "lora.safetensors").is_file()
    leftovers = [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert not [p for p in out.rglob(".*")], "temp files of the kills were cleaned"

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
        out / ".lora_000000005.safetensors.ab12cd_3.tmp",  # today's pattern
        out / ".lora_000000005.ab12cd_3.safetensors",  # earlier versions' pattern
        out / ".tmpAb3dE9",  # safetensors.save_file's own temp, killed before its rename
        out / ".train_config.toml.x1y2z3w4.tmp",
        out / "samples" / "000000005" / ".0_42.q1w2e3r4.png",
        out / "samples" / "000000005" / ".0_42.png.q1w2e3r4.tmp",
    ]
    for f in stale:
        f.write_bytes(b"half")
    (out / ".keepme").write_text("user file")
    rec = run_job(make_config(train_model, dataset, out, optim={"steps": 1}))
    assert isinstance(rec.last, JobFinished)
    assert [f.name for f in stale if f.exists()] == [] and (out / ".keepme").exists()


def _kill_mid_write(target: Path, writer: str) -> None:
    """Run ``writer`` (Python source using ``target``) in a child that SIGKILLs itself while the
    temp file is open and partly written: deterministic, unlike a timed kill."""
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "import zitdesk.io as zio\n"
        "target = Path(sys.argv[1])\n"
        "real_replace = os.replace\n"
        "def die(*a, **k):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "os.replace = die  # the kill lands after the data is written, before the rename\n" + writer
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize(
    "writer",
    [
        "import torch; from zitdesk.train.lora_io import save_lora\n"
        "save_lora(target, {'a.lora_A.weight': torch.ones(2, 2)}, {'x': 'y'})\n",
        "import torch; zio.atomic_save_tensors(target, {'t': torch.ones(3)})\n",
        "zio.atomic_write(target, b'partial' * 100)\n",
    ],
    ids=["save_lora", "atomic_save_tensors", "atomic_write"],
)
def test_a_killed_write_never_looks_like_a_lora_and_is_cleaned(tmp_path, writer):
    from zitdesk.io import clean_temp_files, is_temp_name

    target = tmp_path / "my_lora.safetensors"
    _kill_mid_write(target, writer)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 1 and not target.exists()
    assert left[0].startswith(".") and left[0].endswith(".tmp") and is_temp_name(left[0])
    assert clean_temp_files(tmp_path) == 1 and list(tmp_path.iterdir()) == []
