"""One engine for generation and training (StudioEngine) on the tiny real model: the trainer
borrows the pipeline generation holds and gives it back clean; pause → try → resume inside the
trainer repeats the uninterrupted run exactly; cancel keeps a LoRA that loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from trainhelp import Recorder, make_config

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import (
    ImageReady,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    JobWarning,
    LoraReport,
    PhaseChanged,
    StepProgress,
)
from zitdesk.engine.requests import GenerateRequest, LoraSpec, new_job_id
from zitdesk.engine.studio import StudioEngine
from zitdesk.train.checkpoint import list_checkpoints, load_checkpoint
from zitdesk.train.config import TrainSpec
from zitdesk.train.events import Paused, Resumed, TrainStep


@pytest.fixture
def loader_calls(monkeypatch):
    """Count calls of the real model loader (the real function still does the work)."""
    from zitdesk.models import loader

    calls: list = []
    real = loader.load_pipeline

    def counting(source, *a, **kw):
        calls.append(str(source.root))
        return real(source, *a, **kw)

    monkeypatch.setattr(loader, "load_pipeline", counting)
    return calls


def gen_request(model, out, **kw) -> GenerateRequest:
    base = dict(
        prompt="a photo of zxq",
        width=64,
        height=64,
        steps=3,
        seed=11,
        model_path=str(model),
        output_dir=str(out),
        preview_every=0,
    )
    base.update(kw)
    return GenerateRequest(**base)


def run(engine, request, cancel=None, on_event=None) -> Recorder:
    rec = Recorder(on_event)
    engine.run(request, rec, cancel or CancelToken())
    return rec


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.int16)


def image_of(rec: Recorder) -> np.ndarray:
    assert isinstance(rec.last, JobFinished), getattr(rec.last, "message", rec.last)
    return pixels(rec.last.paths[0])


def test_training_borrows_the_loaded_model_and_gives_it_back(
    train_model, dataset, tmp_path, loader_calls
):
    engine = StudioEngine(device="cpu")
    req = gen_request(train_model, tmp_path / "img")
    before = image_of(run(engine, req))
    assert len(loader_calls) == 1

    cfg = make_config(train_model, dataset, tmp_path / "run", optim={"steps": 4})
    trained = run(engine, TrainSpec(cfg))
    assert isinstance(trained.last, JobFinished), getattr(trained.last, "message", "")
    assert len(loader_calls) == 1, "the trainer loaded a second copy instead of borrowing"
    assert any("already loaded" in e.detail for e in trained.events if hasattr(e, "detail"))
    # warnings are JobWarning events, never a "warning" phase
    assert any("Turbo without a training adapter" in w.message for w in trained.of(JobWarning))
    assert not [e for e in trained.of(PhaseChanged) if e.phase == "warning"]

    after = image_of(run(engine, req.with_changes(job_id=new_job_id())))
    assert len(loader_calls) == 1, "generation reloaded after training"
    fresh = image_of(run(StudioEngine(device="cpu"), req.with_changes(job_id=new_job_id())))
    assert len(loader_calls) == 2  # the fresh engine's own load
    assert np.array_equal(fresh, before)
    assert np.abs(after - fresh).max() <= 1, "training left something behind in the model"

    # The trained LoRA applies on the returned pipeline; a stack applied when the next training
    # job borrows the model is removed first, and after that job the base images come back.
    lora = trained.last.paths[0]
    with_lora = run(engine, req.with_changes(job_id=new_job_id(), loras=(LoraSpec(lora, 1.0),)))
    rep = with_lora.of(LoraReport)[0]
    assert rep.matched == rep.total_targets > 0
    assert np.abs(image_of(with_lora) - fresh).mean() > 0.5
    again = run(
        engine, TrainSpec(make_config(train_model, dataset, tmp_path / "run2", optim={"steps": 2}))
    )
    assert isinstance(again.last, JobFinished)
    assert again.last.stats["final_loss"] == trained.of(TrainStep)[1].loss  # same start
    plain = image_of(run(engine, req.with_changes(job_id=new_job_id())))
    assert np.abs(plain - fresh).max() <= 1
    assert len(loader_calls) == 2


def test_other_precision_is_not_handed_back(train_model, dataset, tmp_path, loader_calls):
    """fp8 base weights change the model in place: generation reloads a clean copy."""
    engine = StudioEngine(device="cpu")
    req = gen_request(train_model, tmp_path / "img")
    before = image_of(run(engine, req))
    cfg = make_config(
        train_model, dataset, tmp_path / "run", optim={"steps": 2}, model={"base_precision": "fp8"}
    )
    assert isinstance(run(engine, TrainSpec(cfg)).last, JobFinished)
    assert len(loader_calls) == 1  # borrowed (same files, same dtype) ...
    after = image_of(run(engine, req.with_changes(job_id=new_job_id())))
    assert len(loader_calls) == 2  # ... and not given back: generation reloaded
    assert np.array_equal(after, before)


HIGH_LR = {"optim": {"steps": 6, "learning_rate": 3e-2}}


def test_pause_try_resume_repeats_the_uninterrupted_run(train_model, dataset, tmp_path):
    straight = run(
        StudioEngine(device="cpu"),
        TrainSpec(make_config(train_model, dataset, tmp_path / "a", **HIGH_LR)),
    )
    assert isinstance(straight.last, JobFinished)

    token = CancelToken()
    other = tmp_path / "other.safetensors"
    bad = gen_request(train_model, tmp_path / "try", width=0, job_id="try-bad")
    asked: dict = {}

    def on_event(ev):
        if isinstance(ev, TrainStep) and ev.step == 3:
            token.pause()
        elif isinstance(ev, Paused):
            good = gen_request(
                train_model,
                tmp_path / "try",
                job_id="try-good",
                loras=(LoraSpec(ev.lora_path, 1.0), LoraSpec(str(other), 0.7)),
            )
            asked["good"] = good
            token.interject(bad, CancelToken())
            token.interject(good, CancelToken())
        elif isinstance(ev, (JobFinished, JobFailed)) and ev.job_id == "try-good":
            token.resume()

    engine = StudioEngine(device="cpu")
    rec = run(
        engine,
        TrainSpec(make_config(train_model, dataset, tmp_path / "b", **HIGH_LR)),
        cancel=token,
        on_event=on_event,
    )
    assert isinstance(rec.last, JobFinished), getattr(rec.last, "message", "")
    assert rec.last.job_id != "try-good"

    # the try jobs: their own ids and events; the bad one failed without ending the training
    fails = [e for e in rec.of(JobFailed) if e.job_id == "try-bad"]
    assert len(fails) == 1 and fails[0].kind == "request"
    mine = [e for e in rec.events if e.job_id == "try-good"]
    kinds = [type(e) for e in mine]
    assert kinds[0] is JobStarted and mine[0].kind == "try"
    assert StepProgress in kinds and ImageReady in kinds and kinds[-1] is JobFinished
    warn = [e for e in mine if isinstance(e, JobWarning)]
    assert warn and "other.safetensors" in warn[0].message
    paused = rec.of(Paused)[0]
    assert paused.step == 3 and rec.of(Resumed)[0].step == 3
    assert paused.lora_path.endswith("lora_000000003.safetensors")

    # the same weights and losses as the uninterrupted run
    assert [e.loss for e in rec.of(TrainStep)] == [e.loss for e in straight.of(TrainStep)]
    a = load_checkpoint(list_checkpoints(tmp_path / "a" / "checkpoints")[-1].path)[0]
    b = load_checkpoint(list_checkpoints(tmp_path / "b" / "checkpoints")[-1].path)[0]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k

    # the try image shows the LoRA: it differs from the base model's image, and matches a
    # generation with the file written at the pause
    tried = pixels(mine[-1].paths[0])
    fresh = StudioEngine(device="cpu")
    base = image_of(run(fresh, asked["good"].with_changes(job_id=new_job_id(), loras=())))
    assert np.abs(tried - base).mean() > 1.0
    from_file = image_of(
        run(
            fresh,
            asked["good"].with_changes(
                job_id=new_job_id(), loras=(LoraSpec(paused.lora_path, 1.0),)
            ),
        )
    )
    assert np.abs(tried - from_file).max() <= 3


def test_cancel_keeps_a_lora_that_loads(train_model, dataset, tmp_path):
    token = CancelToken()

    def on_event(ev):
        if isinstance(ev, TrainStep) and ev.step == 2:
            token.cancel()

    engine = StudioEngine(device="cpu")
    rec = run(
        engine,
        TrainSpec(make_config(train_model, dataset, tmp_path / "c", **HIGH_LR)),
        cancel=token,
        on_event=on_event,
    )
    assert isinstance(rec.last, JobCancelled)
    (lora,) = rec.last.paths
    assert lora.endswith("lora_000000002.safetensors")
    assert list_checkpoints(tmp_path / "c" / "checkpoints")[-1].step == 2
    used = run(engine, gen_request(train_model, tmp_path / "img", loras=(LoraSpec(lora, 1.0),)))
    assert isinstance(used.last, JobFinished)
    rep = used.of(LoraReport)[0]
    assert rep.matched == rep.total_targets > 0


def test_unknown_request_is_a_plain_failure():
    rec = run(StudioEngine(device="cpu"), object())
    assert isinstance(rec.last, JobFailed) and rec.last.kind == "request"


def test_dataset_problems_are_warnings(train_model, dataset, tmp_path):
    (dataset / "broken.png").write_bytes(b"not a png")
    rec = run(
        StudioEngine(device="cpu"),
        TrainSpec(make_config(train_model, dataset, tmp_path / "w", optim={"steps": 1})),
    )
    assert isinstance(rec.last, JobFinished)
    assert any("broken.png" in w.message for w in rec.of(JobWarning))


@pytest.fixture
def adapter_file(tmp_path, train_model):
    """A small ai-toolkit-dialect training adapter on the attention of both layers."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(3)
    sd = {}
    for i in range(2):
        for m in ("to_q", "to_k", "to_v", "to_out.0"):
            k = f"diffusion_model.layers.{i}.attention.{m}"
            sd[f"{k}.lora_A.weight"] = (torch.randn(4, 64, generator=g) * 0.3).to(torch.bfloat16)
            sd[f"{k}.lora_B.weight"] = (torch.randn(64, 4, generator=g) * 0.3).to(torch.bfloat16)
    path = tmp_path / "zimage_turbo_training_adapter_test.safetensors"
    save_file(sd, str(path), metadata={"format": "pt"})
    return path


@pytest.mark.parametrize(("mode", "loads_after"), [("side", 1), ("merge", 2)])
def test_training_adapter_is_removed_or_the_model_reloaded(
    train_model, dataset, tmp_path, loader_calls, adapter_file, mode, loads_after
):
    """Side mode: the adapter is a removable PEFT branch, the pipeline comes back. Merge mode
    changes the base weights: generation reloads. Either way the next image is the base one."""
    engine = StudioEngine(device="cpu")
    req = gen_request(train_model, tmp_path / "img")
    before = image_of(run(engine, req))
    cfg = make_config(
        train_model,
        dataset,
        tmp_path / "run",
        optim={"steps": 2},
        model={"training_adapter": str(adapter_file), "adapter_mode": mode},
    )
    rec = run(engine, TrainSpec(cfg))
    assert isinstance(rec.last, JobFinished), getattr(rec.last, "message", "")
    assert rec.last.stats["adapter_mode"] == mode
    after = image_of(run(engine, req.with_changes(job_id=new_job_id())))
    assert len(loader_calls) == loads_after
    assert np.abs(after - before).max() <= 1
