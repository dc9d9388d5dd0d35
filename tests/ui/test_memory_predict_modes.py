"""Measured peaks are only reused for requests with the same placement of the text encoder."""

from zitdesk.engine.requests import GenerateRequest
from zitdesk.memory_predict import MemoryPredictor


def test_text_encoder_in_ram_measurements_do_not_predict_resident_runs():
    p = MemoryPredictor()
    streamed = GenerateRequest(prompt="x", unload_text_encoder=True)
    resident = GenerateRequest(prompt="x", unload_text_encoder=False)
    p.record(streamed, int(14.15 * 2**30))
    assert p.predict(streamed).basis == "measured"
    pred = p.predict(resident)
    assert pred.basis != "measured"
    assert pred.peak_bytes > 18 * 2**30  # the resident text encoder adds ≈ 8 GB
