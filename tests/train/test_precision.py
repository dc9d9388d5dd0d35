"""fp8 base weights with block scales; training on them on the CPU."""

from __future__ import annotations

import torch
from trainhelp import make_config, run_job

from zitdesk.engine.events import JobFinished
from zitdesk.train.precision import quantize_fp8_module


def test_fp8_block_scaled_linear_is_close():
    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(256, 96)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(96, 256, generator=g) * 0.02)  # real-model-like magnitudes
        lin.weight[:, :64] *= 0.05  # one block of tiny weights
    x = torch.randn(5, 256, generator=g)
    ref = lin(x)
    w = lin.weight.detach().clone()
    quantize_fp8_module(lin, w, torch.float32)
    assert lin.weight.dtype == torch.float8_e4m3fn and lin.weight_scale.shape == (96, 4)
    out = lin(x)
    rel = ((out - ref).norm() / ref.norm()).item()
    assert rel < 0.04
    # the block scale keeps tiny weights accurate, where a plain e4m3 cast flushes them
    deq = lin.weight.float().view(96, 4, 64) * lin.weight_scale.unsqueeze(-1)
    small = (deq.view(96, 256)[:, :64] - w[:, :64]).norm() / w[:, :64].norm()
    plain = (w[:, :64].to(torch.float8_e4m3fn).float() - w[:, :64]).norm() / w[:, :64].norm()
    assert small < 0.05 < plain


def test_fp8_training_runs(train_model, dataset, tmp_path):
    rec = run_job(
        make_config(
            train_model,
            dataset,
            tmp_path / "o",
            optim={"steps": 3},
            model={"base_precision": "fp8"},
        )
    )
    assert isinstance(rec.last, JobFinished), getattr(rec.last, "message", "")
    from zitdesk.lora.keys import inspect_lora

    assert inspect_lora(rec.last.paths[0]).base_precision == "fp8"
