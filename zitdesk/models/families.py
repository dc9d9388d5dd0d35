"""Which family a *full* model file belongs to, from its tensor names (torch-free).

:func:`detect_checkpoint_family` tells a Z-Image DiT, Qwen3 text encoder or Flux/Z-Image VAE from
the files users pick by mistake (a LoRA, Flux, Qwen-Image, Lumina 2, SDXL, SD 1.x, T5/CLIP …);
:mod:`zitdesk.models.validate` turns the family into a role or a plain refusal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

_LORA_MARKERS = (
    ".lora_A.",
    ".lora_B.",
    ".lora_down.",
    ".lora_up.",
    ".lora.down.",
    ".lokr_w",
    ".hada_w",
)


def detect_checkpoint_family(
    keys: Iterable[str], shapes: Mapping[str, tuple[int, ...]] | None = None
) -> str:
    """Family of a *full* model file from its tensor names (the roles :mod:`zitdesk.models.validate` assigns).

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
            f"{p}cap_embedder.1.weight" in ks
            or f"{p}layers.0.attention.qkv.weight" in ks
            or f"{p}layers.0.attention.to_q.weight" in ks
        ):
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
    for conv in (
        "encoder.conv_out.weight",
        "first_stage_model.encoder.conv_out.weight",
        "vae.encoder.conv_out.weight",
    ):
        if conv in ks and has("decoder.conv_out.weight"):
            shp = shapes.get(conv)
            if shp is not None and shp[0] != 32:
                return "sd-vae"
            return "flux-vae"
    return "unknown"
