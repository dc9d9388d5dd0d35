"""The run registry: run.json through a run's life, a SIGKILLed run found by unfinished_runs()
and continued by resume_spec, the out-of-memory record, and the finished LoRA in the Library
(trigger words, recipe, the last sample as its preview)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import torch
from trainhelp import make_config, run_job

from tests.support.traincli import start_train_cli, wait_for_step
from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import JobFailed, JobFinished
from zitdesk.train.checkpoint import list_checkpoints
from zitdesk.train.events import Paused, TrainStep
from zitdesk.train.runs import (
    list_runs,
    mark_interrupted,
    read_run,
    resume_spec,
    runs_root,
    unfinished_runs,
)

ROOT = Path(__file__).resolve().parents[2]


def test_record_through_pause_and_finish(train_model, dataset, tmp_path):
    out = runs_root() / "cat"
    token = CancelToken()
    seen: dict = {}

    def on_event(ev):
        if isinstance(ev, TrainStep) and ev.step == 2:
            token.pause()
        elif isinstance(ev, Paused):
            rec = read_run(out)
            seen["paused"] = rec
            seen["unfinished"] = unfinished_runs()
            token.resume()

    cfg = make_config(train_model, dataset, out, optim={"steps": 3})
    rec = run_job(cfg, cancel=token, on_event=on_event)
    assert isinstance(rec.last, JobFinished)
    p = seen["paused"]
    assert p.status == "paused" and p.steps_done == 2 and p.pid == os.getpid()
    assert p.lora_path.endswith("lora_000000002.safetensors")
    assert seen["unfinished"] == []  # its writer (this process) is alive
    (done,) = list_runs()
    assert done.status == "finished" and done.steps_done == done.steps_total == 3
    assert done.lora_path == str(out / "lora.safetensors") and done.dataset == str(dataset)
    assert done.final_loss == rec.last.stats["final_loss"] and done.ended_at >= done.started_at
    assert unfinished_runs() == []


def test_out_of_memory_record_names_the_lower_preset(train_model, dataset, tmp_path, monkeypatch):
    from zitdesk.train import core

    def boom(self, mbs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(core.StepRunner, "train_step", boom)
    cfg = make_config(train_model, dataset, tmp_path / "o").with_changes(memory={"preset": "16gb"})
    assert isinstance(run_job(cfg).last, JobFailed)
    (r,) = list_runs()  # found through its link: the folder is outside the runs root
    assert r.status == "failed" and r.error_kind == "oom" and r.retry_preset == "12gb"
    assert "'12gb' VRAM preset" in r.error
    spec = resume_spec(r, preset=r.retry_preset)
    assert spec.resume and spec.config.memory.preset == "12gb"


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkilled_run_is_unfinished_and_resumes_to_the_end(train_model, dataset, tmp_path):
    steps = 40
    out = tmp_path / "run"
    cfg = make_config(
        train_model, dataset, out, optim={"steps": steps}, save={"every": 1, "keep_last": 2}
    )
    config = cfg.write(tmp_path / "train.toml")
    proc, lines = start_train_cli(config)
    try:
        assert wait_for_step(lines, 3) is not None, "the trainer exited early"
        live = list_runs()
        assert [r.status for r in live] == ["running"] and live[0].pid == proc.pid
        assert unfinished_runs() == []  # `zitdesk train` is alive: not unfinished
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    newest = list_checkpoints(out / "checkpoints")[-1].step
    assert newest < steps, "the run finished before it could be killed"
    (rec,) = unfinished_runs()
    assert rec.output_dir == str(out) and rec.config_path == str(config)
    assert rec.steps_total == steps and rec.steps_done <= newest

    spec = resume_spec(rec)
    from trainhelp import Recorder

    from zitdesk.train.trainer import Trainer

    got = Recorder()
    Trainer(device="cpu").run(spec, got, CancelToken())
    assert isinstance(got.last, JobFinished), getattr(got.last, "message", "")
    assert got.of(TrainStep)[0].step == newest + 1 and got.of(TrainStep)[-1].step == steps
    assert unfinished_runs() == []
    (done,) = list_runs()
    assert done.status == "finished" and done.run_id == rec.run_id and done.steps_done == steps


def test_mark_interrupted_stops_offering_it(train_model, dataset, tmp_path):
    from dataclasses import replace

    from zitdesk.train.runs import write_run

    cfg = make_config(train_model, dataset, tmp_path / "o", optim={"steps": 1})
    assert isinstance(run_job(cfg).last, JobFinished)
    (r,) = list_runs()
    dead = replace(r, status="running", pid=2**22 + 12345, pid_started=1.0)
    write_run(dead)
    assert [u.run_id for u in unfinished_runs()] == [r.run_id]
    marked = mark_interrupted(dead)
    assert marked.status == "interrupted" and unfinished_runs() == []
    assert read_run(tmp_path / "o").status == "interrupted"


def test_finished_lora_is_in_the_library_with_trigger_recipe_and_preview(
    train_model, dataset, tmp_path
):
    from zitdesk.library.index import LibraryIndex
    from zitdesk.library.roots import auto_roots

    out = runs_root() / "zxq-style"
    cfg = make_config(
        train_model,
        dataset,
        out,
        optim={"steps": 4},
        save={"every": 2, "name": "zxqstyle"},
        sample={"every": 2, "prompts": ("a photo of [trigger]",), "steps": 2},
    )
    rec = run_job(cfg)
    assert isinstance(rec.last, JobFinished)
    lora = out / "zxqstyle.safetensors"
    preview = out / "zxqstyle.preview.png"
    assert preview.is_file()
    final_sample = out / "samples" / f"{4:09d}" / "0_42.png"
    assert preview.read_bytes() == final_sample.read_bytes()
    assert read_run(out).last_sample == str(final_sample)

    roots = [r for r in auto_roots() if r.origin == "runs"]
    assert [r.path for r in roots] == [str(runs_root())]
    result = LibraryIndex(cache_path=None, hash_cache=None).scan(roots)
    by_path = {e.path: e for e in result.entries}
    assert str(lora) in by_path
    assert not [p for p in by_path if "checkpoints" in Path(p).parts]
    entry = by_path[str(lora)]
    assert "zxq" in entry.declared_triggers
    assert entry.preview == str(preview)
    from zitdesk.st_header import read_header

    meta = read_header(str(lora)).metadata
    recipe = json.loads(meta["zitdesk_recipe"])
    assert recipe["optim"]["steps"] == 4 and recipe["data"]["trigger"] == "zxq"
