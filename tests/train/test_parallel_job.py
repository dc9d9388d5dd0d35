"""The app's data-parallel job (#19): a TrainSpec with ``processes=2`` run by the StudioEngine as a
child ``zitdesk train --json --processes 2`` (CPU gloo ranks, the tiny model), its events passed
back with the app's job id and exactly one terminal event."""

from __future__ import annotations

import threading

import pytest
import torch
from safetensors.torch import load_file
from trainhelp import Recorder, long_run_config, make_config, run_job

from zitdesk.cli.events import event_json
from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import (
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    JobWarning,
    LoraReport,
    PhaseChanged,
)
from zitdesk.engine.lanes import on_cards
from zitdesk.engine.studio import StudioEngine
from zitdesk.train.checkpoint import list_checkpoints
from zitdesk.train.config import TrainSpec
from zitdesk.train.events import CheckpointSaved, SampleReady, TrainStep
from zitdesk.train.parallel_job import NO_PAUSE, child_command, decode_event, launcher_sentence

TERMINAL = (JobFinished, JobCancelled, JobFailed)


@pytest.fixture(autouse=True)
def _small_children(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the child ranks inherit the environment
    monkeypatch.setenv("ZITDESK_DIST_TIMEOUT_S", "120")


def _run(spec: TrainSpec, cancel: CancelToken | None = None, on_event=None) -> Recorder:
    rec = Recorder(on_event)
    StudioEngine(device="cpu").run(spec, rec, cancel or CancelToken())
    return rec


def _one_terminal_last(rec: Recorder, job_id: str):
    assert isinstance(rec.events[0], JobStarted)
    assert len(rec.of(JobStarted)) == 1
    ends = [e for e in rec.events if isinstance(e, TERMINAL)]
    assert len(ends) == 1 and rec.last is ends[0]
    assert {e.job_id for e in rec.events} == {job_id}
    return rec.last


# -- the pieces -----------------------------------------------------------------------------------


def test_json_lines_become_the_events_again():
    events = [
        TrainStep("child", step=3, total=8, loss=0.25, lr=1e-4, it_s=2.0),
        SampleReady("child", paths=("/a/1.png", "/a/2.png"), contact_sheet="/a/s.png", step=4),
        CheckpointSaved("child", path="/run/checkpoints/x", step=4, lora_path="/run/l.safetensors"),
        LoraReport("child", path="/l", unknown_keys=("k1",), warnings=("w",)),
        JobFinished("child", paths=("/run/lora.safetensors",), elapsed_s=3.0, stats={"steps": 8}),
        JobFailed("child", kind="oom", message="Out of memory.", retry_hint={"preset": "16gb"}),
    ]
    for ev in events:
        back = decode_event(event_json(ev), "train-app")
        assert type(back) is type(ev)
        assert back == type(ev)(**{**vars(ev), "job_id": "train-app"})
    assert decode_event('{"event": "SomethingNew", "job_id": "x"}', "j") is None
    assert decode_event("100%|████| 4/4", "j") is None
    assert decode_event("[1, 2]", "j") is None
    extra = decode_event('{"event": "TrainStep", "job_id": "x", "step": 2, "future": 1}', "j")
    assert extra == TrainStep("j", step=2)  # fields this version does not have: left out


def test_the_launchers_sentence_is_the_failure():
    err = [
        "Loading weights: 100%",
        "zitdesk: warning: unknown setting 'x' ignored",
        "zitdesk: training stopped, process 1 of 2 was killed (signal 9); the last checkpoint "
        "is kept (continue with --resume).",
        "",
    ]
    assert launcher_sentence(err) == (
        "Training stopped, process 1 of 2 was killed (signal 9); the last checkpoint is kept "
        "(resume the run to continue it)."
    )
    assert launcher_sentence(["Traceback (most recent call last):", "zitdesk: warning: w"]) == ""


def test_the_child_command(tmp_path):
    cfg = make_config(tmp_path / "m", tmp_path / "d", tmp_path / "o")
    toml = tmp_path / "job.toml"
    gpus = child_command(TrainSpec(cfg, gpus=(0, 2), resume=True), toml)
    assert gpus[-6:] == ["train", str(toml), "--json", "--gpus", "0,2", "--resume"]
    cpu = child_command(TrainSpec(cfg, processes=2), toml)
    assert cpu[-5:] == ["train", str(toml), "--json", "--processes", "2"]
    assert TrainSpec(cfg, gpus=(1,)).data_parallel is False
    one = on_cards(TrainSpec(cfg), (1,))
    assert one.config.model.device == "cuda:1"  # one card: trained in-process on that card
    assert on_cards(TrainSpec(cfg), (0, 1)).config.model.device == cfg.model.device


# -- whole runs (2 CPU processes through the real command line) -----------------------------------

RECIPE = {
    "optim": {"steps": 4, "batch_size": 1, "warmup_steps": 1, "schedule": "cosine"},
    "timesteps": {"mode": "weighted"},
    "save": {"every": 2, "keep_last": 3},
}


def _cfg(model, data, out, accum):
    return make_config(
        model, data, out, **{**RECIPE, "optim": {**RECIPE["optim"], "grad_accum": accum}}
    )


@pytest.mark.slow
def test_the_app_path_trains_the_lora_two_processes_train(train_model, varied, tmp_path):
    """Two processes with grad-accum 1 train what one process with grad-accum 2 trains (which is
    what ``zitdesk train --processes 2`` gives: tests/train/test_distributed.py)."""
    ref = run_job(_cfg(train_model, varied, tmp_path / "one", 2))
    assert isinstance(ref.last, JobFinished)
    spec = TrainSpec(_cfg(train_model, varied, tmp_path / "two", 1), processes=2)
    rec = _run(spec)
    end = _one_terminal_last(rec, spec.job_id)
    assert isinstance(end, JobFinished), getattr(end, "message", "")
    assert [e.step for e in rec.of(TrainStep)] == [1, 2, 3, 4]
    assert [e.step for e in rec.of(CheckpointSaved)] == [2, 4]
    assert end.paths == (str(tmp_path / "two" / "lora.safetensors"),)
    assert end.stats.get("processes") == 2
    a, b = load_file(end.paths[0]), load_file(str(tmp_path / "one" / "lora.safetensors"))
    assert a.keys() == b.keys() and a
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), k


