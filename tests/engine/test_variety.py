"""Variety (seeded noise on the prompt embedding) through the real engine with the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import ImageReady, JobFailed, JobFinished
from zitdesk.engine.generate import GenerationEngine
from zitdesk.engine.requests import GenerateRequest
from zitdesk.engine.variety import vary_embeddings
from zitdesk.errors import RequestError


@pytest.fixture(scope="module")
def engine(tiny_diffusers):
    eng = GenerationEngine(model_path=str(tiny_diffusers), device="cpu")
    yield eng
    eng.shutdown()


def _image(engine, req) -> tuple[np.ndarray, str]:
    events: list = []
    engine.run(req, events.append, CancelToken())
    assert isinstance(events[-1], JobFinished), events[-1]
    ready = [e for e in events if isinstance(e, ImageReady)][0]
    return np.asarray(Image.open(ready.path)).astype(np.int16), ready.path


def _req(tmp_path, **kw) -> GenerateRequest:
    base = dict(prompt="a red fox in the snow", width=64, height=64, steps=2, seed=5)
    base.update(kw)
    return GenerateRequest(output_dir=str(tmp_path), **base)


def test_noise_is_seeded_and_relative():
    import torch

    e = [torch.randn(7, 16) * 3.0, torch.randn(4, 16)]
    a, b = vary_embeddings(e, 0.2, 1), vary_embeddings(e, 0.2, 1)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    c = vary_embeddings(e, 0.2, 2)
    assert not torch.equal(a[0], c[0])
    assert vary_embeddings(e, 0.0, 1) is e
    rel = (a[0] - e[0]).std() / e[0].std()
    assert 0.1 < float(rel) < 0.3  # noise relative to the embedding's own spread
    spiky = e[0].clone()
    spiky[:, 3] = 1000.0  # an outlier channel (as Qwen3 has) does not blow the noise up
    noise = vary_embeddings([spiky], 0.2, 1)[0] - spiky
    assert float(noise.std()) < 2.0
    assert a[0].shape == e[0].shape and a[0].dtype == e[0].dtype


def test_variety_changes_the_image_and_replays_from_the_png(engine, tmp_path):
    from zitdesk.imagemeta import read_parameters

    plain, _ = _image(engine, _req(tmp_path / "plain"))
    varied, path = _image(engine, _req(tmp_path / "varied", variety=0.5))
    assert np.abs(plain - varied).mean() > 0.5  # the embedding noise shows in the picture
    params = read_parameters(path)
    assert "Variety: 0.5" in params.raw["parameters"]
    assert "Variety" not in params.unmapped  # used, not "Not used"
    values = params.request_values()
    assert values["variety"] == 0.5
    again, _ = _image(
        engine, GenerateRequest.from_dict(values).with_changes(output_dir=str(tmp_path / "again"))
    )
    assert np.array_equal(again, varied)
    # an A1111-style reader of the text alone (no zitdesk chunk) gets the variety too
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", params.raw["parameters"])
    Image.open(path).save(tmp_path / "text-only.png", pnginfo=info)
    text_only = read_parameters(str(tmp_path / "text-only.png"))
    assert text_only.source == "a1111" and text_only.request_values()["variety"] == 0.5
    # another seed with the same variety gives another image
    other, _ = _image(engine, _req(tmp_path / "other", variety=0.5, seed=6))
    assert not np.array_equal(other, varied)


def test_variety_out_of_range_is_one_sentence(engine, tmp_path):
    with pytest.raises(RequestError, match="Variety must be between 0"):
        _req(tmp_path, variety=3.0).validate()
    events: list = []
    engine.run(_req(tmp_path, variety=float("nan")), events.append, CancelToken())
    assert isinstance(events[-1], JobFailed) and events[-1].kind == "request"
    assert "Variety" in events[-1].message


def test_cfg_normalization_runs_with_guidance(engine, tmp_path):
    a, _ = _image(engine, _req(tmp_path / "a", guidance=4.0, negative_prompt="blurry"))
    b, path = _image(
        engine, _req(tmp_path / "b", guidance=4.0, negative_prompt="blurry", cfg_normalization=True)
    )
    from zitdesk.imagemeta import read_parameters

    assert read_parameters(path).request_values()["cfg_normalization"] is True
    assert a.shape == b.shape
