"""Tiny random-weight Z-Image models built from the real classes.

Used by the tests, the self-test and ``zitdesk make-tiny-model``: the architectures and on-disk
layouts are the real ones (``ZImageTransformer2DModel``, ``Qwen3Model``, the Flux-style
``AutoencoderKL`` with its real ×8 downscale), only the widths are small, so every loader and
pipeline code path runs for real on a CPU in seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from zitdesk.offline import enforce_offline

QWEN3_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)

TINY_TRANSFORMER: dict[str, Any] = dict(
    all_patch_size=[2],
    all_f_patch_size=[1],
    in_channels=16,
    dim=32,
    n_layers=2,
    n_refiner_layers=1,
    n_heads=2,
    n_kv_heads=2,
    norm_eps=1e-5,
    qk_norm=True,
    cap_feat_dim=16,
    rope_theta=256.0,
    t_scale=1000.0,
    axes_dims=[4, 6, 6],
    axes_lens=[1536, 512, 512],
)
TINY_TEXT_ENCODER: dict[str, Any] = dict(
    vocab_size=512,
    hidden_size=16,
    intermediate_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=8,
    max_position_embeddings=1024,
    rms_norm_eps=1e-6,
    rope_theta=1_000_000.0,
    tie_word_embeddings=True,
)
TINY_VAE: dict[str, Any] = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[32, 32, 32, 32],
    layers_per_block=1,
    latent_channels=16,
    norm_num_groups=32,
    sample_size=64,
    scaling_factor=0.3611,
    shift_factor=0.1159,
    use_quant_conv=False,
    use_post_quant_conv=False,
    mid_block_add_attention=True,
    force_upcast=True,
)


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def make_tiny_tokenizer():
    """A byte-level BPE ``Qwen2Tokenizer`` (256 byte tokens + Qwen's 3 specials), built in code."""
    enforce_offline()
    from transformers import Qwen2Tokenizer

    vocab = {ch: i for i, ch in enumerate(_bytes_to_unicode().values())}
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        vocab[special] = len(vocab)
    tok = Qwen2Tokenizer(vocab=vocab, merges=[])
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = QWEN3_CHAT_TEMPLATE
    tok.model_max_length = 131072
    return tok


def make_tiny_components(seed: int = 0) -> dict[str, Any]:
    """Return ``transformer, vae, text_encoder, tokenizer, scheduler`` with random weights."""
    enforce_offline()
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(seed)
    transformer = ZImageTransformer2DModel(**TINY_TRANSFORMER)
    with torch.no_grad():  # the pad tokens come from torch.empty; random-init models must fill them
        transformer.x_pad_token.normal_(0.0, 0.5)  # type: ignore[attr-defined]  # diffusers registers it at init
        transformer.cap_pad_token.normal_(0.0, 0.5)  # type: ignore[attr-defined]  # diffusers registers it at init
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(**TINY_VAE)
    torch.manual_seed(seed + 2)
    text_encoder = Qwen3Model(Qwen3Config(**TINY_TEXT_ENCODER)).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False
    )
    return dict(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=make_tiny_tokenizer(),
        scheduler=scheduler,
    )


# --- ComfyUI single-file key layouts (the inverse of diffusers' converters) -------------------