@pytest.mark.slow
def test_stop_keeps_a_checkpoint_and_resume_continues(train_model, varied, tmp_path):
    out = tmp_path / "run"
    cfg = long_run_config(train_model, varied, out)
    cancel = CancelToken()

    def stop_at_first_checkpoint(ev):
        if isinstance(ev, TrainStep) and ev.step == 1:
            cancel.pause()  # not for these runs: it goes on, and says so
        if isinstance(ev, CheckpointSaved):
            assert not cancel.paused
            cancel.cancel()  # as the Stop button does, from another thread or this one

    spec = TrainSpec(cfg, processes=2)
    rec = _run(spec, cancel, stop_at_first_checkpoint)
    end = _one_terminal_last(rec, spec.job_id)
    assert isinstance(end, JobCancelled), getattr(end, "message", "")
    assert [e.message for e in rec.of(JobWarning) if "pause" in e.message] == [NO_PAUSE]
    last = list_checkpoints(out / "checkpoints")[-1].step
    assert 0 < last < 5000
    assert end.paths == (str(out / f"lora_{last:09d}.safetensors"),)
    assert (out / f"lora_{last:09d}.safetensors").is_file()

    more = TrainSpec(cfg.with_changes(optim={"steps": last + 2}), resume=True, processes=2)
    rec = _run(more)
    end = _one_terminal_last(rec, more.job_id)
    assert isinstance(end, JobFinished), getattr(end, "message", "")
    assert rec.of(TrainStep)[0].step == last + 1  # it continued, it did not start again
    assert list_checkpoints(out / "checkpoints")[-1].step == last + 2


@pytest.mark.slow
def test_a_failing_child_is_one_sentence(train_model, tmp_path):
    cfg = make_config(train_model, tmp_path / "no-such-dataset", tmp_path / "out")
    spec = TrainSpec(cfg, processes=2)
    rec = _run(spec)
    end = _one_terminal_last(rec, spec.job_id)
    assert isinstance(end, JobFailed)
    assert "no-such-dataset does not exist" in end.message, end.message
    assert end.message.startswith("Training stopped, process ")
    assert "\n" not in end.message and "Traceback" not in end.message
    assert "--resume" not in end.message  # the app's words, not the command line's
    assert end.kind == "request"  # rank 0's own failure keeps its kind


@pytest.mark.slow
def test_a_killed_rank_fails_the_job_in_one_sentence(train_model, varied, tmp_path):
    import psutil

    out = tmp_path / "run"
    killed = threading.Event()

    def kill_rank_1(ev):
        if isinstance(ev, CheckpointSaved) and not killed.is_set():
            for p in psutil.Process().children(recursive=True):
                try:
                    if p.environ().get("RANK") == "1":
                        p.kill()
                        killed.set()
                except psutil.Error:
                    continue

    spec = TrainSpec(long_run_config(train_model, varied, out), processes=2)
    rec = _run(spec, on_event=kill_rank_1)
    assert killed.is_set()
    end = _one_terminal_last(rec, spec.job_id)
    assert isinstance(end, JobFailed)
    assert end.message.startswith("Training stopped, process 1 of 2 was killed"), end.message
    assert "Traceback" not in end.message and end.kind == "error"
    assert list_checkpoints(out / "checkpoints")  # kept
    assert any(isinstance(e, PhaseChanged) and "2 CPU processes" in e.detail for e in rec.events)


@pytest.mark.slow
def test_a_broken_listener_ends_the_child_too(train_model, varied, tmp_path):
    import psutil

    def broken(ev):
        if isinstance(ev, TrainStep):
            raise RuntimeError("a broken listener")

    spec = TrainSpec(long_run_config(train_model, varied, tmp_path / "run"), processes=2)
    rec = _run(spec, on_event=broken)
    end = _one_terminal_last(rec, spec.job_id)
    assert isinstance(end, JobFailed) and "\n" not in end.message
    left = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "zitdesk" in " ".join(p.cmdline()):
                left.append(p)
        except psutil.Error:
            continue  # gone meanwhile
    assert not left, left
