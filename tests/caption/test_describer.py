"""Natural-language captions from a tiny random Qwen2-VL of the real architecture, saved to disk
with its image processor config and the bundled tokenizer, through the engine's caption job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.caption_models import WORDS, make_colour_dataset, make_tiny_vlm
from zitdesk.caption.describer import build_prompt, describer_problem
from zitdesk.caption.request import CaptionReady, CaptionRequest
from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import JobFinished


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory) -> Path:
    return make_tiny_vlm(tmp_path_factory.mktemp("vlm") / "Qwen2-VL-tiny")


def test_folder_checks(tmp_path, vlm_dir):
    assert describer_problem(vlm_dir) == ""
    assert "does not exist" in describer_problem(tmp_path / "x")
    (tmp_path / "remote").mkdir()
    (tmp_path / "remote" / "config.json").write_text(
        json.dumps({"model_type": "florence2", "auto_map": {"AutoModel": "x.Y"}})
    )
    assert "remote code" in describer_problem(tmp_path / "remote")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "config.json").write_text(json.dumps({"model_type": "qwen3"}))
    assert "not a vision-language model" in describer_problem(tmp_path / "text")


def test_prompt_templates():
    assert "one sentence" in build_prompt("short")
    assert "lighting" in build_prompt("detailed")
    training = build_prompt("training", trigger="zxq person")
    assert training.count("zxq person") == 2 and "except" in training
    assert build_prompt("short", custom="  Tags only. ") == "Tags only."


def test_vlm_caption_job_on_cpu(vlm_dir, tmp_path):
    from zitdesk.engine.studio import StudioEngine

    ds = make_colour_dataset(tmp_path / "ds", {"a.png": (200, 20, 20), "b.png": (20, 20, 200)})
    (ds / "a.txt").write_text("red theme", encoding="utf-8")
    req = CaptionRequest(
        str(ds),
        "vlm",
        str(vlm_dir),
        mode="append",
        template="training",
        trigger="zxq",
        max_tokens=6,
        device="cpu",
    )
    from zitdesk.caption.store import caption_and_apply

    events: list = []
    engine = StudioEngine(device="cpu")
    caption_and_apply(engine.run, req, events.append, CancelToken())
    assert isinstance(events[-1], JobFinished), events[-1]
    ready = [e for e in events if isinstance(e, CaptionReady)]
    assert [r.name for r in ready] == ["a.png", "b.png"]
    words = {w.strip() for w in WORDS}
    for r in ready:
        assert len(r.generated.split()) == 6 and set(r.generated.split()) <= words
    text = (ds / "a.txt").read_text(encoding="utf-8")
    assert text == f"red theme, {ready[0].generated}"
    # greedy decoding: the same image gives the same caption again (model kept loaded)
    again: list = []
    engine.run(
        CaptionRequest(
            str(ds),
            "vlm",
            str(vlm_dir),
            names=("b.png",),
            template="training",
            trigger="zxq",
            max_tokens=6,
            device="cpu",
        ),
        again.append,
        CancelToken(),
    )
    assert [e.generated for e in again if isinstance(e, CaptionReady)] == [ready[1].generated]
    engine.shutdown()


def test_stop_ends_generation_inside_an_image(vlm_dir):
    from PIL import Image

    from zitdesk.caption.describer import DescriberOptions, load_describer

    d = load_describer(vlm_dir, DescriberOptions(device="cpu"))
    img = Image.new("RGB", (90, 60), (30, 200, 30))
    opts = DescriberOptions(max_tokens=40, device="cpu")
    assert len(d.describe(img, opts).split()) == 40
    assert len(d.describe(img, opts, stop=lambda: True).split()) == 1  # checked every token
    # the chat format of the Qwen2-VL family (its template's default system turn included)
    assert d.chat_text("Describe.", 2) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|image_pad|><|image_pad|><|vision_end|>Describe.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_quantised_loading_on_a_cpu_is_one_sentence(vlm_dir, tmp_path):
    from zitdesk.caption.store import caption_and_apply
    from zitdesk.engine.studio import StudioEngine

    ds = make_colour_dataset(tmp_path / "ds", {"a.png": (200, 20, 20)})
    req = CaptionRequest(str(ds), "vlm", str(vlm_dir), quant="4bit", device="cpu")
    out = caption_and_apply(StudioEngine(device="cpu").run, req, lambda ev: None, CancelToken())
    assert out.end.kind == "model"
    assert out.end.message == (
        "4-bit and 8-bit loading needs an NVIDIA GPU; choose 'none' on a CPU."
    )
    assert not (ds / "a.txt").exists()
