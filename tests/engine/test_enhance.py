"""Prompt enhancer: the tiny Qwen3 encoder writes text through its tied embeddings, as a job."""

from __future__ import annotations

import pytest

from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.enhance import (
    CannotGenerate,
    EnhanceRequest,
    PromptEnhanced,
    causal_lm,
    enhance_text,
    generation_problem,
)
from zitdesk.engine.events import JobFailed, JobFinished, JobStarted, PhaseChanged
from zitdesk.engine.studio import StudioEngine


@pytest.fixture(scope="module")
def studio(tiny_diffusers):
    eng = StudioEngine(model_path=str(tiny_diffusers), device="cpu")
    yield eng
    eng.shutdown()


def test_head_shares_the_embeddings(tiny_pipe):
    te = tiny_pipe.text_encoder
    assert generation_problem(te) == ""
    lm = causal_lm(te)
    assert lm.lm_head.weight.data_ptr() == te.get_input_embeddings().weight.data_ptr()
    assert lm.model is te  # no copy of the encoder


def test_enhance_writes_text_and_is_seeded(tiny_pipe):
    req = EnhanceRequest("a fox", max_new_tokens=24, temperature=0.8, seed=3)
    a, structured = enhance_text(tiny_pipe, req)
    b, _ = enhance_text(tiny_pipe, req)
    assert isinstance(a, str) and a.strip() and not structured
    assert a == b  # same seed, same proposal


def test_structured_prompt_keeps_its_list(tiny_pipe):
    prompt = (
        "- a forest clearing at dawn\n- a girl -- red coat -- on the left\n- a wolf -- on the right"
    )
    text, structured = enhance_text(tiny_pipe, EnhanceRequest(prompt, max_new_tokens=16, seed=1))
    lines = text.splitlines()
    assert structured and len(lines) == 3 and all(ln.startswith("- ") for ln in lines)
    # The random tiny model cannot keep a list, so the character lines stay as written.
    assert lines[1:] == ["- a girl -- red coat -- on the left", "- a wolf -- on the right"]


def test_encoder_without_a_head_is_refused():
    from transformers import Qwen3Config, Qwen3Model

    from zitdesk.models.tiny import TINY_TEXT_ENCODER

    untied = Qwen3Model(Qwen3Config(**{**TINY_TEXT_ENCODER, "tie_word_embeddings": False}))
    assert "cannot generate text" in generation_problem(untied)
    with pytest.raises(CannotGenerate, match="cannot generate text"):
        causal_lm(untied)


def test_enhance_job_through_the_studio_engine(studio):
    events: list = []
    req = EnhanceRequest("a red fox in the snow", max_new_tokens=12, temperature=0.0)
    studio.run(req, events.append, CancelToken())
    assert isinstance(events[0], JobStarted) and events[0].kind == "enhance"
    assert any(isinstance(e, PhaseChanged) and e.phase == "enhancing" for e in events)
    got = [e for e in events if isinstance(e, PromptEnhanced)]
    assert len(got) == 1 and got[0].text and got[0].prompt == req.prompt
    assert isinstance(events[-1], JobFinished) and events[-1].stats["text"] == got[0].text
    assert all(e.job_id == req.job_id for e in events)


def test_enhance_job_refusals_are_sentences(studio, tiny_pipe, monkeypatch):
    events: list = []
    studio.run(EnhanceRequest("   "), events.append, CancelToken())
    assert isinstance(events[-1], JobFailed) and events[-1].kind == "request"
    assert events[-1].message.startswith("The prompt is empty")
    # an encoder that cannot write: one plain sentence, kind "model"
    events = []
    studio.run(EnhanceRequest("a fox", max_new_tokens=4), events.append, CancelToken())
    loaded = studio.generation._loaded
    monkeypatch.setattr(loaded.pipe.text_encoder.config, "tie_word_embeddings", False)
    events = []
    studio.run(EnhanceRequest("a fox", max_new_tokens=4), events.append, CancelToken())
    assert isinstance(events[-1], JobFailed) and events[-1].kind == "model"
    assert "cannot generate text" in events[-1].message


def test_enhance_with_the_encoder_streamed_in_blocks(tiny_components):
    """Group offload on the encoder (as 'keep the text encoder in RAM' does on CUDA), CPU→CPU."""
    import copy
    from types import SimpleNamespace

    import torch
    from diffusers.hooks import apply_group_offloading

    te = copy.deepcopy(tiny_components["text_encoder"])
    apply_group_offloading(
        te,
        onload_device=torch.device("cpu"),
        offload_device=torch.device("cpu"),
        offload_type="block_level",
        num_blocks_per_group=1,
    )
    pipe = SimpleNamespace(text_encoder=te, tokenizer=tiny_components["tokenizer"])
    req = EnhanceRequest("a fox", max_new_tokens=6, temperature=0.0)
    plain = SimpleNamespace(text_encoder=tiny_components["text_encoder"], tokenizer=pipe.tokenizer)
    assert enhance_text(pipe, req) == enhance_text(plain, req)