def comfy_dit_state_dict(sd: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Diffusers transformer keys → ComfyUI/original Z-Image keys (fused qkv, original names)."""
    import torch

    out: dict[str, Any] = {}
    for k, v in sd.items():
        if ".attention.to_k." in k or ".attention.to_v." in k:
            continue
        if ".attention.to_q.weight" in k:
            fused = torch.cat(
                [v, sd[k.replace("to_q", "to_k")], sd[k.replace("to_q", "to_v")]], dim=0
            )
            out[prefix + k.replace("to_q", "qkv")] = fused
            continue
        nk = (
            k.replace("all_final_layer.2-1.", "final_layer.")
            .replace("all_x_embedder.2-1.", "x_embedder.")
            .replace(".attention.to_out.0.", ".attention.out.")
            .replace(".attention.norm_k.", ".attention.k_norm.")
            .replace(".attention.norm_q.", ".attention.q_norm.")
        )
        out[prefix + nk] = v
    return out


def ldm_vae_state_dict(sd: dict[str, Any]) -> dict[str, Any]:
    """Diffusers ``AutoencoderKL`` keys → original LDM/Flux ``ae.safetensors`` keys."""
    out: dict[str, Any] = {}
    n_blocks = 1 + max(int(k.split(".")[2]) for k in sd if k.startswith("encoder.down_blocks."))
    lpb = 1 + max(
        int(k.split(".")[4]) for k in sd if k.startswith("encoder.down_blocks.0.resnets.")
    )

    def res(src: str, dst: str) -> None:
        for a, b in [
            ("norm1", "norm1"),
            ("conv1", "conv1"),
            ("norm2", "norm2"),
            ("conv2", "conv2"),
            ("conv_shortcut", "nin_shortcut"),
        ]:
            for p in ("weight", "bias"):
                if f"{src}.{a}.{p}" in sd:
                    out[f"{dst}.{b}.{p}"] = sd[f"{src}.{a}.{p}"]

    def attn(src: str, dst: str) -> None:
        for a, b in [
            ("group_norm", "norm"),
            ("to_q", "q"),
            ("to_k", "k"),
            ("to_v", "v"),
            ("to_out.0", "proj_out"),
        ]:
            for p in ("weight", "bias"):
                v = sd[f"{src}.{a}.{p}"]
                if p == "weight" and v.ndim == 2:
                    v = v[:, :, None, None]
                out[f"{dst}.{b}.{p}"] = v

    for side in ("encoder", "decoder"):
        for a, b in [
            ("conv_in", "conv_in"),
            ("conv_out", "conv_out"),
            ("conv_norm_out", "norm_out"),
        ]:
            for p in ("weight", "bias"):
                out[f"{side}.{b}.{p}"] = sd[f"{side}.{a}.{p}"]
        res(f"{side}.mid_block.resnets.0", f"{side}.mid.block_1")
        res(f"{side}.mid_block.resnets.1", f"{side}.mid.block_2")
        attn(f"{side}.mid_block.attentions.0", f"{side}.mid.attn_1")
    for i in range(n_blocks):
        for j in range(lpb):
            res(f"encoder.down_blocks.{i}.resnets.{j}", f"encoder.down.{i}.block.{j}")
        if f"encoder.down_blocks.{i}.downsamplers.0.conv.weight" in sd:
            for p in ("weight", "bias"):
                out[f"encoder.down.{i}.downsample.conv.{p}"] = sd[
                    f"encoder.down_blocks.{i}.downsamplers.0.conv.{p}"
                ]
        up = n_blocks - 1 - i  # LDM stores decoder up blocks in reverse order
        for j in range(lpb + 1):
            res(f"decoder.up_blocks.{i}.resnets.{j}", f"decoder.up.{up}.block.{j}")
        if f"decoder.up_blocks.{i}.upsamplers.0.conv.weight" in sd:
            for p in ("weight", "bias"):
                out[f"decoder.up.{up}.upsample.conv.{p}"] = sd[
                    f"decoder.up_blocks.{i}.upsamplers.0.conv.{p}"
                ]
    return out


COMFY_FILE_NAMES = {
    "transformer": "z_image_turbo_bf16.safetensors",
    "text_encoder": "qwen_3_4b.safetensors",
    "vae": "ae.safetensors",
}


def save_tiny_model(
    out_dir: str | Path,
    layout: str = "diffusers",
    seed: int = 0,
    dit_dtype: str = "float32",
    components: dict[str, Any] | None = None,
) -> Path:
    """Write a tiny model to ``out_dir`` in the ``diffusers`` or ``comfy`` layout.

    ``comfy`` writes the three single files ComfyUI users have (DiT with fused qkv, Qwen3 with a
    ``model.`` prefix, LDM-named VAE); ``dit_dtype="float8_e4m3fn"`` stores the DiT like the fp8
    ComfyUI release. Returns ``out_dir``.
    """
    enforce_offline()
    import torch
    from diffusers import ZImagePipeline

    from zitdesk.io import atomic_save_tensors, atomic_write

    out = Path(out_dir)
    if layout not in ("diffusers", "comfy"):
        raise ValueError(f"unknown layout {layout!r} (use 'diffusers' or 'comfy')")
    _check_target(out)
    comps = components or make_tiny_components(seed)
    if layout == "diffusers":
        if out.exists() and any(out.iterdir()):
            shutil.rmtree(out)  # only an earlier tiny model (checked above): never a user's folder
        pipe = ZImagePipeline(**comps)
        pipe.save_pretrained(out)  # type: ignore[attr-defined]  # DiffusionPipeline method
        atomic_write(out / TINY_MARKER, "a tiny random-weight Z-Image model made by zitdesk\n")
        return out
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / TINY_MARKER, "a tiny random-weight Z-Image model made by zitdesk\n")
    dt = getattr(torch, dit_dtype)
    dit = {
        k: v.detach().to(dt).contiguous()
        for k, v in comfy_dit_state_dict(comps["transformer"].state_dict()).items()
    }
    name = COMFY_FILE_NAMES["transformer"]
    if dit_dtype == "float8_e4m3fn":
        name = name.replace("_bf16", "_fp8_e4m3fn")
    atomic_save_tensors(out / name, dit, metadata={"format": "pt"})
    te = {
        f"model.{k}": v.detach().contiguous() for k, v in comps["text_encoder"].state_dict().items()
    }
    atomic_save_tensors(out / COMFY_FILE_NAMES["text_encoder"], te, metadata={"format": "pt"})
    vae = {
        k: v.detach().contiguous() for k, v in ldm_vae_state_dict(comps["vae"].state_dict()).items()
    }
    atomic_save_tensors(out / COMFY_FILE_NAMES["vae"], vae, metadata={"format": "pt"})
    # Real ComfyUI folders have no tokenizer (the bundled Qwen one is used); the tiny text encoder
    # has a 512-token vocabulary, so its own tokenizer travels beside the files.
    comps["tokenizer"].save_pretrained(str(out / "tokenizer"))
    return out


TINY_MARKER = ".zitdesk-tiny-model"


def _check_target(out: Path) -> None:
    """A tiny model goes into a new or empty folder, or replaces an earlier tiny model; never
    over a user's folder (the diffusers layout empties its folder, the ComfyUI one would replace
    real model files of the same names)."""
    from zitdesk.errors import RequestError

    if out.exists() and not out.is_dir():
        raise RequestError(f"{out} is a file, not a folder; choose a new or empty folder.")
    if out.is_dir() and any(out.iterdir()) and not (out / TINY_MARKER).is_file():
        raise RequestError(
            f"{out} is not empty and holds no earlier tiny model; choose a new or empty folder "
            "(nothing was changed)."
        )


def hf_cache_layout(
    diffusers_dir: str | Path, cache_root: str | Path, repo: str = "Tongyi-MAI/Z-Image-Turbo"
) -> Path:
    """Arrange a diffusers folder as a Hugging Face cache entry (blobs + snapshot symlinks or copies).

    Returns the ``models--…`` folder, which is what users point at or what discovery finds.
    """
    import hashlib
    import os

    src = Path(diffusers_dir)
    model_dir = Path(cache_root) / ("models--" + repo.replace("/", "--"))
    commit = hashlib.sha1(repo.encode()).hexdigest()
    snap = model_dir / "snapshots" / commit
    blobs = model_dir / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    for f in src.rglob("*"):
        if not f.is_file():
            continue
        data = f.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        blob = blobs / digest
        if not blob.exists():
            blob.write_bytes(data)
        dst = snap / f.relative_to(src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.symlink(os.path.relpath(blob, dst.parent), dst)
        except OSError:  # no symlink rights (Windows without developer mode): the HF lib copies too
            shutil.copyfile(blob, dst)
    (model_dir / "refs").mkdir(exist_ok=True)
    (model_dir / "refs" / "main").write_text(commit)
    return model_dir


def write_config(path: Path, cfg: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cfg, indent=2))
