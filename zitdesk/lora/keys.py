"""LoRA key names: architecture, dialect and module detection from a safetensors header (torch-free).

Everything in this module works from tensor *names* and *shapes* only, so a LoRA library can show
"Z-Image LoRA, kohya dialect, rank 32, loads 240/240 modules" for hundreds of files in
milliseconds and grey out an SDXL file with the reason instead of hiding it.

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

Module names are resolved against a *grammar* of the real module names (block prefix ``layers`` /
``noise_refiner`` / ``context_refiner`` + index + one of the known in-block suffixes, or one of
the known top-level modules) in a separator-insensitive form, so kohya's ``_`` joins, the dot
format's ``to.q`` and diffusers' dotted names all resolve the same way without string surgery.
Sources for the names: diffusers 0.42.1 ``models/transformers/transformer_z_image.py`` and
``loaders/lora_conversion_utils.py`` (facts only), ``kohya-ss/musubi-tuner:networks/lora_zimage.py``.
"""

from __future__ import annotations

import functools
import json
import math
import re
import struct
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from zitdesk.errors import FileFormatError, LoraError
from zitdesk.st_header import SafetensorsHeader, read_header

# ----------------------------------------------------------------------------------------------
# Z-Image module grammar
# ----------------------------------------------------------------------------------------------

#: Marker used in place of ``to_q``/``to_k``/``to_v`` for a fused ``attention.qkv`` LoRA module
#: (original Z-Image tree). :func:`expand_module` turns it into the three diffusers modules.
QKV_MARKER = "<qkv>"

BLOCK_PREFIXES = ("layers", "noise_refiner", "context_refiner")

#: In-block diffusers module suffixes that are LoRA targets (engine notes §6).
BLOCK_TARGETS = (
    "attention.to_q", "attention.to_k", "attention.to_v", "attention.to_out.0",
    "feed_forward.w1", "feed_forward.w2", "feed_forward.w3", "adaLN_modulation.0",
)
#: Top-level diffusers modules that are LoRA targets.
TOP_TARGETS = (
    "all_x_embedder.2-1", "cap_embedder.1", "t_embedder.mlp.0", "t_embedder.mlp.2",
    "all_final_layer.2-1.linear", "all_final_layer.2-1.adaLN_modulation.1",
)

# Aliases from the original Z-Image tree (ComfyUI single files, fused exports) → diffusers names.
_BLOCK_ALIASES = {
    "attention.qkv": f"attention.{QKV_MARKER}",
    "attention.out": "attention.to_out.0",
    "attention.to_out": "attention.to_out.0",
}
_TOP_ALIASES = {
    "x_embedder": "all_x_embedder.2-1",
    "final_layer.linear": "all_final_layer.2-1.linear",
    "final_layer.adaLN_modulation.1": "all_final_layer.2-1.adaLN_modulation.1",
}


def _flat(name: str) -> str:
    """Separator-insensitive form: lower case, ``.`` → ``_`` (kohya's own transformation)."""
    return name.replace(".", "_").lower()


_BLOCK_FLAT: dict[str, str] = {_flat(s): s for s in BLOCK_TARGETS}
_BLOCK_FLAT.update({_flat(a): s for a, s in _BLOCK_ALIASES.items()})
_TOP_FLAT: dict[str, str] = {_flat(s): s for s in TOP_TARGETS}
_TOP_FLAT.update({_flat(a): s for a, s in _TOP_ALIASES.items()})
_CANONICAL_FLAT = set(_flat(s) for s in BLOCK_TARGETS) | set(_flat(s) for s in TOP_TARGETS)
_BLOCK_RX = re.compile(r"^(" + "|".join(BLOCK_PREFIXES) + r")_(\d+)_(.+)$")

# Real Z-Image Turbo sizes (engine notes §1/§6).
FULL_DIM = 3840
FULL_FFN = 10240
FULL_LAYERS = 30
FULL_REFINERS = 2
FULL_ADALN_IN = 256
FULL_CAP_DIM = 2560
FULL_T_HIDDEN = 1024
FULL_PATCH_IN = 64  # 2 × 2 × 16 latent channels


