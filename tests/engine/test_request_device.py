"""A generation job runs on the card its request names (GenerateRequest.device, #19)."""

from __future__ import annotations

import pytest

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import JobFailed, JobFinished
from zitdesk.engine.generate import GenerationEngine
from zitdesk.engine.requests import GenerateRequest
from zitdesk.errors import RequestError


def _req(tmp_path, **kw):
    return GenerateRequest(
        prompt="a red fox", width=64, height=64, steps=2, seed=3, output_dir=str(tmp_path), **kw
    )


def test_the_job_runs_on_its_device_and_the_next_on_the_engines(tiny_diffusers, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA (the engine's own device must be unusable)")
    # the engine's own device is a GPU this machine lacks: only a job naming the CPU can run
    eng = GenerationEngine(model_path=str(tiny_diffusers), device="cuda:0")
    try:
        events: list = []
        eng.run(_req(tmp_path, device="cpu"), events.append, CancelToken())
        assert isinstance(events[-1], JobFinished), getattr(events[-1], "message", "")
        assert eng.device == "cpu"
        events = []
        eng.run(_req(tmp_path), events.append, CancelToken())  # names none: the engine's GPU
        assert isinstance(events[-1], JobFailed)
        assert eng.device == "cuda:0"
    finally:
        eng.shutdown()


def test_a_bad_device_is_one_sentence(tmp_path):
    with pytest.raises(RequestError, match="not known"):
        _req(tmp_path, device="gpu7").validate()
