"""Tiny caption models for tests, benchmarks and screenshots (never bundled).

* :func:`make_tiny_tagger`: a WD-v3-layout ONNX tagger built with the onnx helper API — input
  ``input`` ``[batch, 448, 448, 3]`` float32 BGR 0–255, output ``output`` ``[batch, n]`` sigmoid
  scores — and its ``selected_tags.csv`` (4 rating rows, general and character tags). The scores
  follow the image's mean colour (``red_theme``/``green_theme``/``blue_theme``) plus fixed
  scores for the other tags, with a little random noise in the weights.
* :func:`make_tiny_vlm`: a random Qwen2-VL of the real architecture (tiny widths) saved with its
  image processor config and the bundled Qwen tokenizer; its output head only ever picks a few
  ordinary words, so captions are readable text.
"""

from __future__ import annotations

import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER_DIR = ROOT / "resources" / "tokenizer"

# name, category, fixed score (None: follows a colour channel index in BGR)
TAGS: list[tuple[str, int, float | int]] = [
    ("general", 9, 0.9),
    ("sensitive", 9, 0.1),
    ("questionable", 9, 0.05),
    ("explicit", 9, 0.01),
    ("red_theme", 0, 2),  # R is channel 2 in BGR
    ("green_theme", 0, 1),
    ("blue_theme", 0, 0),
    ("simple_background", 0, 0.7),
    ("no_humans", 0, 0.5),
    ("^_^", 0, 0.4),
    ("1girl", 0, 0.2),
    ("hatsune_miku", 4, 0.9),
    ("kagamine_rin", 4, 0.6),
]


def make_tiny_tagger(
    folder: str | Path, seed: int = 0, side: int = 448, tags: list | None = None
) -> Path:
    """``tags``: ``[(name, category, score)]`` instead of :data:`TAGS` (a float score is fixed,
    an int is the BGR channel the score follows)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tags = TAGS if tags is None else tags
    n = len(tags)
    w = rng.normal(0, 1e-4, size=(3, n)).astype(np.float32)
    b = np.zeros(n, dtype=np.float32)
    for k, (_, _, score) in enumerate(tags):
        if isinstance(score, int):  # a colour channel: high when that channel is bright
            w[score, k] = 1 / 16
            b[k] = -8.0
        else:
            b[k] = float(np.log(score / (1 - score)))
    nodes = [
        helper.make_node("ReduceMean", ["input", "axes"], ["mean"], keepdims=0),
        helper.make_node("MatMul", ["mean", "W"], ["logits0"]),
        helper.make_node("Add", ["logits0", "B"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_wd_tagger",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", side, side, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", n])],
        initializer=[
            numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes"),
            numpy_helper.from_array(w, "W"),
            numpy_helper.from_array(b, "B"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(out / "model.onnx"))
    with open(out / "selected_tags.csv", "w", encoding="utf-8", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["tag_id", "name", "category", "count"])
        for k, (name, cat, _) in enumerate(tags):
            wr.writerow([1000 + k, name, cat, 100 * (n - k)])
    return out


WORDS = (" photo", " red", " cat", " of", " a", " bright", " room", " blue", " small", " dog")


def make_tiny_vlm(folder: str | Path, seed: int = 0) -> Path:
    """A tiny random Qwen2-VL folder that ``zitdesk.caption.describer`` loads as a real one."""
    import torch
    from transformers import AutoTokenizer, Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    out = Path(folder)
    tok = AutoTokenizer.from_pretrained(TOKENIZER_DIR, local_files_only=True)
    ids = tok.convert_tokens_to_ids
    cfg = Qwen2VLConfig(
        text_config=dict(
            vocab_size=151936,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=4096,
            rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
            tie_word_embeddings=False,
        ),
        vision_config=dict(
            depth=2,
            embed_dim=32,
            hidden_size=32,
            num_heads=2,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            in_channels=3,
        ),
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(cfg).eval()
    word_ids = [tok.encode(w_)[0] for w_ in WORDS]
    with torch.no_grad():
        head = model.lm_head.weight
        rows = head[word_ids[: len(word_ids) // 2]].clone()
        head.zero_()
        # each direction and its opposite belong to a word: the best logit is always a word
        for k, r in enumerate(rows):
            head[word_ids[2 * k]] = r
            head[word_ids[2 * k + 1]] = -r
    model.save_pretrained(out)
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def make_colour_dataset(folder: str | Path, colours: dict[str, tuple[int, int, int]]) -> Path:
    """Square 64² PNG images named by ``colours`` (name → RGB) in ``folder``."""
    from PIL import Image

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for name, rgb in colours.items():
        Image.new("RGB", (64, 64), rgb).save(out / name)
    return out
