"""Data-parallel training (#19) on the CPU: gloo processes under torchrun, the tiny model.

A run on 2 processes with grad-accum 1 trains the LoRA one process trains with grad-accum 2
(the same effective batch); a checkpoint of one resumes in the other, both ways.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from trainhelp import long_run_config, make_config, run_job

from zitdesk.engine.events import JobFinished
from zitdesk.train.checkpoint import list_checkpoints
from zitdesk.train.dataset import BatchCursor, Entry, epoch_batches
from zitdesk.train.distributed import rank_slice, resume_accum


def _entries() -> list[Entry]:
    buckets = [(64, 64)] * 7 + [(48, 80)] * 4 + [(80, 48)] * 3
    return [Entry(i, 64, b) for i, b in enumerate(buckets)]


@pytest.mark.parametrize(("world", "accum"), [(2, 1), (2, 2), (3, 1)])
def test_shards_cover_each_epoch_without_duplicates(world, accum):
    entries = _entries()
    epoch0 = epoch_batches(entries, 2, 7, 0)
    cursors = [BatchCursor(entries, 2, 7) for _ in range(world)]  # every rank walks the order
    taken: dict[int, list[tuple[int, ...]]] = {r: [] for r in range(world)}
    steps = 0
    while cursors[0].epoch == 0:
        for r, cur in enumerate(cursors):
            step = [cur.next() for _ in range(accum * world)]
            taken[r] += rank_slice(step, r, world)
        steps += 1
    assert all(c.state() == cursors[0].state() for c in cursors)  # same place on every rank
    assert all(len(t) == steps * accum for t in taken.values())  # the same number of steps
    seen = [b for t in taken.values() for b in t]
    first = [b for b in seen if b in epoch0]
    assert len(first) == len(set(first)) == len(epoch0)  # epoch 0: all of it, once
    flat = [i for b in epoch0 for i in b]
    assert sorted(flat) == list(range(len(entries)))


def test_resume_keeps_the_effective_batch():
    assert resume_accum(1, 2, 1, 1) == (2, resume_accum(1, 2, 1, 1)[1])
    assert resume_accum(2, 1, 2, 2)[0] == 1
    assert resume_accum(2, 2, 2, 2) == (2, "")
    accum, note = resume_accum(1, 3, 1, 2)  # 3 micro-batches do not split over 2
    assert accum == 1 and "differs" in note
    with pytest.raises(ValueError):
        rank_slice([1, 2, 3], 0, 2)


RECIPE = {
    "optim": {"steps": 4, "batch_size": 1, "warmup_steps": 1, "schedule": "cosine"},
    "timesteps": {"mode": "weighted"},
    "save": {"every": 2, "keep_last": 3},
}


def _cfg(model, data, out, accum):
    return make_config(
        model, data, out, **{**RECIPE, "optim": {**RECIPE["optim"], "grad_accum": accum}}
    )


def _command(cfg, path, processes, resume=False):
    cfg.write(path)
    cmd = [sys.executable, "-m", "zitdesk.cli.train", str(path), "--processes", str(processes)]
    cmd += ["--quiet"] + (["--resume"] if resume else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZITDESK_DIST_TIMEOUT_S": "120"}
    return cmd, env


def _torchrun(cfg, path, processes, resume=False):
    cmd, env = _command(cfg, path, processes, resume)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _lora(out):
    return load_file(str(out / "lora.safetensors"))


def _assert_close(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k


def _back_to_step_2(out):
    for info in list_checkpoints(out / "checkpoints"):
        if info.step > 2:
            shutil.rmtree(info.path)


@pytest.mark.slow
def test_two_processes_match_one_and_resume_across_world_sizes(train_model, varied, tmp_path):
    # the reference: one process, grad-accum 2
    ref_cfg = _cfg(train_model, varied, tmp_path / "one", 2)
    assert isinstance(run_job(ref_cfg).last, JobFinished)
    ref = _lora(tmp_path / "one")
    # (the check below tells batches apart: one process with grad-accum 1 trains another LoRA)
    assert isinstance(run_job(_cfg(train_model, varied, tmp_path / "acc1", 1)).last, JobFinished)
    other = _lora(tmp_path / "acc1")
    assert any(not torch.allclose(other[k], ref[k], atol=1e-4) for k in ref)

    # two processes, grad-accum 1 each: the same effective batch, the same LoRA
    two = tmp_path / "two"
    _torchrun(_cfg(train_model, varied, two, 1), tmp_path / "two.toml", 2)
    _assert_close(_lora(two), ref)
    assert [c.step for c in list_checkpoints(two / "checkpoints")] == [2, 4]

    # the 2-process checkpoint of step 2, resumed in one process (grad-accum 1 in the config:
    # the trainer keeps 2 micro-batches per step and says so)
    _back_to_step_2(two)
    rec = run_job(_cfg(train_model, varied, two, 1), resume=True)
    assert isinstance(rec.last, JobFinished), getattr(rec.last, "message", "")
    assert any("effective batch is kept" in getattr(e, "message", "") for e in rec.events)
    _assert_close(_lora(two), ref)

    # and back: the one-process checkpoint of step 2, resumed on two processes
    _back_to_step_2(tmp_path / "one")
    _torchrun(ref_cfg, tmp_path / "one.toml", 2, resume=True)
    _assert_close(_lora(tmp_path / "one"), ref)


def _rank_process(launcher, rank: int):
    import psutil

    for child in psutil.Process(launcher.pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank) and "zitdesk.cli.train" in child.cmdline():
                return child
        except psutil.Error:
            continue
    return None


def _signal_rank_mid_run(cfg, tmp_path, out, how):
    """Start a 2-process run, wait for its first checkpoint, then ``how`` rank 1; (rc, stderr)."""
    import time

    cmd, env = _command(cfg, tmp_path / "run.toml", 2)
    launcher = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list_checkpoints(out / "checkpoints") and launcher.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)  # polling a subprocess's files (no event to wait on)
        victim = _rank_process(launcher, 1)
        assert victim is not None, "rank 1 not found"
        how(victim)
        _, err = launcher.communicate(timeout=120)
    finally:
        if launcher.poll() is None:
            launcher.kill()
    return launcher.returncode, err


@pytest.mark.slow
def test_a_cancel_on_one_rank_stops_every_rank_after_the_same_step(train_model, varied, tmp_path):
    """Ctrl-C reaching one process only: the stop flag rides the gradient sync, every rank stops
    after the same step, rank 0 saves that step's checkpoint and LoRA; exit 130."""
    import signal

    out = tmp_path / "run"
    cfg = long_run_config(train_model, varied, out)
    rc, err = _signal_rank_mid_run(cfg, tmp_path, out, lambda p: p.send_signal(signal.SIGINT))
    assert rc == 130, err
    assert "Traceback" not in err, err
    last = list_checkpoints(out / "checkpoints")[-1].step
    assert 0 < last < 5000
    assert (out / f"lora_{last:09d}.safetensors").is_file()  # the step it stopped after


