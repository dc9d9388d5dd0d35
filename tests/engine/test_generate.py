"""Generation through the real engine with the tiny model: events, cancel, PNGs, failures."""

import threading

import numpy as np
import pytest
from PIL import Image

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import (
    ImageReady,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    JobWarning,
    PhaseChanged,
    StepProgress,
)
from zitdesk.engine.generate import GenerationEngine
from zitdesk.engine.requests import GenerateRequest, MemoryMode


@pytest.fixture(scope="module")
def engine(tiny_diffusers):
    eng = GenerationEngine(model_path=str(tiny_diffusers), device="cpu")
    eng.preview_min_interval_s = 0.0  # a preview on every step, to check them all
    yield eng
    eng.shutdown()


def _run(engine, req, cancel=None):
    events = []
    engine.run(req, events.append, cancel or CancelToken())
    return events


def _req(tmp_path, **kw):
    base = dict(
        prompt="a red fox in the snow",
        width=64,
        height=64,
        steps=3,
        seed=11,
        output_dir=str(tmp_path),
    )
    base.update(kw)
    return GenerateRequest(**base)


def test_events_in_order_and_png_written(engine, tmp_path):
    req = _req(tmp_path, count=2)
    events = _run(engine, req)
    assert all(ev.job_id == req.job_id for ev in events)
    assert isinstance(events[0], JobStarted) and events[0].total_steps == 6
    assert isinstance(events[-1], JobFinished)
    steps = [(e.image_index, e.step) for e in events if isinstance(e, StepProgress)]
    assert steps == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    previews = [e.preview for e in events if isinstance(e, StepProgress)]
    assert all(p is not None and p.dtype == np.uint8 and p.shape == (8, 8, 3) for p in previews)
    ready = [e for e in events if isinstance(e, ImageReady)]
    assert [e.seed for e in ready] == [11, 12]
    # every ImageReady comes after the steps of its image and before the finish
    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ImageReady") > kinds.index("StepProgress")
    phases = [e.phase for e in events if isinstance(e, PhaseChanged)]
    assert "encoding" in phases and "denoising" in phases
    for e in ready:
        img = Image.open(e.path)
        assert img.size == (64, 64)
        assert "parameters" in img.info and "Seed: " in img.info["parameters"]
    assert events[-1].paths == tuple(e.path for e in ready)


def test_same_seed_same_image_and_params_round_trip(engine, tmp_path):
    from zitdesk.imagemeta import read_parameters

    a = [e for e in _run(engine, _req(tmp_path / "a")) if isinstance(e, ImageReady)][0]
    b = [e for e in _run(engine, _req(tmp_path / "b")) if isinstance(e, ImageReady)][0]
    assert np.array_equal(np.asarray(Image.open(a.path)), np.asarray(Image.open(b.path)))
    params = read_parameters(a.path)
    assert params.source == "zitdesk"
    assert params.prompt == "a red fox in the snow"
    assert params.seed == 11 and params.steps == 3
    assert (params.width, params.height) == (64, 64)
    again = GenerateRequest.from_dict(params.request)
    assert again.prompt == "a red fox in the snow" and again.seed == 11


def test_different_seed_different_image(engine, tmp_path):
    a = [e for e in _run(engine, _req(tmp_path / "a", seed=1)) if isinstance(e, ImageReady)][0]
    b = [e for e in _run(engine, _req(tmp_path / "b", seed=2)) if isinstance(e, ImageReady)][0]
    assert not np.array_equal(np.asarray(Image.open(a.path)), np.asarray(Image.open(b.path)))


def test_cancel_mid_run_skips_decode_and_keeps_finished_images(engine, tmp_path):
    cancel = CancelToken()
    events = []

    def emit(ev):
        events.append(ev)
        # cancel from another thread while image 2 is denoising, like the UI's Cancel button
        if isinstance(ev, StepProgress) and ev.image_index == 1 and ev.step == 1:
            t = threading.Thread(target=cancel.cancel)
            t.start()
            t.join()

    req = _req(tmp_path, count=3, steps=4)
    engine.run(req, emit, cancel)
    assert isinstance(events[-1], JobCancelled)
    ready = [e for e in events if isinstance(e, ImageReady)]
    assert (
        len(ready) == 1
    )  # image 1 done; image 2 cancelled before its decode; image 3 never started
    assert events[-1].paths == (ready[0].path,)
    second = [e.step for e in events if isinstance(e, StepProgress) and e.image_index == 1]
    assert second == [1]  # the next step's callback saw the flag
    assert sorted(p.name for p in tmp_path.iterdir()) == [ready[0].path.rsplit("/", 1)[-1]]
    # the engine stays usable after a cancel
    assert isinstance(_run(engine, _req(tmp_path / "after"))[-1], JobFinished)


def test_invalid_request_fails_plainly(engine, tmp_path):
    events = _run(engine, _req(tmp_path, width=1000))
    assert isinstance(events[-1], JobFailed)
    assert events[-1].kind == "request"
    assert "multiple of 16" in events[-1].message and "992 or 1008" in events[-1].message


def test_bad_model_fails_plainly(tmp_path):
    eng = GenerationEngine(model_path=str(tmp_path / "missing"), device="cpu")
    events = _run(eng, _req(tmp_path))
    assert isinstance(events[-1], JobFailed) and events[-1].kind == "model"
    assert "does not exist" in events[-1].message


def test_memory_modes_degrade_on_cpu(tiny_diffusers, tmp_path):
    eng = GenerationEngine(model_path=str(tiny_diffusers), device="cpu")
    for mode in (MemoryMode.MODEL_OFFLOAD, MemoryMode.FP8):
        events = _run(eng, _req(tmp_path / mode.value, memory_mode=mode, vae_tiling=True))
        assert isinstance(events[-1], JobFinished), getattr(events[-1], "message", "")
        details = [e.detail for e in events if isinstance(e, PhaseChanged) and e.phase == "loaded"]
        assert details and ("CPU" in details[0])


