"""The training memory planner: its choices on the tiny model, and its fit to measured peaks."""

from __future__ import annotations

import json

import pytest
import torch

from zitdesk.train import adapters as ad
from zitdesk.train import memplan
from zitdesk.train.precision import base_linears, block_of, prepare_base
from zitdesk.train.streaming import forward_blocks, plan_input

GiB = 1 << 30


def _tiny():
    from zitdesk.models.tiny import make_tiny_components

    tr = make_tiny_components(seed=0)["transformer"]
    tr.requires_grad_(False)
    ad.add_user_adapter(tr, 4, 4.0, ("attention", "feed_forward"), True, 0)
    return tr


CAL = memplan.Calibration(overhead=0, margin=0, margin_share=0.0)  # tiny model: no fixed costs


def _plan(inp, budget, **kw):
    return memplan.plan_memory(memplan.PlanInput(**{**inp.__dict__, "budget": budget, **kw}), CAL)


def test_plan_input_counts_the_tiny_model():
    tr = _tiny()
    inp = plan_input(tr, 64, 24, "adamw", None)
    assert [b.name for b in inp.blocks] == [n for n, _ in forward_blocks(tr)]
    lin = sum(
        m.weight.numel() * 2 for n, _p, _c, m in base_linears(tr) if block_of(n) != ""
    )  # bf16 bytes of the quantisable Linears
    assert sum(b.bf16_bytes for b in inp.blocks) == lin
    assert all(b.fp8_bytes < b.bf16_bytes for b in inp.blocks)
    lora = sum(p.numel() for p in ad.user_parameters(tr))
    assert inp.lora_bytes == lora * 16
    assert {b.tokens for b in inp.blocks if b.name.startswith("layers")} == {64 + 32}


def test_planner_uses_the_budget():
    inp = plan_input(_tiny(), 4096, 128, "adamw", None)
    free = _plan(inp, None)
    assert not free.checkpointed and not free.fp8 and free.fits
    need = free.peak
    full = memplan.predict_peak(inp, [b.name for b in inp.blocks], [], [], CAL)
    assert full < need
    counts = []
    # budgets from "everything fits" down to "only full checkpointing fits"
    for frac in (1.0, 0.8, 0.6, 0.4, 0.2, 0.0):
        budget = int(full + (need - full) * frac) + 1
        plan = _plan(inp, budget)
        assert plan.fits and plan.peak <= budget
        assert plan.peak == memplan.predict_peak(inp, plan.checkpointed, (), (), CAL)
        assert not plan.fp8  # fp8 only when allowed
        counts.append(len(plan.checkpointed))
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] >= len(inp.blocks) - 2
    # the front layers are checkpointed first (their activations live longest)
    mid = _plan(inp, int(full + (need - full) * 0.5))
    layers = [b.name for b in inp.blocks if b.name.startswith("layers")]
    assert mid.checkpointed and layers[0] in mid.checkpointed
    assert mid.step_s > free.step_s


def test_planner_fp8_only_where_needed_and_modes():
    inp = plan_input(_tiny(), 4096, 128, "adamw", None)
    need = _plan(inp, None).peak
    budget = int(need * 0.7)
    with_fp8 = _plan(inp, budget, allow_fp8=True)
    assert with_fp8.fits
    assert len(with_fp8.fp8) < len(inp.blocks) or with_fp8.checkpointed
    assert _plan(inp, None, allow_fp8=True).fp8 == frozenset()  # nothing needed: bf16
    assert _plan(inp, budget, checkpoint="full").checkpointed == {b.name for b in inp.blocks}
    assert _plan(inp, budget, all_fp8=True).fp8 == {b.name for b in inp.blocks}
    tiny = _plan(inp, 1)
    assert not tiny.fits and tiny.notes  # says so instead of looping


def test_prepare_base_quantises_only_the_chosen_blocks():
    tr = _tiny()
    chosen = {"layers.0"}
    prepare_base(tr, "fp8", "cpu", torch.float32, blocks=chosen)
    kinds = {block_of(n): m.weight.dtype for n, _p, _c, m in base_linears(tr)}
    assert kinds["layers.0"] == torch.float8_e4m3fn
    assert all(v == torch.float32 for k, v in kinds.items() if k != "layers.0")