@pytest.mark.slow
def test_a_killed_rank_stops_the_run_with_the_checkpoint_kept(train_model, varied, tmp_path):
    """SIGKILL one of two processes mid-run: the launcher says so in one sentence, exits 1, the
    checkpoints stay whole, and --resume continues on two processes."""
    out = tmp_path / "run"
    cfg = long_run_config(train_model, varied, out)
    rc, err = _signal_rank_mid_run(cfg, tmp_path, out, lambda p: p.kill())
    assert rc == 1, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith("zitdesk: training stopped, process 1 of 2 was killed"), err
    assert "Traceback" not in err, err
    kept = list_checkpoints(out / "checkpoints")
    assert kept and kept[-1].step < 5000
    last = kept[-1].step
    from zitdesk.train.checkpoint import load_checkpoint

    load_checkpoint(kept[-1].path)  # whole
    more = cfg.with_changes(optim={"steps": last + 2})
    _torchrun(more, tmp_path / "run.toml", 2, resume=True)
    assert list_checkpoints(out / "checkpoints")[-1].step == last + 2


def test_gpu_lists_and_their_sentences():
    from zitdesk.errors import RequestError
    from zitdesk.train.launch import parse_gpus

    assert parse_gpus("2") == (2, None)
    assert parse_gpus("0,2") == (2, [0, 2])
    for bad in ("0", "two", "1,1", "-1,2", ""):
        with pytest.raises(RequestError, match="--gpus takes"):
            parse_gpus(bad)


def test_gpus_on_a_machine_without_one_is_one_sentence(train_model, varied, tmp_path, capsys):
    from zitdesk.cli.train import main

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    path = tmp_path / "job.toml"
    _cfg(train_model, varied, tmp_path / "out", 1).write(path)
    assert main([str(path), "--gpus", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "zitdesk: --gpus needs NVIDIA GPUs and this machine has none; use --processes N to run "
        "N processes on the CPU."
    ]
    assert not (tmp_path / "out").exists()  # nothing started
