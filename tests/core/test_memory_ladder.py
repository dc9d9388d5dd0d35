"""The calibrated placement ladder (issue #17): quantised DiT sizes, the pre-flight choice and the
out-of-memory retry use one model, so the first attempt on a known card is predicted to fit."""

from __future__ import annotations

from zitdesk.engine.requests import GenerateRequest, MemoryMode
from zitdesk.memory_predict import (
    GIB,
    TIGHT_FRACTION,
    MemoryPredictor,
    after_oom,
    dit_resident_bytes,
    estimate_peak,
    preflight,
    retry_plan,
)

REQ = GenerateRequest(prompt="a lighthouse", width=1024, height=1024, steps=8)


def test_quantised_dit_sizes():
    q4 = dit_resident_bytes(MemoryMode.GPU, "gguf-Q4_K")
    assert 3.3e9 < q4 < 3.8e9  # "a Q4 DiT ≈ 3.5 GB"
    assert dit_resident_bytes(MemoryMode.GPU, "gguf-Q8_0") > 6.4e9
    assert dit_resident_bytes(MemoryMode.GPU, "") == 2 * dit_resident_bytes(MemoryMode.FP8, "")
    bf16 = estimate_peak(1024, 1024, MemoryMode.GPU, unload_text_encoder=True)
    gguf = estimate_peak(
        1024, 1024, MemoryMode.GPU, unload_text_encoder=True, dit_format="gguf-Q4_K"
    )
    assert bf16 - gguf > 7 * GIB


def test_ten_gib_card_fits_at_the_first_attempt():
    """The issue's 10 GiB ladder: gpu → fp8 with the encoder resident → offload → streaming.
    The calibrated choice is fp8 with the text encoder streamed from RAM (measured 8.4 GiB)."""
    first = preflight(REQ, 10 * GIB)
    assert first.memory_mode is MemoryMode.FP8 and first.unload_text_encoder
    assert MemoryPredictor().predict(first).peak_bytes <= TIGHT_FRACTION * 10 * GIB
    hint = after_oom(REQ, 10 * GIB)  # a job that was started in gpu mode anyway
    assert hint == {"memory_mode": "fp8", "vae_tiling": False, "unload_text_encoder": True}
    retry, words = retry_plan(REQ, hint)
    assert retry.memory_mode is MemoryMode.FP8 and retry.unload_text_encoder
    assert "text encoder from RAM" in words


def test_caps_choose_faster_rungs_for_smaller_files():
    for cap in (4, 6, 8, 10, 12, 16):
        for fmt in ("", "gguf-Q8_0", "gguf-Q4_K", "nvfp4"):
            req = preflight(REQ, cap * GIB, dit_format=fmt)
            assert MemoryPredictor().predict(req, fmt).peak_bytes <= TIGHT_FRACTION * cap * GIB
            if fmt:
                assert req.memory_mode is not MemoryMode.FP8  # already packed
    assert preflight(REQ, 8 * GIB, dit_format="gguf-Q4_K").memory_mode is MemoryMode.GPU
    assert preflight(REQ, 8 * GIB).memory_mode is MemoryMode.GROUP_OFFLOAD


def test_oom_after_a_predicted_fit_moves_past_the_underestimate():
    fp8 = REQ.with_changes(memory_mode=MemoryMode.FP8, unload_text_encoder=True)
    hint = after_oom(fp8, 10 * GIB)
    assert hint["memory_mode"] in ("model_offload", "group_offload")
    last = REQ.with_changes(
        memory_mode=MemoryMode.SEQUENTIAL, unload_text_encoder=True, vae_tiling=True
    )
    assert after_oom(last, 4 * GIB) == {}


def test_measurements_are_kept_per_format():
    pred = MemoryPredictor()
    req = REQ.with_changes(unload_text_encoder=True)
    pred.record(req, 5 * GIB, dit_format="gguf-Q4_K")
    assert pred.predict(req, "gguf-Q4_K").basis == "measured"
    assert pred.predict(req, "").basis == "estimate"


def test_a_gguf_dit_never_gets_sequential_offload():
    """accelerate's sequential offload cannot move GGUF parameters (KeyError in diffusers, seen
    on an H100): block streaming is a GGUF file's last rung, for the first attempt and retries."""
    for fmt in ("gguf-Q4_K", "gguf-Q8_0"):
        for cap in (1, 2, 4):
            assert preflight(REQ, cap * GIB, dit_format=fmt).memory_mode is not (
                MemoryMode.SEQUENTIAL
            )
        streaming = REQ.with_changes(
            memory_mode=MemoryMode.GROUP_OFFLOAD, unload_text_encoder=True, vae_tiling=True
        )
        assert after_oom(streaming, 2 * GIB, dit_format=fmt) == {}  # nothing smaller to offer
    # a bf16 file still has sequential offload as its last resort
    assert preflight(REQ, 1 * GIB).memory_mode is MemoryMode.SEQUENTIAL