@functools.lru_cache(maxsize=65536)
def resolve_module(name: str) -> tuple[str, bool] | None:
    """Resolve a module path in any dialect to ``(diffusers module name, is_alias)``.

    ``name`` has its file prefix (``diffusion_model.``, ``lora_unet_`` …) already removed.
    ``is_alias`` is True when the name used an original-tree alias (``qkv``, ``out``,
    ``x_embedder``) rather than the diffusers name; it decides which of two redundant keys wins.
    Returns None for anything that is not a Z-Image LoRA target.
    """
    flat = _flat(name)
    if flat in _TOP_FLAT:
        canon = _TOP_FLAT[flat]
        return canon, flat not in _CANONICAL_FLAT
    m = _BLOCK_RX.match(flat)
    if m is None:
        return None
    suffix = _BLOCK_FLAT.get(m.group(3))
    if suffix is None:
        return None
    return f"{m.group(1)}.{int(m.group(2))}.{suffix}", m.group(3) not in _CANONICAL_FLAT


def expand_module(module: str) -> list[str]:
    """``layers.0.attention.<qkv>`` → the three split modules; any other name → ``[name]``."""
    if module.endswith("." + QKV_MARKER):
        base = module[: -len(QKV_MARKER)]
        return [base + "to_q", base + "to_k", base + "to_v"]
    return [module]


def full_size_linear_shapes(n_layers: int = FULL_LAYERS, n_refiners: int = FULL_REFINERS) -> dict[
        str, tuple[int, int]]:
    """``{module: (out_features, in_features)}`` of every Linear in the real Z-Image Turbo DiT.

    Computed from the known architecture (engine notes §1, §6) so the CLI can report coverage
    without loading 12 GB. 30 layers + 2 noise + 2 context refiners: 276 modules.
    """
    d, f = FULL_DIM, FULL_FFN
    block = {
        "attention.to_q": (d, d), "attention.to_k": (d, d), "attention.to_v": (d, d),
        "attention.to_out.0": (d, d),
        "feed_forward.w1": (f, d), "feed_forward.w3": (f, d), "feed_forward.w2": (d, f),
    }
    out: dict[str, tuple[int, int]] = {}
    for prefix, n, modulated in (("layers", n_layers, True), ("noise_refiner", n_refiners, True),
                                 ("context_refiner", n_refiners, False)):
        for i in range(n):
            for s, shp in block.items():
                out[f"{prefix}.{i}.{s}"] = shp
            if modulated:  # the context refiner has no adaLN
                out[f"{prefix}.{i}.adaLN_modulation.0"] = (4 * d, min(d, FULL_ADALN_IN))
    out.update({
        "all_x_embedder.2-1": (d, FULL_PATCH_IN),
        "cap_embedder.1": (d, FULL_CAP_DIM),
        "t_embedder.mlp.0": (FULL_T_HIDDEN, FULL_ADALN_IN),
        "t_embedder.mlp.2": (min(d, FULL_ADALN_IN), FULL_T_HIDDEN),
        "all_final_layer.2-1.linear": (FULL_PATCH_IN, d),
        "all_final_layer.2-1.adaLN_modulation.1": (d, min(d, FULL_ADALN_IN)),
    })
    return out


def full_size_linear_names() -> set[str]:
    """The Linear module names of the real Z-Image Turbo transformer (no torch, no model)."""
    return set(full_size_linear_shapes())


def expected_targets(model_module_names: Iterable[str]) -> set[str]:
    """The model's modules a Z-Image LoRA can target (Linear names that fit the grammar).

    Drops Linear layers that are not LoRA targets in any known trainer and keeps the names
    canonical; the result is the denominator of "covers N of M model modules".
    """
    out = set()
    for name in model_module_names:
        r = resolve_module(name)
        if r is not None and r[0] == name:
            out.add(name)
    return out


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
SUPPORTED_PARTS = frozenset({
    "lora_A", "lora_B", "alpha", "lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a",
    "lokr_w2_b", "hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "diff",
})

