"""fp8 base weights with block scales; training on them on the CPU."""

from __future__ import annotations

import pytest
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
    from zitdesk.lora.inspect import inspect_lora

    assert inspect_lora(rec.last.paths[0]).base_precision == "fp8"


def _fixed_batch(seed=0):
    from zitdesk.train.core import MicroBatch

    g = torch.Generator().manual_seed(seed)
    lat = torch.randn(1, 16, 8, 8, generator=g) * 0.5
    return MicroBatch(
        lat, torch.randn(lat.shape, generator=g), [torch.randn(24, 16, generator=g)], [0.6], [1.0]
    )


def test_nf4_base_and_8bit_adamw_code_paths(train_model):
    """bitsandbytes ≥ 0.46 also runs on the CPU, which lets the NF4 / 8-bit paths be exercised
    here; the trainer itself still offers them only with CUDA."""
    bnb = pytest.importorskip("bitsandbytes")
    from dataclasses import replace

    from diffusers import ZImageTransformer2DModel

    from zitdesk.train.config import TrainConfig
    from zitdesk.train.core import StepRunner, make_optimizer
    from zitdesk.train.setup import prepare_transformer

    tr = ZImageTransformer2DModel.from_pretrained(str(train_model / "transformer"))
    cfg = TrainConfig().with_changes(
        model={"base_precision": "nf4"},
        lora={"rank": 8, "alpha": 8.0},
        optim={"learning_rate": 3e-3, "steps": 20},
        memory={"gradient_checkpointing": "full"},
    )
    prep = prepare_transformer(tr, cfg, "cpu")
    assert prep.base_precision == "nf4"
    n4 = [n for n, m in tr.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(n4) == 4 * 7  # every block Linear but the adaLN modulation
    assert all(n.endswith(".base_layer") == n.startswith("layers.") for n in n4)  # LoRA on layers
    runner = StepRunner(tr, cfg, "cpu")
    runner.configure(16, 24)
    mb = _fixed_batch()
    losses = [float(runner.train_step([mb])) for _ in range(12)]
    assert losses[-1] < 0.9 * losses[0]
    opt = make_optimizer(replace(cfg.optim, optimizer="adamw8bit"), runner.params, cuda=True)
    assert type(opt).__name__ == "AdamW8bit"
    before = [p.detach().clone() for p in runner.params]
    runner.forward_loss(mb).backward()
    opt.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, runner.params, strict=True))
    assert all(torch.isfinite(p).all() for p in runner.params)


def test_bf16_base_autocast_with_checkpointing_and_samples(train_model, dataset, tmp_path):
    """bf16 base: LoRA in fp32 computed under bf16 autocast (PEFT's input upcast switched off,
    consistently between forward and checkpoint recomputation), samples without autocast."""
    from zitdesk.train.events import SampleReady

    cfg = make_config(
        train_model,
        dataset,
        tmp_path / "o",
        optim={"steps": 3},
        model={"base_precision": "bf16"},
        memory={"gradient_checkpointing": "full"},
        sample={"every": 3, "prompts": ("[trigger]",), "width": 64, "height": 64, "steps": 2},
    )
    rec = run_job(cfg)
    assert isinstance(rec.last, JobFinished), getattr(rec.last, "message", "")
    assert rec.last.stats["base_precision"] == "bf16"
    assert len(rec.of(SampleReady)) == 1
    from safetensors import safe_open

    with safe_open(rec.last.paths[0], "pt") as fh:
        assert fh.metadata()["zitdesk_base_precision"] == "bf16"
