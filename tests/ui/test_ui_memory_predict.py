"""Predicted peak memory and the out-of-memory retry plan (no Qt)."""

from __future__ import annotations

from zitdesk.engine.requests import GenerateRequest, MemoryMode
from zitdesk.memory_predict import (
    GIB,
    MemoryPredictor,
    estimate_peak,
    fit_verdict,
    lighter_mode,
    retry_plan,
    smaller_size,
)


def r(**kw):
    return GenerateRequest(prompt="x", **kw)


def test_estimates_order_by_mode_and_size():
    peaks = [
        estimate_peak(1024, 1024, m)
        for m in (
            MemoryMode.GPU,
            MemoryMode.FP8,
            MemoryMode.MODEL_OFFLOAD,
            MemoryMode.GROUP_OFFLOAD,
            MemoryMode.SEQUENTIAL,
        )
    ]
    assert peaks == sorted(peaks, reverse=True)
    assert 18 * GIB < peaks[0] < 24 * GIB  # DiT + Qwen3 + activations, bf16
    assert estimate_peak(2048, 2048, MemoryMode.GPU) > peaks[0]
    assert estimate_peak(2048, 2048, MemoryMode.GROUP_OFFLOAD, vae_tiling=True) < estimate_peak(
        2048, 2048, MemoryMode.GROUP_OFFLOAD
    )


def test_measurements_refine_predictions(tmp_path):
    p = MemoryPredictor()
    first = p.predict(r(memory_mode=MemoryMode.FP8))
    assert first.basis == "estimate"
    p.record(r(memory_mode=MemoryMode.FP8), int(9 * GIB))
    same = p.predict(r(memory_mode=MemoryMode.FP8))
    assert same.basis == "measured" and same.peak_bytes == 9 * GIB
    other = p.predict(r(memory_mode=MemoryMode.FP8, width=768, height=768))
    assert other.basis == "scaled" and other.peak_bytes < 9 * GIB
    assert p.predict(r()).basis == "estimate"  # other modes are not affected
    p.record(r(), 0)  # CPU jobs report 0: ignored
    assert p.predict(r()).basis == "estimate"
    path = tmp_path / "h.json"
    p.save(path)
    assert MemoryPredictor.load(path).predict(r(memory_mode=MemoryMode.FP8)).peak_bytes == 9 * GIB
    path.write_text("[broken")
    assert MemoryPredictor.load(path).predict(r()).basis == "estimate"


def test_fit_verdict_levels():
    p = MemoryPredictor().predict(r(memory_mode=MemoryMode.GROUP_OFFLOAD))
    assert fit_verdict(p, None).level == "unknown"
    assert fit_verdict(p, 24 * GIB, 2 * GIB).level == "fits"
    big = MemoryPredictor().predict(r())
    v = fit_verdict(big, 12 * GIB, 1 * GIB)
    assert v.level == "too_big" and "too much" in v.message
    mode, pred = lighter_mode(MemoryPredictor(), r(), v.room_bytes)
    assert mode is MemoryMode.MODEL_OFFLOAD or pred.peak_bytes <= 0.9 * v.room_bytes


def test_retry_plan_goes_one_tier_down_then_smaller():
    req = r()
    nxt, text = retry_plan(req, {"memory_mode": "fp8", "vae_tiling": True})
    assert nxt.memory_mode is MemoryMode.FP8 and nxt.vae_tiling and nxt.job_id != req.job_id
    assert text == "Retry with fp8 weights + VAE tiling"
    last = r(memory_mode=MemoryMode.SEQUENTIAL, vae_tiling=True)
    smaller, text = retry_plan(last, {"vae_tiling": True})
    assert (smaller.width, smaller.height) == (768, 768) and "768×768" in text
    assert retry_plan(r(width=64, height=64, vae_tiling=True), {}) is None
    assert smaller_size(1248, 832) == (928, 624)