# File-level prefixes, stripped repeatedly (``base_model.model.transformer.`` etc.).
_PREFIXES = (
    "base_model.model.", "model.diffusion_model.", "diffusion_model.", "transformer.", "unet.",
    "lora_unet_", "lycoris_", "lora_transformer_",
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
                mod = mod[len(p):]
                changed = True
    return mod, part


@functools.lru_cache(maxsize=65536)
def normalize_key(key: str) -> tuple[str, str] | None:
    """``key`` in any Z-Image dialect → ``(diffusers module name, part)``, or None when unknown.

    Examples: ``lora_unet_layers_3_attention_to_out_0.lora_down.weight`` →
    ``("layers.3.attention.to_out.0", "lora_A")``; ``diffusion_model.layers.3.attention.qkv.alpha``
    → ``("layers.3.attention.<qkv>", "alpha")`` (see :data:`QKV_MARKER`, :func:`expand_module`).
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
    "zimage": "Z-Image", "sdxl": "SDXL", "sd15": "Stable Diffusion 1.5", "sd2": "Stable Diffusion 2",
    "flux": "Flux", "qwen_image": "Qwen-Image", "sd3": "Stable Diffusion 3", "wan": "Wan",
    "hunyuan": "HunyuanVideo", "lumina2": "Lumina 2", "unknown": "unknown",
}
_ARTICLE = {"sdxl": "an"}
FOREIGN_ARCHS = frozenset(ARCH_LABELS) - {"zimage", "unknown"}

# Patterns on the flat (``_``-joined, lower-case) module path with the file prefix removed.
_FOREIGN_RX: dict[str, re.Pattern[str]] = {
    "sdxl": re.compile(r"^(input_blocks|output_blocks|middle_block)_\d"
                       r"|^lora_te[12]_|^text_encoder_2_"
                       r"|^(down|up)_blocks_\d+_attentions_\d+_transformer_blocks_[1-9]"),
    "sd15": re.compile(r"^(down|up)_blocks_\d+_attentions_\d+_transformer_blocks_0_|^mid_block_attentions"
                       r"|^lora_te_text_model_|^text_encoder_text_model_"),
    "flux": re.compile(r"^double_blocks_\d+_(img|txt)_(attn|mlp|mod)|^single_blocks_\d+_(linear[12]|modulation)"
                       r"|^single_transformer_blocks_\d+_|^(time_in|vector_in|guidance_in)_"),
    "qwen_image": re.compile(r"^transformer_blocks_\d+_(img|txt)_(mlp|mod)"),
    "sd3": re.compile(r"^joint_blocks_\d+_|^transformer_blocks_\d+_(attn_add_[qkv]_proj|ff_context|norm1_context)"),
    "wan": re.compile(r"^blocks_\d+_(self_attn|cross_attn|ffn|attn[12]|modulation)"),
    "hunyuan": re.compile(r"token_refiner|^double_blocks_\d+_(img|txt)_mod_linear|^single_blocks_\d+_modulation_linear"),
    "lumina2": re.compile(r"^layers_\d+_(attn_to_|feed_forward_linear_|norm1_linear|adaln_modulation_1)"
                          r"|^(noise|context)_refiner_\d+_(attn_to_|adaln_modulation_1)"),
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
        body = _flat(s[0])
        r = resolve_module(s[0])
        if r is not None:
            zimage += 1
            if not r[1] and ("attention_to_" in body or "adaln_modulation_0" in body
                             or body.startswith(("all_x_embedder", "all_final_layer"))):
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
        fk = _flat(k)
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


# ----------------------------------------------------------------------------------------------
# Base-model checkpoint families (full model files, not LoRAs)
# ----------------------------------------------------------------------------------------------

_LORA_MARKERS = (".lora_A.", ".lora_B.", ".lora_down.", ".lora_up.", ".lora.down.", ".lokr_w", ".hada_w")


def detect_checkpoint_family(keys: Iterable[str], shapes: Mapping[str, tuple[int, ...]] | None = None) -> str:
    """Family of a *full* model file from its tensor names (names follow ``models/validate.py``).

    Returns one of ``lora``, ``zimage-dit``, ``lumina2-dit``, ``flux-dit``, ``qwen-image-dit``,
    ``sd3``, ``wan-dit``, ``hunyuan-dit``, ``sdxl``, ``sd15``, ``qwen3`` (the Z-Image text encoder),
    ``qwen2`` (Qwen2/2.5, Qwen-Image's), ``t5``, ``clip``, ``flux-vae`` (16-channel ``ae``, the
    Z-Image VAE), ``sd-vae`` (4-channel) or ``unknown``. ``shapes`` tells the VAE kinds apart.
    """
    ks = set(keys)
    shapes = shapes or {}

    def has(*needles: str) -> bool:
        return any(any(n in k for k in ks) for n in needles)

    if not ks:
        return "unknown"
    if has(*_LORA_MARKERS):
        return "lora"
    for p in ("model.diffusion_model.", "diffusion_model.", "transformer.", ""):
        if f"{p}layers.0.adaLN_modulation.0.weight" in ks and (
                f"{p}cap_embedder.1.weight" in ks or f"{p}layers.0.attention.qkv.weight" in ks
                or f"{p}layers.0.attention.to_q.weight" in ks):
            return "zimage-dit"
        if f"{p}layers.0.adaLN_modulation.1.weight" in ks or f"{p}layers.0.attn.to_q.weight" in ks:
            return "lumina2-dit"
    if has("token_refiner", "img_attn_qkv.weight"):
        return "hunyuan-dit"
    if has("double_blocks.0.img_attn", "single_blocks.0.linear1", "single_transformer_blocks.0."):
        return "flux-dit"
    if has("transformer_blocks.0.img_mod", "transformer_blocks.0.img_mlp"):
        return "qwen-image-dit"
    if has("joint_blocks.0."):
        return "sd3"
    if has("blocks.0.self_attn.q.weight", "blocks.0.cross_attn.k.weight") and not has("layers.0."):
        return "wan-dit"
    if has("conditioner.embedders.1", "conditioner.embedders.0.transformer"):
        return "sdxl"
    if has("cond_stage_model.", "model.diffusion_model.input_blocks.0.0.weight"):
        return "sd15"
    for p in ("model.", "language_model.model.", "model.language_model.", ""):
        if f"{p}layers.0.self_attn.q_proj.weight" in ks:
            if f"{p}layers.0.self_attn.q_norm.weight" in ks:
                return "qwen3"
            return "qwen2"
    if has("encoder.block.0.layer.0.SelfAttention"):
        return "t5"
    if has("text_model.encoder.layers.0"):
        return "clip"
    for conv in ("encoder.conv_out.weight", "first_stage_model.encoder.conv_out.weight",
                 "vae.encoder.conv_out.weight"):
        if conv in ks and has("decoder.conv_out.weight"):
            shp = shapes.get(conv)
            if shp is not None and shp[0] != 32:
                return "sd-vae"
            return "flux-vae"
    return "unknown"


# ----------------------------------------------------------------------------------------------
# Header inspection
# ----------------------------------------------------------------------------------------------


@dataclass
class LoraInfo:
    """What a LoRA file's header says (no tensors loaded)."""

    path: str
    arch: str
    dialect: str
    rank: int | None = None                 # most common rank
    alpha: float | None = None              # the alpha that is applied (see alpha_source)
    n_tensors: int = 0
    target_modules: list[str] = field(default_factory=list)  # diffusers names, qkv expanded
    unknown_keys: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    trigger_words: list[tuple[str, str]] = field(default_factory=list)  # (word, source)
    base_model_version: str | None = None
    base_precision: str | None = None       # zitdesk_base_precision (bf16/fp8/uint4)
    size_bytes: int = 0
    dtypes: dict[str, int] = field(default_factory=dict)
    ranks: dict[int, int] = field(default_factory=dict)   # rank → module count
    fused_qkv: bool = False                  # the file stores fused qkv modules
    unsupported_keys: list[str] = field(default_factory=list)  # DoRA, bias deltas, Tucker cores
    # "file" (.alpha tensors), "adapter config" (PEFT lora_alpha), "weights" (none stored: the
    # weights carry the scale, applied as alpha = rank), "" (unknown rank)
    alpha_source: str = ""
    trained_alpha: float | None = None      # ss_network_alpha when the weights already hold it
    tool: str = ""                          # the trainer that wrote the file, when it says so

    @property
    def dialect_label(self) -> str:
        """The key layout, named after the tool where the file says which one wrote it."""
        return f"{self.tool}, {self.dialect} keys" if self.tool else self.dialect

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def label(self) -> str:
        return ARCH_LABELS.get(self.arch, self.arch)


_TRIGGER_KEYS = ("trigger_word", "trigger_words", "trigger_phrase", "activation text", "activation_text",
                 "ss_trigger_words", "instance_prompt")
_MAX_ALPHA_READS = 4096
_TOP_TAGS = 5


def _read_scalars(header: SafetensorsHeader, keys: list[str]) -> dict[str, float]:
    """Read the values of 1-element tensors (``.alpha``) straight from the file, torch-free."""
    fmt = {"F32": "<f", "F64": "<d", "F16": "<e", "I64": "<q", "I32": "<i", "I16": "<h", "I8": "<b",
           "U8": "<B"}
    out: dict[str, float] = {}
    wanted = []
    for k in keys[:_MAX_ALPHA_READS]:
        t = header.tensors[k]
        n = 1
        for s in t.shape:
            n *= s
        if n == 1 and (t.dtype in fmt or t.dtype == "BF16"):
            wanted.append((t.start, k, t))
    if not wanted:
        return out
    wanted.sort()
    try:
        with open(header.path, "rb") as fh:
            for start, k, t in wanted:
                fh.seek(header.data_offset + start)
                raw = fh.read(t.end - t.start)
                if len(raw) != t.end - t.start:
                    continue
                if t.dtype == "BF16":
                    val = struct.unpack("<f", b"\x00\x00" + raw)[0]
                else:
                    val = struct.unpack(fmt[t.dtype], raw)[0]
                if math.isfinite(val):
                    out[k] = float(val)
    except OSError:
        return out
    return out


def _parse_json(text: str, limit: int = 2_000_000) -> Any:
    if not text or len(text) > limit or text[:1] not in "{[\"":
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _find_trigger_in(obj: Any, depth: int = 0) -> list[str]:
    """Trigger words nested in a JSON training config (ai-toolkit stores its job config)."""
    if depth > 6:
        return []
    found: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str) and k.lower() in ("trigger_word", "trigger_words", "trigger_phrase"):
                found += _as_words(v)
            elif isinstance(v, (dict, list)):
                found += _find_trigger_in(v, depth + 1)
    elif isinstance(obj, list):
        for v in obj[:50]:
            found += _find_trigger_in(v, depth + 1)
    return found


