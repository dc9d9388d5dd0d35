"""The Turbo training adapter: active while training, removed for samples and the saved file."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image
from trainhelp import make_config, run_job

from zitdesk.engine.events import JobFinished
from zitdesk.train.events import SampleReady, TrainStep


@pytest.fixture(scope="module")
def adapter_file(tmp_path_factory, train_model):
    """An ai-toolkit-dialect LoRA on the attention of both layers (like the real adapter's keys)."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(3)
    sd = {}
    for i in range(2):
        for m in ("to_q", "to_k", "to_v", "to_out.0"):
            k = f"diffusion_model.layers.{i}.attention.{m}"
            sd[f"{k}.lora_A.weight"] = (torch.randn(4, 64, generator=g) * 0.3).to(torch.bfloat16)
            sd[f"{k}.lora_B.weight"] = (torch.randn(64, 4, generator=g) * 0.3).to(torch.bfloat16)
    path = tmp_path_factory.mktemp("adapter") / "zimage_turbo_training_adapter_test.safetensors"
    save_file(sd, str(path), metadata={"format": "pt"})
    return path


def _cfg(train_model, dataset, out, adapter=None, mode="auto"):
    sample = {
        "every": 0,
        "at_start": True,
        "prompts": ("a photo of [trigger]",),
        "seeds": (5,),
        "width": 64,
        "height": 64,
    }
    model = {"training_adapter": str(adapter) if adapter else "", "adapter_mode": mode}
    return make_config(train_model, dataset, out, optim={"steps": 2}, sample=sample, model=model)


def _start_sample(rec) -> np.ndarray:
    first = next(s for s in rec.of(SampleReady) if s.step == 0)
    return np.asarray(Image.open(first.paths[0]).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def plain_run(train_model, tmp_path_factory):
    from trainhelp import make_dataset

    root = tmp_path_factory.mktemp("plain")
    rec = run_job(_cfg(train_model, make_dataset(root / "data"), root / "out"))
    assert isinstance(rec.last, JobFinished)
    return rec, root


@pytest.mark.parametrize("mode", ["side", "merge"])
def test_adapter_trains_but_is_removed_for_samples_and_output(
    plain_run, train_model, adapter_file, tmp_path, mode
):
    from safetensors import safe_open

    plain, root = plain_run
    rec = run_job(
        _cfg(train_model, root / "data", tmp_path / "out", adapter=adapter_file, mode=mode)
    )
    assert isinstance(rec.last, JobFinished), getattr(rec.last, "message", "")
    # active while training: the same seed sees another loss than without the adapter
    assert rec.of(TrainStep)[0].loss != pytest.approx(plain.of(TrainStep)[0].loss, abs=1e-4)
    # removed for samples: the step-0 sample (user LoRA still zero) is the plain model's
    diff = np.abs(_start_sample(rec) - _start_sample(plain)).max()
    assert diff == 0 if mode == "side" else diff <= 2
    # removed from the file: the same keys as a run without adapter, and recorded in metadata
    with safe_open(rec.last.paths[0], "pt") as fh, safe_open(plain.last.paths[0], "pt") as ref:
        assert set(fh.keys()) == set(ref.keys())
        meta = fh.metadata()
    info = json.loads(meta["zitdesk_training_adapter"])
    assert info["file"] == adapter_file.name
    assert info["sha256"] == hashlib.sha256(adapter_file.read_bytes()).hexdigest()
    assert rec.last.stats["adapter_mode"] == mode
