"""zitdesk.engine.speed on the CPU with the tiny real model: the plan's fallbacks and notes, fp8
linears (dequantised path), the prompt-embedding LRU, previews and the PNG writer."""

import copy
import os

import numpy as np
import pytest
import torch

from zitdesk.engine import speed
from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import ImageReady, JobFailed, JobFinished, JobWarning, StepProgress
from zitdesk.engine.generate import GenerationEngine
from zitdesk.engine.requests import GenerateRequest, MemoryMode
from zitdesk.errors import RequestError


@pytest.fixture(scope="module")
def engine(tiny_diffusers):
    eng = GenerationEngine(model_path=str(tiny_diffusers), device="cpu")
    eng.preview_min_interval_s = 0.0
    yield eng
    eng.shutdown()


def _req(tmp_path, **kw):
    base = dict(prompt="a red fox in the snow", width=64, height=64, steps=2, seed=3)
    base.update(kw)
    return GenerateRequest(output_dir=str(tmp_path), **base)


def _run(engine, req):
    events = []
    engine.run(req, events.append, CancelToken())
    assert not isinstance(events[-1], JobFailed), events[-1].message
    return events


def test_plan_cpu_falls_back_quietly_and_fp8_says_why(monkeypatch):
    monkeypatch.delenv("ZITDESK_SPEED", raising=False)
    auto = speed.plan_speed(GenerateRequest(prompt="x"), "cpu")
    assert auto == speed.SpeedPlan(compile=False, fp8_compute=False, notes=())
    fp8 = speed.plan_speed(GenerateRequest(prompt="x", speed="fp8"), "cpu")
    assert not fp8.fp8_compute and len(fp8.notes) == 1 and "fp8 tensor cores" in fp8.notes[0]


def test_plan_without_triton_runs_eager_with_one_note(monkeypatch):
    monkeypatch.delenv("ZITDESK_SPEED", raising=False)
    monkeypatch.setattr(speed, "has_triton", lambda: False)
    plan = speed.plan_speed(GenerateRequest(prompt="x"), "cuda")
    assert not plan.compile and len(plan.notes) == 1 and "Triton" in plan.notes[0]
    # the off switch: no compile, no note
    monkeypatch.setenv("ZITDESK_SPEED", "off")
    assert speed.plan_speed(GenerateRequest(prompt="x"), "cuda").notes == ()
    # offload modes are never compiled
    monkeypatch.setattr(speed, "has_triton", lambda: True)
    monkeypatch.delenv("ZITDESK_SPEED")
    req = GenerateRequest(prompt="x", memory_mode=MemoryMode.GROUP_OFFLOAD)
    assert not speed.plan_speed(req, "cuda").compile
    assert speed.plan_speed(GenerateRequest(prompt="x"), "cuda").compile


def test_speed_value_is_validated():
    with pytest.raises(RequestError, match="Speed must be one of auto, fp8, off"):
        GenerateRequest(prompt="x", speed="turbo").validate()


def test_fp8_linears_match_the_bf16_model_and_stay_linears(tiny_components):
    tr = copy.deepcopy(tiny_components["transformer"]).to(torch.bfloat16)
    ref = copy.deepcopy(tr)
    n = speed.to_fp8_linears(tr, "cpu")
    converted = [m for m in tr.modules() if isinstance(m, speed.fp8_linear_class())]
    assert n == len(converted) > 0
    assert all(isinstance(m, torch.nn.Linear) for m in converted)  # PEFT still wraps them
    assert all(m.weight.dtype == torch.float8_e4m3fn for m in converted)
    gen = torch.Generator().manual_seed(0)
    x = [torch.randn(16, 1, 8, 8, generator=gen).to(torch.bfloat16)]
    cap = [torch.randn(7, tiny_components["text_encoder"].config.hidden_size, generator=gen)]
    t = torch.tensor([0.5])
    with torch.no_grad():
        a = ref(x, t, [cap[0].to(torch.bfloat16)], return_dict=False)[0][0].float()
        b = tr(x, t, [cap[0].to(torch.bfloat16)], return_dict=False)[0][0].float()
    rel = float((a - b).norm() / a.norm())
    assert 0 < rel < 0.1, rel  # fp8 weights: a small, nonzero drift


def test_uncompile_restores_the_eager_module():
    m = torch.nn.Sequential(torch.nn.Linear(4, 4))
    m[0].compile()
    assert speed.is_compiled(m)
    speed.uncompile(m)
    assert not speed.is_compiled(m)


