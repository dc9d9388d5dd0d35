"""Prompt enhancer: rewrite a short prompt into a detailed one with the loaded Qwen3 encoder.

Z-Image's text encoder is Qwen3-4B without its output head (``Qwen3Model``). Qwen3-4B ties the
head to the input embeddings (``tie_word_embeddings``), so a ``Qwen3ForCausalLM`` that shares
the encoder's layers and uses the embedding matrix as its head is the whole language model: no
extra weights, no copy. An encoder whose config does not tie them cannot generate text, and
the job says so in one sentence.

Runs as an engine job on the one queue (``StudioEngine`` dispatches :class:`EnhanceRequest`):
``JobStarted`` → ``PhaseChanged`` → :class:`PromptEnhanced` (the text for the user to accept)
→ ``JobFinished`` (``stats["text"]`` holds the same text), or ``JobFailed``. ``run`` never raises.

A structured prompt (the markdown list of ``ui/structured_prompt.py``: ``- scene`` then
``- who -- attribute -- position`` lines) keeps its form: the model is asked to keep the list,
and when its answer does not, only the scene line is enriched and the character lines are kept
as they were.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from zitdesk.engine.cancel import Cancelled, CancelToken
from zitdesk.engine.events import (
    EngineEvent,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobStarted,
    PhaseChanged,
)
from zitdesk.engine.protocol import Emit
from zitdesk.engine.requests import GenerateRequest, MemoryMode, new_job_id
from zitdesk.errors import ModelError, RequestError, ZitdeskError

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 2000
MAX_NEW_TOKENS = 512

SYSTEM = (
    "You improve prompts for a text-to-image model. Rewrite the user's prompt as one detailed "
    "description of a single image: subject, appearance, setting, lighting, composition, style "
    "and mood. Keep everything the user asked for and do not contradict it; invent only "
    "plausible details. Answer with the prompt only, no preamble, at most about 120 words."
)
SYSTEM_STRUCTURED = (
    "You improve prompts for a text-to-image model. The prompt is a markdown list: the first "
    "line '- ' describes the scene, each further line '- who -- attribute -- position' one "
    "character. Answer with the same list, the same number of lines in the same order, each "
    "line starting with '- ' and keeping its ' -- ' parts; make the scene line detailed "
    "(setting, lighting, style, mood) and add a few fitting attributes to each character. "
    "Answer with the list only."
)


class CannotGenerate(ModelError):
    """The loaded text encoder has no way to produce text (no tied or separate output head)."""


@dataclass(frozen=True)
class EnhanceRequest:
    """Rewrite ``prompt`` (greedy when ``temperature`` is 0, else sampled with ``seed``)."""

    prompt: str
    model_path: str = ""
    memory_mode: MemoryMode = MemoryMode.GPU
    max_new_tokens: int = 200
    temperature: float = 0.7
    seed: int = 0
    job_id: str = field(default_factory=lambda: new_job_id("enhance"))

    def validate(self) -> EnhanceRequest:
        if not isinstance(self.prompt, str) or not self.prompt.strip():
            raise RequestError("The prompt is empty; write a few words to enhance.")
        if len(self.prompt) > MAX_PROMPT_CHARS:
            raise RequestError(
                f"The prompt is already {len(self.prompt):,} characters long; enhancing is for "
                f"short prompts (at most {MAX_PROMPT_CHARS:,})."
            )
        n = self.max_new_tokens
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_NEW_TOKENS:
            raise RequestError(f"The enhanced prompt length must be 1–{MAX_NEW_TOKENS} tokens.")
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 2:
            raise RequestError("The enhancer's temperature must be between 0 and 2.")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise RequestError("The enhancer's seed must be a whole number of 0 or more.")
        return self


@dataclass(frozen=True)
class PromptEnhanced(EngineEvent):
    """The rewritten prompt (not applied: the user accepts or discards it)."""

    prompt: str = ""  # what was asked
    text: str = ""  # the proposal
    structured: bool = False  # the markdown list form was kept


# -- the language model ------------------------------------------------------------------------


def generation_problem(text_encoder: Any) -> str:
    """ "" when ``text_encoder`` can generate text through its tied embeddings, else the one
    sentence saying why not."""
    cfg = getattr(text_encoder, "config", None)
    if cfg is None or getattr(cfg, "model_type", "") not in ("qwen3", "qwen2"):
        return "The loaded text encoder is not a Qwen3 model, so it cannot write prompts."
    if hasattr(text_encoder, "lm_head"):
        return ""
    if not getattr(cfg, "tie_word_embeddings", False):
        return (
            "The loaded text encoder cannot generate text: its weights have no output head and "
            "its configuration does not tie one to the embeddings (Qwen3-4B does)."
        )
    emb = (
        text_encoder.get_input_embeddings()
        if hasattr(text_encoder, "get_input_embeddings")
        else None
    )
    weight = getattr(emb, "weight", None)
    if weight is None or getattr(weight, "is_meta", False):
        return "The loaded text encoder's embeddings are not in memory, so it cannot write prompts."
    return ""


def causal_lm(text_encoder: Any) -> Any:
    """A ``Qwen3ForCausalLM`` sharing ``text_encoder``'s weights (head = the embeddings)."""
    problem = generation_problem(text_encoder)
    if problem:
        raise CannotGenerate(problem)
    if hasattr(text_encoder, "lm_head"):
        return text_encoder
    import torch
    from transformers import Qwen3ForCausalLM

    with torch.device("meta"):
        lm = Qwen3ForCausalLM(text_encoder.config)
    lm.model = text_encoder
    lm.lm_head = _TiedHead(text_encoder.get_input_embeddings())  # shared, not copied
    return lm.eval()