def _as_words(v: Any) -> list[str]:
    if isinstance(v, str):
        parsed = _parse_json(v) if v[:1] in "[\"" else None
        if parsed is not None and parsed != v:
            return _as_words(parsed)
        return [v.strip()] if v.strip() else []
    if isinstance(v, list):
        return [str(x).strip() for x in v if isinstance(x, (str, int, float)) and str(x).strip()]
    return []


def extract_trigger_words(metadata: Mapping[str, str]) -> list[tuple[str, str]]:
    """Trigger words with their source, strongest source first, de-duplicated case-insensitively.

    Sources: ``modelspec.trigger_phrase``; explicit keys (``trigger_word``, ``activation text`` …);
    trigger words inside JSON training configs (ai-toolkit); the top ``ss_tag_frequency`` tags.
    """
    out: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(word: str, source: str) -> None:
        w = word.strip()
        if w and w.lower() not in seen and len(w) <= 200:
            seen.add(w.lower())
            out.append((w, source))

    lower = {k.lower(): k for k in metadata}
    if "modelspec.trigger_phrase" in lower:
        k = lower["modelspec.trigger_phrase"]
        for w in _as_words(metadata[k]):
            add(w, k)
    for tk in _TRIGGER_KEYS:
        if tk in lower:
            k = lower[tk]
            for w in _as_words(metadata[k]):
                add(w, k)
    for k, v in metadata.items():
        if k in ("ss_tag_frequency",) or not isinstance(v, str) or v[:1] != "{":
            continue
        parsed = _parse_json(v)
        if parsed is not None:
            for w in _find_trigger_in(parsed):
                add(w, f"{k}:trigger_word")
    freq = _parse_json(metadata.get("ss_tag_frequency", ""))
    if isinstance(freq, dict):
        counts: Counter[str] = Counter()
        for tags in freq.values():
            if isinstance(tags, dict):
                for tag, n in tags.items():
                    if isinstance(n, (int, float)) and isinstance(tag, str):
                        counts[tag.strip()] += int(n)
        for tag, _n in counts.most_common(_TOP_TAGS):
            add(tag, "ss_tag_frequency")
    return out


