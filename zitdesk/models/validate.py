"""Classify model files from their safetensors headers (torch-free) and infer their configs.

Users bring many files: the right ones (Z-Image DiT, Qwen3-4B, Flux VAE), the same in other
precisions, and files of other families chosen by mistake. Everything here reads headers only,
so a 12 GB file is classified in milliseconds, and every refusal is one plain sentence.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zitdesk.errors import FileFormatError, ModelError
from zitdesk.models.families import detect_checkpoint_family
from zitdesk.models.quant import (
    detect_quant,
    gguf_header,
    gguf_main_type,
    gguf_problem,
    logical_header,
    quant_label,
)
from zitdesk.paths import skeleton_dir
from zitdesk.st_header import SafetensorsHeader, read_header

# Roles a single file can play in a Z-Image pipeline.
DIT, TEXT_ENCODER, VAE = "transformer", "text_encoder", "vae"
ROLE_LABELS = {
    DIT: "diffusion model (DiT)",
    TEXT_ENCODER: "text encoder (Qwen3-4B)",
    VAE: "VAE (ae)",
}

_TE_PREFIXES = ("model.", "language_model.model.", "model.language_model.", "")

# What to tell the user about a file of another family (the family comes from models.families).
_FOREIGN = {
    "lora": "{name} is a LoRA, not a base model. Add it in the LoRA stack instead, and choose the "
    "Z-Image Turbo model files (DiT, qwen_3_4b, ae) as the base.",
    "flux-dit": "{name} is a Flux model, not Z-Image Turbo. Choose the Z-Image DiT file.",
    "qwen-image-dit": "{name} is a Qwen-Image model, not Z-Image Turbo. Choose the Z-Image DiT file.",
    "lumina2-dit": "{name} is a Lumina 2 model, not Z-Image Turbo. Choose the Z-Image DiT file.",
    "hunyuan-dit": "{name} is a HunyuanVideo/Image model, not Z-Image Turbo. Choose the Z-Image DiT file.",
    "wan-dit": "{name} is a Wan video model, not Z-Image Turbo. Choose the Z-Image DiT file.",
    "sdxl": "{name} is an SDXL checkpoint; zitdesk only runs Z-Image Turbo.",
    "sd15": "{name} is a Stable Diffusion 1.x/2.x checkpoint; zitdesk only runs Z-Image Turbo.",
    "sd3": "{name} is a Stable Diffusion 3 model; zitdesk only runs Z-Image Turbo.",
    "qwen2": "{name} is a Qwen2/2.5 text encoder (used by Qwen-Image), not Qwen3-4B. "
    "Use qwen_3_4b.safetensors.",
    "clip": "{name} is a CLIP/T5 text encoder; Z-Image Turbo needs Qwen3-4B (qwen_3_4b.safetensors).",
    "t5": "{name} is a CLIP/T5 text encoder; Z-Image Turbo needs Qwen3-4B (qwen_3_4b.safetensors).",
}
DIT_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "transformer.", "")


@dataclass
class FileCheck:
    """What a header says a file is."""

    path: Path
    role: str | None  # DIT / TEXT_ENCODER / VAE when usable for Z-Image, else None
    family: str  # zimage-dit, qwen3, flux-vae, lora, sdxl, flux-dit, ...
    message: str = ""  # plain sentence when not usable (or a caveat)
    prefix: str = ""  # key prefix to strip (DiT / TE)
    dtypes: dict[str, int] = field(default_factory=dict)
    header: SafetensorsHeader | None = None
    quant: str = ""  # "" | fp8 | fp8-scaled | nvfp4 | gguf-Q4_K … (zitdesk.models.quant)

    @property
    def quant_label(self) -> str:
        return quant_label(self.quant)

    @property
    def ok(self) -> bool:
        return self.role is not None


def _has(keys: set[str], *needles: str) -> bool:
    return any(any(n in k for k in keys) for n in needles)


def _dit_prefix(keys: set[str]) -> str | None:
    for p in DIT_PREFIXES:
        if f"{p}layers.0.adaLN_modulation.0.weight" in keys:
            return p
    return None


def classify_header(header: SafetensorsHeader) -> FileCheck:
    """Decide what a safetensors file is and whether zitdesk can use it as a base-model part."""
    keys = set(header.tensors)
    name = header.path.name
    dtypes = header.dtypes()
    check = FileCheck(header.path, None, "unknown", dtypes=dtypes, header=header)
    if not keys:
        check.message = f"{name} holds no tensors."
        return check
    family = detect_checkpoint_family(keys, {k: v.shape for k, v in header.tensors.items()})
    check.family = family
    gguf = header.metadata.get("format") == "gguf"
    if family in ("zimage-dit", "qwen3"):
        if gguf:
            check.quant = "gguf-" + gguf_main_type(header)
            problem = gguf_problem(header)
        else:
            check.quant, problem = detect_quant(header)
            if check.quant == "nvfp4":
                check.header = header = logical_header(header)
                keys = set(header.tensors)
        if problem:
            check.message = problem
            if family == "qwen3":
                check.prefix = next(
                    (p for p in _TE_PREFIXES if f"{p}embed_tokens.weight" in keys), ""
                )
            else:
                check.prefix = _dit_prefix(keys) or ""
            return check
    if family == "zimage-dit":
        check.prefix = _dit_prefix(keys) or ""
        check.role = DIT
        if "F16" in dtypes and "BF16" not in dtypes and not check.quant:
            check.message = "fp16 weights: zitdesk computes in bf16 (fp16 overflows in Z-Image)."
        return check
    if family == "qwen3":
        check.prefix = next((p for p in _TE_PREFIXES if f"{p}embed_tokens.weight" in keys), "")
        check.role = TEXT_ENCODER
        return check
    if family == "flux-vae":
        if "encoder.conv_out.weight" not in keys:
            check.family = "vae-prefixed"
            check.message = (
                f"{name} holds a VAE inside another checkpoint; use the standalone ae.safetensors."
            )
        else:
            check.role = VAE
        return check
    if family == "sd-vae":
        conv = next(v for k, v in header.tensors.items() if k.endswith("encoder.conv_out.weight"))
        check.message = (
            f"{name} is a {conv.shape[0] // 2}-channel VAE (SD/SDXL); Z-Image needs the 16-channel "
            "Flux VAE (ae.safetensors)."
        )
        return check
    check.message = _FOREIGN.get(
        family,
        "{name} is not a Z-Image Turbo model file (no known layout found in its tensor names).",
    ).format(name=name)
    return check


def classify_file(path: str | Path) -> FileCheck:
    """Read the header of ``path`` and classify it. Raises :class:`ModelError` for unreadable files."""
    p = Path(path)
    try:
        header = gguf_header(p) if p.suffix.lower() == ".gguf" else read_header(p)
    except Exception as exc:  # FileFormatError carries a plain message already
        raise ModelError(str(exc)) from exc
    return classify_header(header)


# --- config inference from headers ------------------------------------------------------------


def _load_skeleton(sub: str, name: str = "config.json") -> dict[str, Any]:
    return json.loads((skeleton_dir() / sub / name).read_text())


def _count_blocks(keys: set[str], pattern: str) -> int:
    rx = re.compile(pattern)
    idx = {int(m.group(1)) for k in keys if (m := rx.match(k))}
    return max(idx) + 1 if idx else 0


def infer_transformer_config(header: SafetensorsHeader, prefix: str) -> dict[str, Any]:
    """The ZImageTransformer2DModel config for a DiT file (shapes from the header, rest from the skeleton)."""
    t = {k[len(prefix) :]: v for k, v in header.tensors.items() if k.startswith(prefix)}
    keys = set(t)
    cfg = copy.deepcopy(_load_skeleton("transformer"))
    x_emb = t.get("x_embedder.weight") or t.get("all_x_embedder.2-1.weight")
    if x_emb is None:
        raise ModelError(
            f"{header.path.name} is missing the patch embedder; the file is incomplete."
        )
    dim = x_emb.shape[0]
    norm = t.get("layers.0.attention.q_norm.weight") or t.get("layers.0.attention.norm_q.weight")
    head_dim = norm.shape[0] if norm is not None else 128
    cap = t.get("cap_embedder.1.weight")
    cfg.update(
        dim=dim,
        n_heads=dim // head_dim,
        n_kv_heads=dim // head_dim,
        n_layers=_count_blocks(keys, r"layers\.(\d+)\."),
        n_refiner_layers=_count_blocks(keys, r"noise_refiner\.(\d+)\."),
        cap_feat_dim=cap.shape[1] if cap is not None else cfg["cap_feat_dim"],
        in_channels=x_emb.shape[1] // 4,
    )
    if sum(cfg["axes_dims"]) != head_dim:
        # Keep the real model's proportions (32:48:48 of 128), rounded to even sizes for RoPE.
        a = max(2, head_dim // 4 // 2 * 2)
        b = (head_dim - a) // 2
        cfg["axes_dims"] = [a, b, head_dim - a - b]
    return cfg


def infer_text_encoder_config(header: SafetensorsHeader, prefix: str) -> dict[str, Any]:
    t = {k[len(prefix) :]: v for k, v in header.tensors.items() if k.startswith(prefix)}
    cfg = copy.deepcopy(_load_skeleton("text_encoder"))
    emb = t["embed_tokens.weight"]
    head_dim = t["layers.0.self_attn.q_norm.weight"].shape[0]
    cfg.update(
        vocab_size=emb.shape[0],
        hidden_size=emb.shape[1],
        num_hidden_layers=_count_blocks(set(t), r"layers\.(\d+)\."),
        head_dim=head_dim,
        num_attention_heads=t["layers.0.self_attn.q_proj.weight"].shape[0] // head_dim,
        num_key_value_heads=t["layers.0.self_attn.k_proj.weight"].shape[0] // head_dim,
        intermediate_size=t["layers.0.mlp.gate_proj.weight"].shape[0],
    )
    cfg["max_window_layers"] = cfg["num_hidden_layers"]
    return cfg


def infer_vae_config(header: SafetensorsHeader) -> dict[str, Any]:
    t = header.tensors
    cfg = copy.deepcopy(_load_skeleton("vae"))
    n_levels = _count_blocks(set(t), r"encoder\.down\.(\d+)\.")
    channels = [t[f"encoder.down.{i}.block.0.conv2.weight"].shape[0] for i in range(n_levels)]
    cfg.update(
        block_out_channels=channels,
        layers_per_block=_count_blocks(set(t), r"encoder\.down\.0\.block\.(\d+)\."),
        latent_channels=t["encoder.conv_out.weight"].shape[0] // 2,
        down_block_types=["DownEncoderBlock2D"] * n_levels,
        up_block_types=["UpDecoderBlock2D"] * n_levels,
    )
    return cfg


def weight_file_problems(folder: Path) -> list[str]:
    """One sentence per ``.safetensors`` file in ``folder`` that the loader would refuse.

    Diffusers folders are loaded by ``from_pretrained``, which hands every weight file straight
    to safetensors; running the same validator as LoRAs and single files first (headers only,
    milliseconds even for sharded 12 GB parts) turns a damaged or hostile shard into a sentence
    at discovery time instead of a library traceback at load time.
    """
    problems: list[str] = []
    try:
        files = sorted(f for f in folder.iterdir() if f.suffix == ".safetensors")
    except OSError:
        return problems
    for f in files:
        try:
            read_header(f)
        except FileFormatError as exc:
            problems.append(f"{folder.name}/{exc}")
    return problems