def test_embedding_lru_evicts_the_oldest():
    cache = speed.EmbeddingCache(max_entries=2)
    cache.put(("a",), 1)
    cache.put(("b",), 2)
    assert cache.get(("a",)) == 1  # a is now the newest
    cache.put(("c",), 3)
    assert ("b",) not in cache and ("a",) in cache and ("c",) in cache


def test_rerolling_seeds_and_going_back_never_reencodes(engine, tmp_path):
    te = None
    _run(engine, _req(tmp_path, prompt="first prompt"))
    te = engine._loaded.pipe.text_encoder
    calls = []
    handle = te.register_forward_hook(lambda *a: calls.append(1))
    try:
        for seed in (1, 2, 3):
            _run(engine, _req(tmp_path, prompt="first prompt", seed=seed))
        assert calls == []  # re-rolls: no encode
        _run(engine, _req(tmp_path, prompt="second prompt"))
        assert len(calls) == 1
        _run(engine, _req(tmp_path, prompt="first prompt", seed=9))  # back to the first
        assert len(calls) == 1
    finally:
        handle.remove()


def test_writer_thread_reports_every_image_in_order(engine, tmp_path):
    events = _run(engine, _req(tmp_path, count=3, preview_every=1))
    ready = [e for e in events if isinstance(e, ImageReady)]
    assert [e.image_index for e in ready] == [0, 1, 2]
    fin = events[-1]
    assert isinstance(fin, JobFinished) and list(fin.paths) == [e.path for e in ready]
    for e in ready:
        with open(e.path, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    previews = [e.preview for e in events if isinstance(e, StepProgress)]
    assert all(p is not None and p.dtype == np.uint8 for p in previews)  # CPU: at once
    assert fin.stats["compiled"] is False and fin.stats["fp8_compute"] is False


def test_fp8_speed_on_cpu_generates_in_bf16_with_the_note(engine, tmp_path, monkeypatch):
    monkeypatch.delenv("ZITDESK_SPEED", raising=False)
    events = _run(engine, _req(tmp_path, speed="fp8"))
    notes = [e.message for e in events if isinstance(e, JobWarning)]
    assert any("fp8 tensor cores" in n for n in notes)
    assert isinstance(events[-1], JobFinished) and events[-1].stats["fp8_compute"] is False


def test_async_preview_on_cpu_is_immediate(tiny_components):
    from zitdesk.engine.preview import fit_latent_rgb

    coef = fit_latent_rgb(tiny_components["vae"])
    pv = speed.AsyncPreview(coef)
    out = pv.submit(torch.randn(1, 16, 8, 8))
    assert out is not None and out.shape == (8, 8, 3) and pv.ready() is None


def test_fp8_matmul_matches_the_dequantised_product():
    """The exact ``torch._scaled_mm`` call the GPU path makes (PyTorch runs it on a CPU too)."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(48, 64, generator=gen).to(torch.bfloat16)
    w = torch.randn(80, 64, generator=gen)
    wq, ws = speed.quantize_rows(w)
    try:
        y = speed.fp8_matmul(x, wq, ws.view(-1), torch.bfloat16)
    except (RuntimeError, NotImplementedError) as exc:  # older CPU builds: no fp8 kernel
        pytest.skip(f"no CPU _scaled_mm here: {exc}")
    ref = x.float() @ w.t()
    deq = x.float() @ (wq.float() * ws).t()
    assert y.dtype == torch.bfloat16 and y.shape == (48, 80)
    assert float((y.float() - ref).norm() / ref.norm()) < 0.06
    assert float((deq - ref).norm() / ref.norm()) < 0.06


def test_a_failing_fast_path_falls_back_to_eager_once(tiny_diffusers, tmp_path, monkeypatch):
    """A kernel the card lacks (simulated: the first fp8 linear raises) → one note, the job
    still makes its image the plain way, and the next job stays plain."""
    from zitdesk.engine import generate

    monkeypatch.setattr(
        generate, "plan_speed", lambda request, device: speed.SpeedPlan(fp8_compute=True)
    )
    real = generate.to_fp8_linears

    def failing(transformer, device=None):
        n = real(transformer, device)
        first = next(m for m in transformer.modules() if isinstance(m, speed.fp8_linear_class()))

        def boom(*_):
            raise RuntimeError("scaled_mm: this GPU has no fp8 kernel")

        first.register_forward_pre_hook(boom)
        return n

    monkeypatch.setattr(generate, "to_fp8_linears", failing)
    eng = GenerationEngine(model_path=str(tiny_diffusers), device="cpu")
    try:
        events = _run(eng, _req(tmp_path))
        notes = [e.message for e in events if isinstance(e, JobWarning)]
        assert len([n for n in notes if "fast path" in n]) == 1 and "RuntimeError" in notes[-1]
        fin = events[-1]
        assert isinstance(fin, JobFinished) and len(fin.paths) == 1
        assert fin.stats["fp8_compute"] is False
        again = _run(eng, _req(tmp_path, seed=4))
        assert not [e for e in again if isinstance(e, JobWarning)]
        assert again[-1].stats["fp8_compute"] is False
    finally:
        eng.shutdown()


def test_a_lora_applies_on_fp8_linears_and_comes_off_exactly(tmp_path):
    from diffusers import ZImagePipeline
    from safetensors.torch import save_file

    from zitdesk.lora.apply import apply_loras
    from zitdesk.models.tiny import make_tiny_components

    pipe = ZImagePipeline(**make_tiny_components(seed=0))
    pipe.set_progress_bar_config(disable=True)
    assert speed.to_fp8_linears(pipe.transformer, "cpu") > 0
    m = "layers.0.attention.to_q"
    gen = torch.Generator().manual_seed(0)
    path = tmp_path / "l.safetensors"
    save_file(
        {
            f"diffusion_model.{m}.lora_A.weight": torch.randn(4, 32, generator=gen) * 0.15,
            f"diffusion_model.{m}.lora_B.weight": torch.randn(32, 4, generator=gen) * 0.15,
        },
        str(path),
    )
    with torch.no_grad():
        emb, _ = pipe.encode_prompt("a fox", do_classifier_free_guidance=False)

    def run():
        with torch.no_grad():
            return pipe(
                prompt_embeds=emb,
                height=64,
                width=64,
                num_inference_steps=2,
                guidance_scale=0.0,
                generator=torch.Generator().manual_seed(7),
                output_type="latent",
            ).images.clone()

    base = run()
    (report,) = apply_loras(pipe, [(str(path), 1.0)])
    assert report.matched == 1
    assert float((run() - base).abs().max()) > 1e-3  # the LoRA acts through the fp8 layer
    apply_loras(pipe, [])
    assert torch.equal(run(), base)


def test_compile_cache_goes_to_the_app_cache_per_torch_and_gpu(monkeypatch):
    from zitdesk.io import user_dirs

    for var in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        monkeypatch.setenv(var, "/somewhere/torch/chose")  # torch writes its default here
    monkeypatch.setattr(speed, "_USER_CACHE_VARS", set())
    root = speed.use_compile_cache("cpu")
    assert root.parent == user_dirs()["cache"] / "compile" and root.is_dir()
    assert torch.__version__.split("+")[0] in root.name
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(root / "inductor")
    assert os.environ["TRITON_CACHE_DIR"] == str(root / "triton")
    # a location the user set before the app started is kept
    monkeypatch.setenv("TRITON_CACHE_DIR", "/mine")
    monkeypatch.setattr(speed, "_USER_CACHE_VARS", {"TRITON_CACHE_DIR"})
    speed.use_compile_cache("cpu")
    assert os.environ["TRITON_CACHE_DIR"] == "/mine"


def test_fp8_compute_through_the_engine_in_fp8_mode(tiny_diffusers, tmp_path, monkeypatch):
    """The plan a fp8 card gets in the fp8 memory mode, run on the CPU's dequantised path: the
    linears are converted, layerwise casting is skipped for them, the image stays close to bf16."""
    from PIL import Image

    from zitdesk.engine import generate

    plain = GenerationEngine(model_path=str(tiny_diffusers), device="cpu")
    try:
        ref = _run(plain, _req(tmp_path / "ref", seed=21, preview_every=0))[-1]
    finally:
        plain.shutdown()
    monkeypatch.setattr(
        generate, "plan_speed", lambda request, device: speed.SpeedPlan(fp8_compute=True)
    )
    eng = GenerationEngine(model_path=str(tiny_diffusers), device="cpu")
    try:
        req = _req(tmp_path / "f8", seed=21, preview_every=0, memory_mode=MemoryMode.FP8)
        events = _run(eng, req)
        fin = events[-1]
        assert isinstance(fin, JobFinished) and fin.stats["fp8_compute"] is True
        tr = eng._loaded.pipe.transformer
        assert any(isinstance(m, speed.fp8_linear_class()) for m in tr.modules())
        assert not any(hasattr(m, "_diffusers_hook") for m in tr.modules())  # no layerwise casting
    finally:
        eng.shutdown()
    a = np.asarray(Image.open(ref.paths[0]), dtype=np.float64)
    b = np.asarray(Image.open(fin.paths[0]), dtype=np.float64)
    assert a.shape == b.shape and np.abs(a - b).mean() < 8  # of 255: small drift