def adapter_metadata(metadata: Mapping[str, str]) -> dict[str, Any] | None:
    """The PEFT config diffusers stores in ``lora_adapter_metadata`` (``transformer.`` prefix removed)."""
    raw = _parse_json(metadata.get("lora_adapter_metadata", ""))
    if not isinstance(raw, dict):
        return None
    cfg: dict[str, Any] = {}
    for k, v in raw.items():
        if not isinstance(k, str):
            continue
        if k.startswith("transformer."):
            cfg[k[len("transformer."):]] = v
        elif "." not in k:
            cfg.setdefault(k, v)
    return cfg or None


def _float_or_none(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _pair_fits(a: tuple[int, ...] | None, b: tuple[int, ...] | None) -> bool:
    if not a or not b:
        return False
    rows_a = a[0]
    cols_b = math.prod(b[1:]) if len(b) > 1 else 1
    return rows_a >= 1 and cols_b == rows_a


def inspect_header(header: SafetensorsHeader) -> LoraInfo:
    """Build a :class:`LoraInfo` from an already parsed header."""
    keys = header.keys()
    shapes = {k: t.shape for k, t in header.tensors.items()}
    arch = detect_arch(keys, shapes)
    # The dialect describes the keys that will be used: stray text-encoder or junk keys in a
    # Z-Image file are reported as unknown keys, not as a "mixed" dialect.
    used = [k for k in keys if normalize_key(k) is not None] if arch == "zimage" else []
    dialect = detect_dialect(used or keys)
    meta = dict(header.metadata)
    targets: set[str] = set()
    unknown: list[str] = []
    ranks: Counter[int] = Counter()
    alpha_keys: list[str] = []
    fused = False
    unsupported: list[str] = []
    modules: dict[str, list[str]] = {}               # module → its keys
    pairs: dict[str, dict[str, tuple[int, ...]]] = {}  # module → lora_A/lora_B shapes
    for k in keys:
        nk = normalize_key(k) if arch in ("zimage", "unknown") else None
        if nk is None:
            unknown.append(k)
            continue
        module, part = nk
        if part not in SUPPORTED_PARTS:
            unsupported.append(k)
            continue
        modules.setdefault(module, []).append(k)
        shp = shapes[k]
        if part in ("lora_A", "lora_B"):
            pairs.setdefault(module, {})[part] = shp
        if part == "lora_A" and len(shp) >= 1:
            ranks[int(shp[0])] += 1
        elif part in ("lokr_w1_b", "lokr_w2_b", "hada_w1_b") and len(shp) >= 1:
            ranks[int(shp[0])] += 1
        elif part == "alpha":
            alpha_keys.append(k)
    # The loader's rule for A/B pairs (apply.load_normalized): both present, each flattened to
    # 2-D, B's columns = A's rows ≥ 1. A module that breaks it is skipped there as incomplete,
    # so it is no target here either (what inspect counts, generate loads).
    for module, keys_of in modules.items():
        shp = pairs.get(module)
        if shp is not None and not _pair_fits(shp.get("lora_A"), shp.get("lora_B")):
            unknown.extend(keys_of)
            continue
        if QKV_MARKER in module:
            fused = True
        targets.update(expand_module(module))
    if arch not in ("zimage", "unknown"):
        targets = set()
    rank = ranks.most_common(1)[0][0] if ranks else None
    if rank is None:
        rank = _float_or_none(meta.get("ss_network_dim"))
        rank = int(rank) if rank else None
    # Report the alpha that loading applies: stored .alpha tensors, else PEFT's adapter config,
    # else none is stored and the weights carry the scale (alpha = rank: the diffusers and kohya
    # convention). ss_network_alpha then only says what the run was trained with: OneTrainer's
    # default output and musubi files converted to diffusers keys fold it into lora_B.
    alpha: float | None = None
    alpha_source = ""
    trained_alpha = _float_or_none(meta.get("ss_network_alpha"))
    values = _read_scalars(header, alpha_keys)
    if values:
        alpha, alpha_source = Counter(values.values()).most_common(1)[0][0], "file"
        trained_alpha = None
    else:
        cfg = adapter_metadata(meta)
        if cfg is not None and _float_or_none(cfg.get("lora_alpha")) is not None:
            alpha, alpha_source = _float_or_none(cfg.get("lora_alpha")), "adapter config"
            trained_alpha = None
        elif rank and not alpha_keys:  # (stored but unreadable alphas: unknown, not "rank")
            alpha, alpha_source = float(rank), "weights"
    base_version = meta.get("ss_base_model_version") or meta.get("modelspec.architecture") or None
    return LoraInfo(
        path=str(header.path), arch=arch, dialect=dialect, rank=rank, alpha=alpha,
        n_tensors=len(keys), target_modules=sorted(targets), unknown_keys=unknown, metadata=meta,
        trigger_words=extract_trigger_words(meta), base_model_version=base_version,
        base_precision=meta.get("zitdesk_base_precision") or None, size_bytes=header.file_size,
        dtypes=header.dtypes(), ranks=dict(ranks), fused_qkv=fused, unsupported_keys=unsupported,
        alpha_source=alpha_source, trained_alpha=trained_alpha, tool=detect_tool(meta),
    )


def detect_tool(meta: dict[str, str]) -> str:
    """The trainer that wrote a LoRA, from the metadata keys each one leaves (or "")."""
    if any(k.startswith("ot_") for k in meta):  # ot_branch / ot_revision / ot_config
        return "OneTrainer"
    if any(k.startswith("zitdesk_") for k in meta):
        return "zitdesk"
    software = meta.get("software", "")
    if "ai-toolkit" in software or "ai_toolkit" in software:
        return "ai-toolkit"
    module = meta.get("ss_network_module", "")
    if "musubi" in module or module.startswith("networks.lora_") and "zimage" in module:
        return "musubi-tuner"
    if any(k.startswith("ss_") for k in meta):
        return "kohya"
    return ""


def read_lora_header(path: str | Path) -> SafetensorsHeader:
    """Parse a LoRA file's header; every failure is a :class:`LoraError` with a plain message
    (pickles such as ``.ckpt``/``.pt``, GGUF, truncated or hostile files, files without tensors)."""
    p = Path(path)
    if p.suffix.lower() == ".gguf":
        raise LoraError(f"{p.name} is a GGUF file; LoRAs must be .safetensors files.")
    try:
        header = read_header(p)
    except FileFormatError as exc:
        raise LoraError(str(exc)) from exc
    if not header.tensors:
        raise LoraError(f"{p.name} holds no tensors; it is not a LoRA.")
    return header


def inspect_lora(path: str | Path) -> LoraInfo:
    """Inspect a LoRA file from its header only (plus the few bytes of its scalar ``.alpha``
    tensors). Raises :class:`LoraError` with a plain message for pickles (``.ckpt``/``.pt``),
    truncated or otherwise unreadable files."""
    return inspect_header(read_lora_header(path))


# ----------------------------------------------------------------------------------------------
# Coverage
# ----------------------------------------------------------------------------------------------


@dataclass
class Coverage:
    """How a LoRA's target modules line up with a model."""

    matched: int                      # file modules that exist in the model
    total_in_file: int                # file modules (qkv expanded)
    missing_in_model: list[str]       # file modules the model does not have
    unknown_keys: list[str]           # keys that name no Z-Image module
    percent: float                    # matched / total_in_file × 100
    model_targets: int = 0            # LoRA-able modules of the model (for "covers N of M")

    @property
    def badge(self) -> str:
        return f"{self.matched}/{self.total_in_file}"


def coverage(info: LoraInfo, model_module_names: Iterable[str]) -> Coverage:
    """Compare ``info.target_modules`` with the model's Linear module names."""
    names = set(model_module_names)
    matched = [m for m in info.target_modules if m in names]
    missing = [m for m in info.target_modules if m not in names]
    total = len(info.target_modules)
    pct = round(100.0 * len(matched) / total, 1) if total else 0.0
    return Coverage(len(matched), total, missing, list(info.unknown_keys), pct,
                    len(expected_targets(names)))


def compatibility(info: LoraInfo, cov: Coverage) -> tuple[bool, str]:
    """``(compatible, plain sentence)`` for a library badge or the CLI."""
    if info.arch in FOREIGN_ARCHS:
        return False, foreign_message(info.arch)
    if info.dialect == "unknown" or cov.total_in_file == 0:
        return False, (f"{info.name} has no LoRA keys that zitdesk recognises for Z-Image; it is not a "
                       "Z-Image LoRA or uses an unsupported format.")
    if cov.matched == 0:
        return False, (f"None of the {cov.total_in_file} modules in {info.name} exist in this model; it was "
                       "made for a different model size or version.")
    parts = [f"Z-Image LoRA ({info.dialect_label}), loads {cov.matched}/{cov.total_in_file} modules"]
    if cov.missing_in_model:
        parts.append(f"{len(cov.missing_in_model)} modules are not in this model and will be skipped")
    if info.unknown_keys:
        parts.append(f"{len(info.unknown_keys)} unrecognised keys will be skipped")
    if info.unsupported_keys:
        parts.append(f"{len(info.unsupported_keys)} keys use features zitdesk does not apply (DoRA "
                     "magnitudes, bias deltas), so results may differ from the trainer's")
    return True, "; ".join(parts) + "."


def inspect_json(path: str | Path, model_module_names: Iterable[str] | None = None) -> dict[str, Any]:
    """The document printed by ``zitdesk lora inspect FILE --json``.

    Coverage is computed against ``model_module_names`` (the loaded transformer's Linear names)
    or, when None, against the real Z-Image Turbo module set (:func:`full_size_linear_names`).
    """
    info = inspect_lora(path)
    against = "model" if model_module_names is not None else "z-image-turbo"
    names = set(model_module_names) if model_module_names is not None else full_size_linear_names()
    cov = coverage(info, names)
    ok, message = compatibility(info, cov)
    meta = {k: (v if len(v) <= 4000 else v[:4000] + f"… ({len(v):,} characters)")
            for k, v in info.metadata.items()}
    return {
        "path": info.path,
        "file_name": info.name,
        "size_bytes": info.size_bytes,
        "arch": info.arch,
        "arch_label": info.label,
        "dialect": info.dialect,
        "dialect_label": info.dialect_label,
        "tool": info.tool,
        "rank": info.rank,
        "ranks": {str(k): v for k, v in sorted(info.ranks.items())},
        "alpha": info.alpha,
        "alpha_source": info.alpha_source,
        "trained_alpha": info.trained_alpha,
        "n_tensors": info.n_tensors,
        "dtypes": info.dtypes,
        "target_count": len(info.target_modules),
        "fused_qkv": info.fused_qkv,
        "coverage": {
            "against": against,
            "matched": cov.matched,
            "total_in_file": cov.total_in_file,
            "percent": cov.percent,
            "model_targets": cov.model_targets,
            "missing_in_model": cov.missing_in_model[:50],
            "missing_count": len(cov.missing_in_model),
        },
        "base_model_version": info.base_model_version,
        "base_precision": info.base_precision,
        "has_metadata": bool(info.metadata),
        "metadata": meta,
        "trigger_words": [{"word": w, "source": s} for w, s in info.trigger_words],
        "unknown_keys": info.unknown_keys[:50],
        "unknown_key_count": len(info.unknown_keys),
        "unsupported_keys": info.unsupported_keys[:50],
        "unsupported_key_count": len(info.unsupported_keys),
        "compatible": ok,
        "message": message,
    }


def info_dict(info: LoraInfo) -> dict[str, Any]:
    """Plain-dict form of a :class:`LoraInfo` (JSON-safe)."""
    d = asdict(info)
    d["trigger_words"] = [list(t) for t in info.trigger_words]
    d["ranks"] = {str(k): v for k, v in info.ranks.items()}
    return d