def test_oom_becomes_retry_hint(engine, tmp_path, monkeypatch):
    import torch

    def boom(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    loaded = engine._ensure_pipeline(_req(tmp_path), lambda e: None, CancelToken())
    monkeypatch.setattr(type(loaded.pipe), "__call__", boom)
    events = _run(engine, _req(tmp_path))
    fail = events[-1]
    assert isinstance(fail, JobFailed) and fail.kind == "oom"
    assert "ran out of memory" in fail.message
    assert fail.retry_hint["memory_mode"] == MemoryMode.FP8.value
    assert engine._loaded is None  # reloaded cleanly on the next job


class _LinearVAE:
    """A stand-in whose latents are a known linear function of the 8x8-averaged colour.

    A random-weight VAE's GroupNorms erase flat colours, so only a VAE with a known colour
    response can show that the least-squares fit recovers it (the real Flux VAE is close to
    linear in colour at this scale).
    """

    def __init__(self):
        from types import SimpleNamespace

        import torch

        g = torch.Generator().manual_seed(0)
        self.w = torch.randn(16, 3, generator=g)
        self.b = torch.randn(16, generator=g)
        self.config = SimpleNamespace(scaling_factor=0.3611, shift_factor=0.1159)
        self._p = torch.zeros(1)

    def parameters(self):
        return iter([self._p])

    def encode(self, x):
        from types import SimpleNamespace

        import torch

        rgb = torch.nn.functional.avg_pool2d((x + 1) / 2, 8)  # (B, 3, h, w) in [0, 1]
        z = torch.einsum("cr,brhw->bchw", self.w, rgb) + self.b[None, :, None, None]
        return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: z))


def test_preview_fit_recovers_a_linear_colour_response():
    from zitdesk.engine.preview import fit_latent_rgb, preview_quality

    vae = _LinearVAE()
    coef = fit_latent_rgb(vae)
    assert coef.shape == (17, 3)
    err, trivial = preview_quality(coef, vae)
    assert err < 0.01 < trivial, (err, trivial)


def test_preview_fit_runs_on_the_real_vae_class(tiny_pipe):
    import torch

    from zitdesk.engine.preview import fit_latent_rgb, latents_to_rgb

    coef = fit_latent_rgb(tiny_pipe.vae)
    assert np.isfinite(coef).all()
    img = latents_to_rgb(torch.randn(1, 16, 12, 10), coef)
    assert img.shape == (12, 10, 3) and img.dtype == np.uint8


def test_long_prompt_warns_before_truncation(engine, tmp_path):
    long_prompt = "a very detailed scene with many small things " * 60  # ≫ 504 byte-level tokens
    events = _run(engine, _req(tmp_path, prompt=long_prompt, steps=1))
    warnings = [e.message for e in events if isinstance(e, JobWarning)]
    assert isinstance(events[-1], JobFinished)
    assert len(warnings) == 1 and "cut off" in warnings[0]
    short = _run(engine, _req(tmp_path, steps=1))
    assert not [e for e in short if isinstance(e, JobWarning)]


def _decoder_calls(engine):
    """Count calls of the VAE decoder's first and last layers of the engine's loaded pipeline."""
    vae = engine._loaded.pipe.vae
    calls = {"in": 0, "out": 0}
    first = vae.decoder.conv_in
    last = vae.decoder.conv_out
    handles = [
        first.register_forward_pre_hook(lambda *_: calls.__setitem__("in", calls["in"] + 1)),
        last.register_forward_pre_hook(lambda *_: calls.__setitem__("out", calls["out"] + 1)),
    ]
    return vae, calls, handles


def test_cancel_during_the_last_step_never_decodes(engine, tmp_path):
    _run(engine, _req(tmp_path / "warm"))  # load the pipeline, so its VAE can be watched
    vae, calls, handles = _decoder_calls(engine)
    cancel = CancelToken()
    steps = []
    transformer = engine._loaded.pipe.transformer

    def on_forward(*_):  # the user presses Cancel while the last step is computing
        steps.append(1)
        if len(steps) == 3:
            cancel.cancel()

    handles.append(transformer.register_forward_pre_hook(on_forward))
    try:
        events = _run(engine, _req(tmp_path / "c", steps=3), cancel)
    finally:
        for h in handles:
            h.remove()
    assert isinstance(events[-1], JobCancelled)
    assert calls == {"in": 0, "out": 0}
    assert not [e for e in events if isinstance(e, ImageReady)]
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())


def test_cancel_while_decoding_stops_the_decode(engine, tmp_path):
    _run(engine, _req(tmp_path / "warm"))
    vae, calls, handles = _decoder_calls(engine)
    cancel = CancelToken()
    # Cancel arrives once the decode has begun (after the last step's callback had looked).
    handles.append(vae.decoder.conv_in.register_forward_hook(lambda *_: cancel.cancel()))
    try:
        events = _run(engine, _req(tmp_path / "d", steps=2), cancel)
    finally:
        for h in handles:
            h.remove()
    assert isinstance(events[-1], JobCancelled)
    assert calls["in"] == 1 and calls["out"] == 0  # stopped at the next layer, not decoded out
    assert not [e for e in events if isinstance(e, ImageReady)]
    assert not (tmp_path / "d").exists() or not list((tmp_path / "d").iterdir())
    # the hooks are gone: the next job decodes and saves
    assert isinstance(_run(engine, _req(tmp_path / "after"))[-1], JobFinished)
