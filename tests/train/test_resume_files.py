"""Files a resumed run owes: the step LoRA of the checkpoint it resumed from."""

from __future__ import annotations

import pytest
import torch
from trainhelp import make_config, run_job

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import JobCancelled, JobFinished
from zitdesk.train.checkpoint import list_checkpoints, load_checkpoint
from zitdesk.train.events import TrainStep


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_resume_writes_the_step_lora_a_kill_left_out(train_model, dataset, tmp_path, damage):
    """A kill between the checkpoint of step 2 and its ``lora_000000002.safetensors`` (or in the
    middle of writing it) leaves a checkpoint without a usable step LoRA; the resumed run
    writes it from the checkpoint's weights."""
    out = tmp_path / "run"
    cancel = CancelToken()

    def on_event(ev):
        if isinstance(ev, TrainStep) and ev.step == 2:
            cancel.cancel()

    cfg = make_config(train_model, dataset, out, optim={"steps": 4}, save={"every": 0})
    assert isinstance(run_job(cfg, cancel=cancel, on_event=on_event).last, JobCancelled)
    step_lora = out / f"lora_{2:09d}.safetensors"
    good = step_lora.read_bytes()
    from safetensors.torch import load, load_file

    good_tensors = load(good)
    if damage == "missing":
        step_lora.unlink()
    else:
        step_lora.write_bytes(good[: len(good) // 2])

    rec = run_job(cfg, resume=True)
    assert isinstance(rec.last, JobFinished), getattr(rec.last, "message", "")
    assert rec.of(TrainStep)[0].step == 3
    again = load_file(str(step_lora))
    assert again.keys() == good_tensors.keys()  # the same weights as the file the kill prevented
    assert all(torch.equal(again[k], good_tensors[k]) for k in again)
    assert [c.step for c in list_checkpoints(out / "checkpoints")][-1] == 4
    assert load_checkpoint(list_checkpoints(out / "checkpoints")[-1].path)[0]
