"""Tiny caption models for tests, benchmarks and screenshots (never bundled).

* :func:`make_tiny_tagger`: a WD-v3-layout ONNX tagger built with the onnx helper API — input
  ``input`` ``[batch, 448, 448, 3]`` float32 BGR 0–255, output ``output`` ``[batch, n]`` sigmoid
  scores — and its ``selected_tags.csv`` (4 rating rows, general and character tags). The scores
  follow the image's mean colour (``red_theme``/``green_theme``/``blue_theme``) plus fixed
  scores for the other tags, with a little random noise in the weights.
* :func:`make_tiny_vlm`: a random Qwen2-VL of the real architecture (tiny widths) saved with its
  image processor config and the bundled Qwen tokenizer; its output head only ever picks a few
  ordinary words, so captions are readable text.
* :func:`qwen_vl_config`: Qwen2.5-VL-3B and Qwen3-VL-4B at their published sizes or tiny widths
  (bench/caption_gpu.py), and :func:`save_describer_folder`, the folder layout the describer
  loads; :func:`write_selected_tags`, the WD tag list both taggers carry.
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
    write_selected_tags(
        out, [(1000 + k, name, cat, 100 * (n - k)) for k, (name, cat, _) in enumerate(tags)]
    )
    return out


def write_selected_tags(folder: Path, rows) -> Path:
    """``selected_tags.csv`` in the WD layout: ``rows`` of ``(tag_id, name, category, count)``."""
    path = folder / "selected_tags.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["tag_id", "name", "category", "count"])
        wr.writerows(rows)
    return path


WORDS = (" photo", " red", " cat", " of", " a", " bright", " room", " blue", " small", " dog")


def make_tiny_vlm(folder: str | Path, seed: int = 0) -> Path:
    """A tiny random Qwen2-VL folder that ``zitdesk.caption.describer`` loads as a real one."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    tok = bundled_tokenizer()
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
        **vision_token_ids(tok),
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
    return save_describer_folder(
        model, folder, tok, patch_size=14, min_pixels=56 * 56, max_pixels=112 * 112
    )


def bundled_tokenizer():
    """The Qwen tokenizer bundled in ``resources/tokenizer`` (the one Qwen-VL models use)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TOKENIZER_DIR, local_files_only=True)


def vision_token_ids(tok) -> dict[str, int]:
    """The image/video token ids a Qwen-VL config names, read from the Qwen tokenizer ``tok``."""
    ids = tok.convert_tokens_to_ids
    return dict(
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )


def save_describer_folder(model, folder: str | Path, tok, patch_size: int, **processor) -> Path:
    """Save ``model`` with a Qwen-VL image processor config (``patch_size``, merge size 2, the
    ``processor`` keywords) and the tokenizer ``tok``: the folder
    ``zitdesk.caption.describer.load_describer`` reads."""
    try:  # the PIL backend (no torchvision); older transformers only have the plain class
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
            Qwen2VLImageProcessorPil as ImageProcessor,
        )
    except ImportError:
        from transformers import Qwen2VLImageProcessor as ImageProcessor

    out = Path(folder)
    model.save_pretrained(out)
    ImageProcessor(patch_size=patch_size, merge_size=2, **processor).save_pretrained(out)
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


#: Qwen-VL describers at their published sizes: name → (config class, text config, vision
#: config, patch size), and what each changes for the tiny CPU check (same architecture).
QWEN_VL_FULL: dict[str, tuple[str, dict, dict, int]] = {
    "Qwen2.5-VL-3B": (
        "Qwen2_5_VLConfig",
        dict(
            vocab_size=151936,
            hidden_size=2048,
            intermediate_size=11008,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            max_position_embeddings=128000,
            rope_theta=1000000.0,
            rms_norm_eps=1e-6,
            rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
            tie_word_embeddings=True,
        ),
        dict(
            depth=32,
            hidden_size=1280,
            intermediate_size=3420,
            num_heads=16,
            out_hidden_size=2048,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=[7, 15, 23, 31],
            in_chans=3,
            hidden_act="silu",
        ),
        14,
    ),
    "Qwen3-VL-4B": (
        "Qwen3VLConfig",
        dict(
            vocab_size=151936,
            hidden_size=2560,
            intermediate_size=9728,
            num_hidden_layers=36,
            num_attention_heads=32,
            num_key_value_heads=8,
            head_dim=128,
            max_position_embeddings=262144,
            rope_theta=5000000.0,
            rms_norm_eps=1e-6,
            rope_scaling={
                "rope_type": "default",
                "mrope_section": [24, 20, 20],
                "mrope_interleaved": True,
            },
            tie_word_embeddings=True,
        ),
        dict(
            depth=24,
            hidden_size=1024,
            intermediate_size=4096,
            num_heads=16,
            out_hidden_size=2560,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            num_position_embeddings=2304,
            deepstack_visual_indexes=[5, 11, 17],
            hidden_act="gelu_pytorch_tanh",
            in_channels=3,
        ),
        16,
    ),
}
TINY_TEXT = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2)
TINY_VISION = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64)
QWEN_VL_TINY: dict[str, tuple[dict, dict]] = {
    "Qwen2.5-VL-3B": (
        dict(
            num_attention_heads=2,
            num_key_value_heads=1,
            rope_scaling={"type": "mrope", "mrope_section": [4, 6, 6]},
        ),
        dict(fullatt_block_indexes=[1]),
    ),
    "Qwen3-VL-4B": (
        dict(
            head_dim=16,
            num_attention_heads=4,
            num_key_value_heads=2,
            rope_scaling={
                "rope_type": "default",
                "mrope_section": [2, 3, 3],
                "mrope_interleaved": True,
            },
        ),
        dict(deepstack_visual_indexes=[0]),
    ),
}


def qwen_vl_config(name: str, tiny: bool = False, tok=None):
    """``(config, patch size)`` of the describer ``name`` (a :data:`QWEN_VL_FULL` key): its
    published sizes, or with ``tiny`` the same architecture at tiny widths. ``tok``: the Qwen
    tokenizer for the vision token ids (default the bundled one)."""
    import transformers

    cls_name, text, vision, patch = QWEN_VL_FULL[name]
    text, vision = dict(text), dict(vision)
    if tiny:
        tiny_text, tiny_vision = QWEN_VL_TINY[name]
        text.update(TINY_TEXT, **tiny_text)
        vision.update(TINY_VISION, **tiny_vision)
    ids = vision_token_ids(tok if tok is not None else bundled_tokenizer())
    cfg = getattr(transformers, cls_name)(text_config=text, vision_config=vision, **ids)
    return cfg, patch