def _tied_head_class() -> Any:
    import torch

    class TiedHead(torch.nn.Module):
        """The output head = the input embedding matrix, used where it lives: with the text
        encoder streamed from RAM (group offload) the embeddings may sit on the CPU after the
        encoder's forward, so hidden states go to the weight and the logits come back."""

        def __init__(self, embedding: Any) -> None:
            super().__init__()
            self._embedding = [embedding]  # a plain list: the weight keeps its one owner

        @property
        def weight(self) -> Any:
            return self._embedding[0].weight

        def forward(self, hidden: Any) -> Any:
            w = self.weight
            logits = torch.nn.functional.linear(hidden.to(w.device, w.dtype), w)
            return logits.to(hidden.device)

    return TiedHead


def _TiedHead(embedding: Any) -> Any:  # noqa: N802 - builds the module (torch imported lazily)
    return _tied_head_class()(embedding)


def _is_structured(text: str) -> bool:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return bool(lines) and all(ln.startswith("- ") for ln in lines)


_THINK = re.compile(r"<think>.*?(</think>|$)", re.S)


def _clean(text: str) -> str:
    """The model's answer without a think block, control characters or stray quotes; any
    line break becomes ``\n``."""
    text = _THINK.sub("", text)
    lines = []
    for line in text.splitlines():
        kept = "".join(ch for ch in line if ch != "\ufffd" and unicodedata.category(ch)[0] != "C")
        lines.append(" ".join(kept.split()))
    return "\n".join(ln for ln in lines if ln).strip().strip('"').strip()


