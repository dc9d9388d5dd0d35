"""Resume exactness, cancel (finishes the step and saves), pause/resume, and failure events."""

from __future__ import annotations

import threading

import torch
from trainhelp import make_config, run_job

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import JobCancelled, JobFailed, JobFinished, JobStarted, JobWarning
from zitdesk.train.checkpoint import list_checkpoints, load_checkpoint
from zitdesk.train.events import CheckpointSaved, Paused, Resumed, TrainStep

# Everything that carries state across steps: warm-up + cosine schedule, accumulation, batches
# of 2, caption dropout, weighted timesteps (loss weights), gradient checkpointing.
RECIPE = {
    "optim": {
        "steps": 10,
        "warmup_steps": 3,
        "schedule": "cosine",
        "grad_accum": 2,
        "batch_size": 2,
    },
    "data": {"caption_dropout": 0.3},
    "timesteps": {"mode": "weighted"},
    "memory": {"gradient_checkpointing": "full"},
}


def _final_state(out):
    info = list_checkpoints(out / "checkpoints")[-1]
    adapter, trainer, state = load_checkpoint(info.path)
    return info.step, adapter, trainer, state


def _assert_same(a, b):
    step_a, ad_a, tr_a, st_a = a
    step_b, ad_b, tr_b, st_b = b
    assert step_a == step_b
    assert ad_a.keys() == ad_b.keys()
    for k in ad_a:
        assert torch.allclose(ad_a[k], ad_b[k], atol=1e-6, rtol=0), k
    opt_a, opt_b = tr_a["runner"]["optimizer"], tr_b["runner"]["optimizer"]
    for i in opt_a["state"]:
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.allclose(opt_a["state"][i][name], opt_b["state"][i][name], atol=1e-7)
    assert tr_a["runner"]["scheduler"]["last_epoch"] == tr_b["runner"]["scheduler"]["last_epoch"]
    assert st_a["cursor"] == st_b["cursor"]


def test_five_plus_resume_five_equals_ten(train_model, varied, tmp_path):
    """A 5-step run, then the same config with steps = 10 resumed (a schedule that does not
    depend on the total, so both halves see the same learning rates as the straight run)."""
    recipe = {**RECIPE, "optim": {**RECIPE["optim"], "schedule": "constant"}}
    straight = run_job(make_config(train_model, varied, tmp_path / "a", **recipe))
    assert isinstance(straight.last, JobFinished)

    first = make_config(
        train_model, varied, tmp_path / "b", **{**recipe, "optim": {**recipe["optim"], "steps": 5}}
    )
    assert isinstance(run_job(first).last, JobFinished)
    second = run_job(make_config(train_model, varied, tmp_path / "b", **recipe), resume=True)
    assert isinstance(second.last, JobFinished), getattr(second.last, "message", "")
    assert [e.step for e in second.of(TrainStep)] == [6, 7, 8, 9, 10]
    assert [e.loss for e in second.of(TrainStep)] == [e.loss for e in straight.of(TrainStep)][5:]
    _assert_same(_final_state(tmp_path / "a"), _final_state(tmp_path / "b"))


def test_cancel_finishes_the_step_saves_and_resumes_exactly(train_model, varied, tmp_path):
    assert isinstance(
        run_job(make_config(train_model, varied, tmp_path / "a", **RECIPE)).last, JobFinished
    )
    cancel = CancelToken()

    def on_event(ev):
        if isinstance(ev, TrainStep) and ev.step == 3:
            cancel.cancel()

    cfg = make_config(train_model, varied, tmp_path / "b", **RECIPE)
    rec = run_job(cfg, cancel=cancel, on_event=on_event)
    assert isinstance(rec.last, JobCancelled)
    assert rec.of(TrainStep)[-1].step == 3
    assert rec.of(CheckpointSaved)[-1].step == 3
    assert rec.last.paths == (str(tmp_path / "b" / f"lora_{3:09d}.safetensors"),)
    assert (tmp_path / "b" / f"lora_{3:09d}.safetensors").is_file()

    again = run_job(cfg, resume=True)
    assert isinstance(again.last, JobFinished)
    assert again.of(TrainStep)[0].step == 4
    _assert_same(_final_state(tmp_path / "a"), _final_state(tmp_path / "b"))


def test_pause_and_resume_within_the_process(train_model, dataset, tmp_path):
    cancel = CancelToken()

    def on_event(ev):
        if isinstance(ev, TrainStep) and ev.step == 2:
            cancel.pause()
            threading.Timer(0.3, cancel.resume).start()

    rec = run_job(
        make_config(train_model, dataset, tmp_path / "o", optim={"steps": 4}),
        cancel=cancel,
        on_event=on_event,
    )
    assert isinstance(rec.last, JobFinished)
    names = [type(e).__name__ for e in rec.events if isinstance(e, (TrainStep, Paused, Resumed))]
    assert names == ["TrainStep", "TrainStep", "Paused", "Resumed", "TrainStep", "TrainStep"]
    assert rec.of(Paused)[0].step == 2 and rec.of(Resumed)[0].step == 2


def test_existing_run_needs_resume_and_matching_settings(train_model, dataset, tmp_path):
    cfg = make_config(train_model, dataset, tmp_path / "o", optim={"steps": 2})
    assert isinstance(run_job(cfg).last, JobFinished)
    rec = run_job(cfg)
    assert isinstance(rec.last, JobFailed) and rec.last.kind == "request"
    assert "--resume" in rec.last.message
    changed = make_config(
        train_model, dataset, tmp_path / "o", optim={"steps": 4}, lora={"rank": 4}
    )
    rec = run_job(changed, resume=True)
    assert isinstance(rec.last, JobFailed) and "lora.rank" in rec.last.message
    longer = make_config(train_model, dataset, tmp_path / "o", optim={"steps": 4})
    rec = run_job(longer, resume=True)
    assert isinstance(rec.last, JobFinished) and [e.step for e in rec.of(TrainStep)] == [3, 4]
    # after an out-of-memory failure the advice is a lower preset, then resume: allowed, reported
    lower = make_config(
        train_model, dataset, tmp_path / "o", optim={"steps": 5}, model={"base_precision": "fp8"}
    )
    rec = run_job(lower, resume=True)
    assert isinstance(rec.last, JobFinished) and [e.step for e in rec.of(TrainStep)] == [5]
    warn = [e.message for e in rec.of(JobWarning) if "changed" in e.message]
    assert warn and "model.base_precision" in warn[0]
    assert rec.last.stats["base_precision"] == "fp8"


def test_out_of_memory_becomes_a_readable_failure(train_model, dataset, tmp_path, monkeypatch):
    from zitdesk.train import core
    from zitdesk.train.presets import apply_preset

    def boom(self, mbs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(core.StepRunner, "train_step", boom)
    cfg = make_config(train_model, dataset, tmp_path / "o")
    cfg = cfg.with_changes(memory={"preset": "16gb"})
    rec = run_job(cfg)
    assert isinstance(rec.events[0], JobStarted) and rec.events[0].kind == "train"
    fail = rec.last
    assert isinstance(fail, JobFailed) and fail.kind == "oom"
    assert "'12gb' VRAM preset" in fail.message and fail.retry_hint == {"preset": "12gb"}
    assert apply_preset(cfg, "12gb").memory.preset == "12gb"


def test_bad_dataset_is_a_request_failure(train_model, tmp_path):
    (tmp_path / "empty").mkdir()
    rec = run_job(make_config(train_model, tmp_path / "empty", tmp_path / "o"))
    assert isinstance(rec.last, JobFailed) and rec.last.kind == "request"
    assert "no images" in rec.last.message
