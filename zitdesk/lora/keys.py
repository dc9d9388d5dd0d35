"""LoRA key names: parsing, dialect and architecture detection from tensor names (torch-free).

Everything in this module works from tensor *names* and *shapes* only, so a LoRA library can tell
"Z-Image LoRA, kohya dialect" for hundreds of files in milliseconds and grey out an SDXL file
with the reason instead of hiding it.

Z-Image LoRAs come in several key dialects (engine notes §7). All of them name the same modules of
diffusers' ``ZImageTransformer2DModel`` (engine notes §6), sometimes with the names of the original
Z-Image tree (fused ``attention.qkv``, ``attention.out``, ``x_embedder``, ``final_layer``):

================  ==================================================================  ==========
dialect           example key                                                         scale
================  ==================================================================  ==========
``aitoolkit``     ``diffusion_model.layers.0.attention.to_q.lora_A.weight``           1 (or .alpha)
``kohya``         ``lora_unet_layers_0_attention_to_q.lora_down.weight`` + ``.alpha`` alpha/rank
``dot``           ``layers.0.attention.to.q.lora.down.weight`` (+ redundant qkv/out)  alpha/rank
``diffusers``     ``transformer.layers.0.attention.to_q.lora_A.weight``               metadata
``peft``          ``layers.0.attention.to_q.lora_A.default.weight``                   alpha/rank
``lokr``          ``diffusion_model.layers.0.attention.to_q.lokr_w1`` / ``lokr_w2``   LyCORIS
``loha``          ``lycoris_layers_0_attention_to_q.hada_w1_a`` ...                   LyCORIS
================  ==================================================================  ==========

Module names are resolved against the module grammar of :mod:`zitdesk.models.zimage_tree` in a
separator-insensitive form, so kohya's ``_`` joins, the dot format's ``to.q`` and diffusers' dotted
names all resolve the same way without string surgery. What a whole file holds (rank, alpha,
triggers, coverage) is :mod:`zitdesk.lora.inspect`. Sources for the dialects: diffusers 0.42.1
``loaders/lora_conversion_utils.py`` (facts only), ``kohya-ss/musubi-tuner:networks/lora_zimage.py``.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable, Mapping

from zitdesk.models.zimage_tree import flat_name, resolve_module

__all__ = [
    "ARCH_LABELS",
    "FOREIGN_ARCHS",
    "SUPPORTED_PARTS",
    "detect_arch",
    "detect_dialect",
    "foreign_message",
    "normalize_key",
    "split_key",
]

# ----------------------------------------------------------------------------------------------
# Key parsing
# ----------------------------------------------------------------------------------------------

_PART_RX = re.compile(
    r"^(?P<mod>.+?)\.(?P<part>"
    r"lora_[AB](?:\.[^.]+)?\.weight|lora_(?:down|up)\.weight|lora\.(?:down|up)\.weight|"
    r"lora_mid\.weight|lora_B(?:\.[^.]+)?\.bias|alpha|dora_scale|"
    r"lora_magnitude_vector(?:\.[^.]+)?(?:\.weight)?|"
    r"lokr_w[12](?:_[ab])?|lokr_t[12]|hada_w[12]_[ab]|hada_t[12]|diff|diff_b)$"
)

#: Parts zitdesk turns into LoRA pairs. Everything else that resolves to a module is recorded in
#: ``LoraInfo.unsupported_keys`` (DoRA magnitudes, conv Tucker cores, bias deltas).
SUPPORTED_PARTS = frozenset(
    {
        "lora_A",
        "lora_B",
        "alpha",
        "lokr_w1",
        "lokr_w1_a",
        "lokr_w1_b",
        "lokr_w2",
        "lokr_w2_a",
        "lokr_w2_b",
        "hada_w1_a",
        "hada_w1_b",
        "hada_w2_a",
        "hada_w2_b",
        "diff",
    }
)

# File-level prefixes, stripped repeatedly (``base_model.model.transformer.`` etc.).
_PREFIXES = (
    "base_model.model.",
    "model.diffusion_model.",
    "diffusion_model.",
    "transformer.",
    "unet.",
    "lora_unet_",
    "lycoris_",
    "lora_transformer_",
)


@functools.lru_cache(maxsize=65536)
def split_key(key: str) -> tuple[str, str] | None:
    """``key`` → ``(module path without file prefix, part)`` or None when the suffix is unknown.

    The part is canonical: ``lora_A`` (also ``lora_down`` / ``lora.down`` / ``lora_A.<adapter>``),
    ``lora_B``, ``alpha``, ``lokr_w1`` … ``lokr_t2``, ``hada_w1_a`` …, ``dora_scale``, ``diff``,
    ``diff_b``, ``lora_mid``, ``lora_B_bias``.
    """
    m = _PART_RX.match(key)
    if m is None:
        return None
    mod, part = m.group("mod"), m.group("part")
    if part.startswith(("lora_A", "lora_down", "lora.down")):
        part = "lora_A"
    elif part.startswith("lora_B") and part.endswith(".bias"):
        part = "lora_B_bias"
    elif part.startswith(("lora_B", "lora_up", "lora.up")):
        part = "lora_B"
    elif part.startswith("lora_magnitude_vector"):
        part = "dora_scale"
    elif part == "lora_mid.weight":
        part = "lora_mid"
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if mod.startswith(p) and len(mod) > len(p):
                mod = mod[len(p) :]
                changed = True
    return mod, part


@functools.lru_cache(maxsize=65536)
def normalize_key(key: str) -> tuple[str, str] | None:
    """``key`` in any Z-Image dialect → ``(diffusers module name, part)``, or None when unknown.

    Examples: ``lora_unet_layers_3_attention_to_out_0.lora_down.weight`` →
    ``("layers.3.attention.to_out.0", "lora_A")``; ``diffusion_model.layers.3.attention.qkv.alpha``
    → ``("layers.3.attention.<qkv>", "alpha")`` (see :data:`zitdesk.models.zimage_tree.QKV_MARKER`).
    """
    s = split_key(key)
    if s is None:
        return None
    r = resolve_module(s[0])
    if r is None:
        return None
    return r[0], s[1]


# ----------------------------------------------------------------------------------------------
# Dialect
# ----------------------------------------------------------------------------------------------

_LORA_PAIR_RX = re.compile(r"\.(lora_[AB]|lora_(down|up)|lora\.(down|up))(\.[^.]+)?\.weight$")


@functools.lru_cache(maxsize=65536)
def _key_dialect(key: str) -> str | None:
    if ".lokr_" in key:
        return "lokr"
    if ".hada_" in key:
        return "loha"
    if key.endswith(".diff"):
        return "full"  # LyCORIS full-matrix deltas
    m = _LORA_PAIR_RX.search(key)
    if m is None:
        return None
    kind = m.group(1)
    adapter = m.group(4)
    if kind.startswith("lora."):
        return "dot"
    if key.startswith(("lora_unet_", "lycoris_", "lora_te")):
        return "kohya"
    if adapter is not None or key.startswith("base_model.model."):
        return "peft"
    if kind.startswith("lora_down") or kind.startswith("lora_up"):
        return "kohya"  # lora_down/up on dotted names (ComfyUI-style kohya)
    if key.startswith(("diffusion_model.", "model.diffusion_model.")):
        return "aitoolkit"
    if key.startswith("transformer."):
        return "diffusers"
    return "peft"  # bare lora_A/B without prefix: get_peft_model_state_dict output


def detect_dialect(keys: Iterable[str]) -> str:
    """One of ``aitoolkit``, ``kohya``, ``dot``, ``diffusers``, ``peft``, ``lokr``, ``loha``,
    ``full`` (LyCORIS ``.diff`` deltas), ``mixed`` (several of those in one file) or ``unknown`` (no LoRA keys)."""
    found = Counter(d for k in keys if (d := _key_dialect(k)) is not None)
    if not found:
        return "unknown"
    if len(found) == 1:
        return next(iter(found))
    return "mixed"


# ----------------------------------------------------------------------------------------------
# Architecture
# ----------------------------------------------------------------------------------------------

ARCH_LABELS = {
    "zimage": "Z-Image",
    "sdxl": "SDXL",
    "sd15": "Stable Diffusion 1.5",
    "sd2": "Stable Diffusion 2",
    "flux": "Flux",
    "qwen_image": "Qwen-Image",
    "sd3": "Stable Diffusion 3",
    "wan": "Wan",
    "hunyuan": "HunyuanVideo",
    "lumina2": "Lumina 2",
    "unknown": "unknown",
}
_ARTICLE = {"sdxl": "an"}
FOREIGN_ARCHS = frozenset(ARCH_LABELS) - {"zimage", "unknown"}

# Patterns on the flat (``_``-joined, lower-case) module path with the file prefix removed.
_FOREIGN_RX: dict[str, re.Pattern[str]] = {
    "sdxl": re.compile(
        r"^(input_blocks|output_blocks|middle_block)_\d"
        r"|^lora_te[12]_|^text_encoder_2_"
        r"|^(down|up)_blocks_\d+_attentions_\d+_transformer_blocks_[1-9]"
    ),
    "sd15": re.compile(
        r"^(down|up)_blocks_\d+_attentions_\d+_transformer_blocks_0_|^mid_block_attentions"
        r"|^lora_te_text_model_|^text_encoder_text_model_"
    ),
    "flux": re.compile(
        r"^double_blocks_\d+_(img|txt)_(attn|mlp|mod)|^single_blocks_\d+_(linear[12]|modulation)"
        r"|^single_transformer_blocks_\d+_|^(time_in|vector_in|guidance_in)_"
    ),
    "qwen_image": re.compile(r"^transformer_blocks_\d+_(img|txt)_(mlp|mod)"),
    "sd3": re.compile(
        r"^joint_blocks_\d+_|^transformer_blocks_\d+_(attn_add_[qkv]_proj|ff_context|norm1_context)"
    ),
    "wan": re.compile(r"^blocks_\d+_(self_attn|cross_attn|ffn|attn[12]|modulation)"),
    "hunyuan": re.compile(
        r"token_refiner|^double_blocks_\d+_(img|txt)_mod_linear|^single_blocks_\d+_modulation_linear"
    ),
    "lumina2": re.compile(
        r"^layers_\d+_(attn_to_|feed_forward_linear_|norm1_linear|adaln_modulation_1)"
        r"|^(noise|context)_refiner_\d+_(attn_to_|adaln_modulation_1)"
    ),
}


def detect_arch(keys: Iterable[str], shapes: Mapping[str, tuple[int, ...]] | None = None) -> str:
    """Which model family a LoRA's keys belong to.

    Returns ``zimage``, ``sdxl``, ``sd15``, ``sd2``, ``flux``, ``qwen_image``, ``sd3``, ``wan``,
    ``hunyuan``, ``lumina2`` or ``unknown``. ``shapes`` (key → shape) refines the SD1/SD2/SDXL
    split and tells Lumina 2 (dim 2304) from Z-Image (dim 3840) when only original-tree names
    (``attention.qkv``/``out``, ``feed_forward.w1``) are present.
    """
    keys = list(keys)
    shapes = shapes or {}
    zimage = 0
    zimage_only = 0
    foreign: Counter[str] = Counter()
    for k in keys:
        s = split_key(k)
        if s is None:
            continue
        body = flat_name(s[0])
        r = resolve_module(s[0])
        if r is not None:
            zimage += 1
            if not r[1] and (
                "attention_to_" in body
                or "adaln_modulation_0" in body
                or body.startswith(("all_x_embedder", "all_final_layer"))
            ):
                zimage_only += 1
            continue
        for arch, rx in _FOREIGN_RX.items():
            if rx.search(body):
                foreign[arch] += 1
    if foreign["hunyuan"]:  # HunyuanVideo shares Flux's block names and diffusers' add_q_proj
        foreign["hunyuan"] += foreign.pop("flux", 0)
        foreign.pop("sd3", None)
    if foreign["qwen_image"]:
        foreign.pop("sd3", None)  # Qwen-Image shares add_q_proj/ff_context-style names with SD3
    if foreign["flux"] and foreign["sd3"]:
        foreign.pop("sd3")  # diffusers Flux has add_q_proj too; single blocks decide
    if foreign["sdxl"] and foreign["sd15"]:
        # te1/te2 or multi-block transformers decide for SDXL; the plain SD layout is shared.
        foreign["sdxl"] += foreign.pop("sd15")
    sd_like = next((a for a in ("sdxl", "sd15") if foreign[a]), None)
    if sd_like is not None:
        ctx = _cross_attention_dim(shapes)
        if ctx == 768:
            foreign = Counter({"sd15": foreign[sd_like]})
        elif ctx == 1024:
            foreign = Counter({"sd2": foreign[sd_like]})
        elif ctx == 2048:
            foreign = Counter({"sdxl": foreign[sd_like]})
    if foreign["lumina2"] and not zimage_only:
        return "lumina2"
    if zimage and not zimage_only and _model_dim(shapes) == 2304:
        return "lumina2"
    foreign.pop("lumina2", None)
    best = foreign.most_common(1)
    if zimage and (not best or zimage >= best[0][1]):
        return "zimage"
    if best and best[0][1] > 0:
        return best[0][0]
    return "unknown"


def _cross_attention_dim(shapes: Mapping[str, tuple[int, ...]]) -> int | None:
    for k, shp in shapes.items():
        fk = flat_name(k)
        if "attn2_to_k" in fk and ("lora_down" in fk or "lora_a" in fk) and len(shp) >= 2:
            return int(shp[1])
    return None


def _model_dim(shapes: Mapping[str, tuple[int, ...]]) -> int | None:
    for k, shp in shapes.items():
        s = split_key(k)
        if s is None or s[1] != "lora_A" or len(shp) < 2:
            continue
        r = resolve_module(s[0])
        if r and ("attention" in r[0] or r[0].endswith(("w1", "w3"))):
            return int(shp[1])
    return None


def foreign_message(arch: str) -> str:
    """The plain sentence for a LoRA of another model family."""
    label = ARCH_LABELS.get(arch, arch)
    return f"This is {_ARTICLE.get(arch, 'a')} {label} LoRA; it cannot be used with Z-Image."