@pytest.fixture(scope="module")
def full_size():
    from diffusers import ZImageTransformer2DModel

    from zitdesk.paths import skeleton_dir

    raw = json.loads((skeleton_dir() / "transformer" / "config.json").read_text())
    with torch.device("meta"):
        tr = ZImageTransformer2DModel(**{k: v for k, v in raw.items() if not k.startswith("_")})
    tr = tr.to(torch.bfloat16)
    tr.requires_grad_(False)
    ad.add_user_adapter(tr, 32, 32.0, ("attention", "feed_forward"), True, 0)
    return tr


@pytest.mark.parametrize(
    ("image_tokens", "optimizer", "ckpt", "fp8", "measured"),
    [  # docs/benchmarks.md: bench/train_gpu.py and bench/estimate_gpu.py peaks (GiB)
        (4096, "adamw", 0, False, 31.45),
        (4096, "adamw", 19, False, 20.97),
        (4096, "adamw", 34, True, 9.17),
        (4096, "adamw8bit", 34, True, 8.73),
        (2304, "adamw", 34, True, 8.36),
        (1024, "adamw", 34, True, 7.79),
    ],
)
def test_memory_model_matches_measured_peaks(
    full_size, image_tokens, optimizer, ckpt, fp8, measured
):
    inp = plan_input(full_size, image_tokens, 128, optimizer, None)
    names = [b.name for b in inp.blocks]
    layers = [n for n in names if n.startswith("layers")]
    ck = names if ckpt == 34 else layers[:ckpt]
    pred = memplan.predict_peak(inp, ck, names if fp8 else [], []) / GiB
    assert abs(pred - measured) / measured < 0.03, (pred, measured)


def _runner(train_model, streamed=(), poison=True, fp8=False):
    from diffusers import ZImageTransformer2DModel

    from zitdesk.train.config import TrainConfig
    from zitdesk.train.core import StepRunner
    from zitdesk.train.setup import prepare_transformer
    from zitdesk.train.streaming import BlockStreamer

    tr = ZImageTransformer2DModel.from_pretrained(str(train_model / "transformer"))
    cfg = TrainConfig().with_changes(
        model={"base_precision": "fp8" if fp8 else "fp32"},
        lora={"rank": 8, "alpha": 8.0, "include_refiners": True},
        optim={"learning_rate": 3e-3, "steps": 20},
        memory={"gradient_checkpointing": "full"},
    )
    prepare_transformer(tr, cfg, "cpu")
    runner = StepRunner(tr, cfg, "cpu")
    runner.configure(16, 24)
    if streamed:
        runner.streamer = BlockStreamer(tr, set(streamed), "cpu", poison=poison)
        runner.install_checkpointing()
    return runner


def _batch(seed):
    from zitdesk.train.core import MicroBatch

    g = torch.Generator().manual_seed(seed)
    lat = torch.randn(1, 16, 8, 8, generator=g) * 0.5
    return MicroBatch(
        lat, torch.randn(lat.shape, generator=g), [torch.randn(24, 16, generator=g)], [0.6], [1.0]
    )


@pytest.mark.parametrize("fp8", [False, True])
def test_streamed_blocks_train_exactly_like_resident_ones(train_model, fp8):
    """Streamed weights rest on NaN tensors here: any use outside the block's window (forward,
    recompute + backward) would poison the loss or the LoRA gradients."""
    ref = _runner(train_model, fp8=fp8)
    names = [n for n, _ in forward_blocks(ref.tr)]
    streamed = [n for n in names if n.startswith("layers.")] + ["noise_refiner.0"]
    run = _runner(train_model, streamed, fp8=fp8)
    for i in range(3):
        a = float(ref.train_step([_batch(i)]))
        b = float(run.train_step([_batch(i)]))
        assert a == pytest.approx(b, rel=1e-6, abs=1e-7) and b == b
    for p, q in zip(ref.params, run.params, strict=True):
        assert torch.allclose(p, q, atol=1e-6), (p - q).abs().max()
    s = run.streamer
    assert not s.live  # everything back in RAM after the step
    # each streamed block is copied in twice per step: forward and backward (recompute)
    assert s.copies == 3 * 2 * len(streamed)
    # an eager no-grad call (samples) attaches and detaches the weights by itself
    tr = run.tr
    tr.eval()
    with torch.no_grad():
        x = [_batch(0).latents[0].unsqueeze(1)]
        out = tr(x, torch.tensor([0.5]), [_batch(0).embeds[0]], return_dict=False)[0][0]
    assert torch.isfinite(out).all() and not s.live