def _generate(lm: Any, tokenizer: Any, system: str, prompt: str, request: EnhanceRequest) -> str:
    import torch

    messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    enc = tokenizer(text, return_tensors="pt")
    weight = lm.get_input_embeddings().weight
    device = weight.device
    ids = enc["input_ids"].to(device)
    mask = enc["attention_mask"].to(device)
    vocab = int(weight.shape[0])
    known = len(tokenizer)
    suppress = list(range(known, vocab)) if known < vocab else None  # rows no token names
    sample = float(request.temperature) > 0
    if sample:
        torch.manual_seed(request.seed)
    eos = [
        t
        for t in (
            tokenizer.convert_tokens_to_ids("<|im_end|>"),
            getattr(tokenizer, "eos_token_id", None),
        )
        if isinstance(t, int) and t >= 0
    ]
    with torch.inference_mode():
        out = lm.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=request.max_new_tokens,
            do_sample=sample,
            temperature=float(request.temperature) if sample else None,
            top_p=0.9 if sample else None,
            top_k=None,
            suppress_tokens=suppress,
            eos_token_id=eos or None,
            pad_token_id=eos[0] if eos else 0,
        )
    new = out[0, ids.shape[1] :]
    return _clean(tokenizer.decode(new, skip_special_tokens=True))


def enhance_text(pipe: Any, request: EnhanceRequest) -> tuple[str, bool]:
    """(proposal, structured) for ``request.prompt`` with ``pipe``'s text encoder and tokenizer.

    Raises :class:`CannotGenerate` when the encoder cannot write text."""
    lm = causal_lm(pipe.text_encoder)
    tok = pipe.tokenizer
    prompt = request.prompt.strip()
    if not _is_structured(prompt):
        return _generate(lm, tok, SYSTEM, prompt, request) or prompt, False
    lines = [ln.strip() for ln in prompt.splitlines() if ln.strip()]
    answer = _generate(lm, tok, SYSTEM_STRUCTURED, prompt, request)
    got = [ln.strip() for ln in answer.splitlines() if ln.strip()]
    if len(got) == len(lines) and _is_structured(answer):
        return "\n".join(got), True
    # The answer lost the list: enrich the scene only, keep the character lines as written.
    scene = " ".join(_generate(lm, tok, SYSTEM, lines[0][2:], request).split())
    return "\n".join(["- " + (scene or lines[0][2:]), *lines[1:]]), True


# -- the job -----------------------------------------------------------------------------------


def run_enhance(generation: Any, request: EnhanceRequest, emit: Emit, cancel: CancelToken) -> None:
    """One enhance job on ``generation`` (a :class:`~zitdesk.engine.generate.GenerationEngine`:
    its loaded pipeline is used, or loaded for ``request.model_path``). Never raises."""
    job = request.job_id
    t0 = time.perf_counter()
    emit(JobStarted(job, kind="enhance", total_steps=0))
    try:
        request.validate()
        carrier = GenerateRequest(
            prompt=request.prompt,
            model_path=request.model_path,
            memory_mode=request.memory_mode,
            job_id=job,  # the loading phases belong to this job
        )
        loaded = generation._loaded
        if loaded is None or (
            request.model_path
            and str(loaded.source.root) != str(generation._resolve_source(carrier).root)
        ):
            loaded = generation._ensure_pipeline(carrier, emit, cancel)
        cancel.raise_if_cancelled()
        emit(PhaseChanged(job, phase="enhancing", detail="Writing a detailed prompt"))
        text, structured = enhance_text(loaded.pipe, request)
        cancel.raise_if_cancelled()
        emit(PromptEnhanced(job, prompt=request.prompt, text=text, structured=structured))
        emit(
            JobFinished(
                job,
                paths=(),
                elapsed_s=time.perf_counter() - t0,
                stats={"text": text, "structured": structured},
            )
        )
    except Cancelled:
        emit(JobCancelled(job, paths=()))
    except ZitdeskError as exc:
        kind = "request" if isinstance(exc, RequestError) else "model"
        emit(JobFailed(job, kind=kind, message=str(exc), traceback=traceback.format_exc()))
    except Exception as exc:  # noqa: BLE001 - every failure becomes an event
        from zitdesk.errors import user_message

        log.error("prompt enhancing failed:\n%s", traceback.format_exc())
        emit(
            JobFailed(
                job, kind="error", message=user_message(exc), traceback=traceback.format_exc()
            )
        )