@pytest.mark.slow
def test_streaming_under_torch_compile_needs_no_recompiles(train_model):
    """The compiled blocks (dynamo + AOTAutograd; inductor's code generation aside, which is
    CUDA's business) see the streamed weights on the device at every call: same losses as the
    resident model, no recompilation from step to step, and the eager sample path still works."""
    from torch._dynamo.utils import counters

    ref = _runner(train_model)
    names = [n for n, _ in forward_blocks(ref.tr)]
    run = _runner(train_model, [names[-1], "noise_refiner.0"])
    torch._dynamo.reset()
    counters.clear()
    for r in (ref, run):
        r.tr.compile_repeated_blocks(fullgraph=False, backend="aot_eager")
    for i in range(3):
        assert float(ref.train_step([_batch(i)])) == float(run.train_step([_batch(i)]))
    assert (
        not counters.get("recompiles") and counters["frames"]["ok"] == counters["frames"]["total"]
    )
    with torch.no_grad(), torch.compiler.set_stance("force_eager"):
        run.tr.eval()
        b = _batch(0)
        out = run.tr(
            [b.latents[0].unsqueeze(1)], torch.tensor([0.5]), [b.embeds[0]], return_dict=False
        )
    assert torch.isfinite(out[0][0]).all() and not run.streamer.live
    torch._dynamo.reset()


@pytest.mark.parametrize("backend", [None, "aot_eager_decomp_partition"])
def test_fp8_linear_saves_only_its_fp8_weight(backend):
    """The fp8 base Linear keeps no dequantised weight for the backward, eager or traced by
    torch.compile's min-cut partitioner (memplan.Calibration.fp8_saves_dequant = False), and its
    input gradient equals the plain dequantise-then-linear one."""
    from zitdesk.train.precision import dequantize_fp8, quantize_fp8_module

    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(128, 96, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(96, 128, generator=g) * 0.02)
    quantize_fp8_module(lin, lin.weight.detach().clone(), torch.float32)
    lin.requires_grad_(False)
    params = {t.untyped_storage().data_ptr() for t in (lin.weight, lin.weight_scale)}

    def f(x):
        return (lin(x) * 1.5).tanh()

    fn = torch.compile(f, backend=backend, fullgraph=True) if backend else f
    x = torch.randn(8, 128, generator=g, requires_grad=True)
    fn(x).sum().backward()  # compile outside the counting
    saved = []

    def pack(t):
        saved.append(t.untyped_storage().data_ptr() not in params and t.numel() == 96 * 128)
        return t

    x.grad = None
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = fn(x)
    y.sum().backward()
    assert saved and not any(saved)  # nothing weight-shaped beyond the fp8 weight itself
    x2 = x.detach().clone().requires_grad_(True)
    w = dequantize_fp8(lin.weight, lin.weight_scale)
    ((x2 @ w.t()) * 1.5).tanh().sum().backward()
    assert torch.allclose(x.grad, x2.grad, atol=1e-6)
    torch._dynamo.reset()


def test_torch_free_zimage_input_matches_the_model(full_size):
    inp = plan_input(full_size, 4096, 128, "adamw", None)
    lora = sum(p.numel() for p in ad.user_parameters(full_size))
    assert memplan.zimage_input(4096, 128, lora, "adamw", None) == inp


def test_bf16_tier_uses_fp8_only_to_go_faster():
    """24gb preset (auto precision): fp8 blocks when bf16 would fit anyway (faster than
    checkpointing more), none when bf16 cannot fit at all (the fp8 tiers' job)."""
    inp = memplan.zimage_input(4096, 128, 79_380_480, "adamw", int(24 * GiB), allow_fp8=True)
    fast = memplan.plan_memory(inp)
    assert fast.fits and fast.fp8 and len(fast.checkpointed) < 19
    bf16 = memplan.plan_memory(memplan.PlanInput(**{**inp.__dict__, "allow_fp8": False}))
    assert fast.step_s < bf16.step_s
    small = memplan.plan_memory(memplan.PlanInput(**{**inp.__dict__, "budget": int(12 * GiB)}))
    assert not small.fp8 and not small.fits and small.notes
