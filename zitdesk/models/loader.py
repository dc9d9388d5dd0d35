"""Load a resolved :class:`ModelSource` into a diffusers ``ZImagePipeline`` (offline only).

Engine-thread code: imports torch/diffusers lazily. Every failure becomes a :class:`ModelError`
with a plain sentence; nothing is fetched from the Hub (``local_files_only`` everywhere, hub
offline switches set before the import).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from zitdesk.errors import ModelError
from zitdesk.io import atomic_write, user_dirs
from zitdesk.models.discovery import ModelSource
from zitdesk.models.validate import (
    DIT,
    TEXT_ENCODER,
    VAE,
    infer_text_encoder_config,
    infer_transformer_config,
    infer_vae_config,
)
from zitdesk.offline import enforce_offline
from zitdesk.paths import skeleton_dir

log = logging.getLogger(__name__)


def pick_dtype(device: str, big: bool = True):
    """bf16 on CUDA (fp16 overflows in Z-Image); on CPU fp32 for tiny models, bf16 for real ones."""
    import torch

    if device.startswith("cuda"):
        return torch.bfloat16
    return torch.bfloat16 if big else torch.float32


def _config_dir(kind: str, cfg: dict[str, Any]) -> Path:
    """Write an inferred config into the cache (content-addressed) and return its folder."""
    blob = json.dumps(cfg, sort_keys=True).encode()
    folder = user_dirs()["cache"] / "configs" / f"{kind}-{hashlib.sha1(blob).hexdigest()[:12]}"
    target = folder / "config.json"
    if not target.exists():
        atomic_write(target, blob)
    return folder


def _load_tokenizer(tokenizer_dir: Path | None):
    from transformers import AutoTokenizer

    if tokenizer_dir is not None and tokenizer_dir.is_dir():
        try:
            return AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
        except Exception as exc:  # fall back to the bundled tokenizer
            log.warning("tokenizer in %s unusable (%s); using the bundled one", tokenizer_dir, exc)
    try:
        from zitdesk.models.tokenizer import default_tokenizer
    except ImportError as exc:
        raise ModelError(
            "No tokenizer was found and the bundled Qwen tokenizer is missing."
        ) from exc
    return default_tokenizer()


def _is_big(source: ModelSource) -> bool:
    if source.kind == "comfy":
        return source.files[DIT].stat().st_size > 1_000_000_000
    tdir = source.root / "transformer"
    return sum(f.stat().st_size for f in tdir.glob("*.safetensors")) > 1_000_000_000


def load_pipeline(source: ModelSource, device: str = "cpu", dtype=None):
    """Build a ``ZImagePipeline`` from ``source`` (weights stay on the CPU; the caller places them)."""
    enforce_offline()
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        ZImagePipeline,
    )

    if not source.complete:
        raise ModelError(source.describe())
    dtype = dtype or pick_dtype(device, _is_big(source))
    try:
        if source.kind == "diffusers":
            tok_dir = source.root / "tokenizer"
            kwargs: dict[str, Any] = {}
            if not (tok_dir / "tokenizer.json").exists() and not (tok_dir / "vocab.json").exists():
                kwargs["tokenizer"] = _load_tokenizer(None)
            pipe = ZImagePipeline.from_pretrained(
                str(source.root), dtype=dtype, local_files_only=True, **kwargs
            )
        else:
            dit_check, te_check = source.checks[DIT], source.checks[TEXT_ENCODER]
            tr_dict = infer_transformer_config(dit_check.header, dit_check.prefix)  # type: ignore[arg-type]  # header is set for a complete source
            tr_cfg = _config_dir("transformer", tr_dict)
            transformer = load_transformer_file(
                source.files[DIT], dit_check.quant, dit_check.prefix, tr_cfg, tr_dict, dtype
            )
            vae_cfg = _config_dir("vae", infer_vae_config(source.checks[VAE].header))  # type: ignore[arg-type]  # header is set for a complete source
            vae = AutoencoderKL.from_single_file(
                str(source.files[VAE]), config=str(vae_cfg), local_files_only=True, dtype=dtype
            )
            text_encoder = load_qwen3_file(
                source.files[TEXT_ENCODER],
                infer_text_encoder_config(te_check.header, te_check.prefix),  # type: ignore[arg-type]  # header is set for a complete source
                te_check.prefix,
                dtype,
                quant=te_check.quant,
            )
            scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(
                str(skeleton_dir()), subfolder="scheduler", local_files_only=True
            )
            pipe = ZImagePipeline(
                transformer=transformer,
                vae=vae,
                text_encoder=text_encoder,
                tokenizer=_load_tokenizer(source.tokenizer_dir),
                scheduler=scheduler,
            )
    except ModelError:
        raise
    except torch.cuda.OutOfMemoryError:
        raise
    except MemoryError as exc:
        raise ModelError(
            "Not enough RAM to load the model; close other programs or use the fp8 files."
        ) from exc
    except Exception as exc:
        log.exception("model load failed")
        raise ModelError(f"The model could not be loaded: {exc}".splitlines()[0][:400]) from exc
    vocab = pipe.text_encoder.config.vocab_size
    if len(pipe.tokenizer) > vocab:
        raise ModelError(
            f"The tokenizer ({len(pipe.tokenizer)} tokens) does not match the text encoder ({vocab} tokens); "
            "use the tokenizer that belongs to the model."
        )
    fix_pad_tokens(pipe.transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# diffusers' single-file renames of the original Z-Image keys (the qkv split is done apart).
_DIT_RENAMES = (
    ("final_layer.", "all_final_layer.2-1."),
    ("x_embedder.", "all_x_embedder.2-1."),
    (".attention.out.", ".attention.to_out.0."),
    (".attention.k_norm.", ".attention.norm_k."),
    (".attention.q_norm.", ".attention.norm_q."),
)


def _dit_rename(key: str) -> str:
    """Original → diffusers name; names already in the diffusers layout are kept."""
    if key.startswith(("all_x_embedder.", "all_final_layer.")) or ".to_out.0." in key:
        return key
    for old, new in _DIT_RENAMES:
        key = key.replace(old, new)
    return key


def load_transformer_file(
    path: Path, quant: str, prefix: str, config_dir: Path, config: dict[str, Any], dtype
):
    """The DiT single file in its format: GGUF and scaled fp8 / nvfp4 stay packed
    (:mod:`zitdesk.models.quant`), bf16 / fp16 / plain fp8 go through ``from_single_file``."""
    from diffusers import ZImageTransformer2DModel

    if quant.startswith("gguf-"):
        from zitdesk.models.quant.gguf_load import load_gguf_transformer

        return load_gguf_transformer(path, config_dir, prefix, dtype)
    if quant in ("fp8-scaled", "nvfp4"):
        from zitdesk.models.quant.packed import load_packed_transformer

        return load_packed_transformer(path, prefix, config, dtype, _dit_rename)
    return ZImageTransformer2DModel.from_single_file(
        str(path), config=str(config_dir), local_files_only=True, dtype=dtype
    )


def load_qwen3_file(path: Path, config: dict[str, Any], prefix: str, dtype, quant: str = ""):
    """Load a ComfyUI-style Qwen3 single file into ``transformers.Qwen3Model`` (no copy on disk).

    ``quant``: ``gguf-*`` files are dequantised to ``dtype``; scaled-fp8 / mixed files keep their
    fp8 layers packed (:class:`zitdesk.models.quant.packed.PackedLinear`).
    """
    import torch
    from safetensors import safe_open
    from transformers import Qwen3Config, Qwen3Model

    cfg = Qwen3Config(
        **{k: v for k, v in config.items() if k not in ("architectures", "torch_dtype")}
    )
    with torch.device("meta"):
        model = Qwen3Model(cfg)
    state: dict[str, Any] = {}
    if quant.startswith("gguf-"):
        from zitdesk.models.quant.gguf_load import dequantized_state

        state = dequantized_state(path, dtype)
    elif quant in ("fp8-scaled", "nvfp4"):
        from zitdesk.models.quant.packed import load_packed_qwen3

        state = load_packed_qwen3(model, path, prefix, dtype)
    else:
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():  # noqa: SIM118 - safe_open has no __iter__
                if key.startswith("lm_head."):
                    continue  # tied to embed_tokens; Qwen3Model has no head
                name = key[len(prefix) :] if prefix and key.startswith(prefix) else key
                state[name] = fh.get_tensor(key).to(dtype)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [m for m in missing if "rotary_emb" not in m and not _packed_param(model, m)]
    if missing:
        raise ModelError(
            f"{path.name} is missing {len(missing)} text-encoder weights (e.g. {missing[0]}); the file is incomplete."
        )
    # Buffers (the rotary inv_freq) are not in the file: rebuild that module on the CPU.
    from transformers.models.qwen3.modeling_qwen3 import Qwen3RotaryEmbedding

    with torch.device("cpu"):
        model.rotary_emb = Qwen3RotaryEmbedding(config=cfg)
    leftover = [n for n, b in model.named_buffers() if b.is_meta]
    if leftover:
        raise ModelError(f"Could not initialise the text encoder ({leftover[0]}).")
    return model.eval()


def _packed_param(model, name: str) -> bool:
    """A parameter or buffer of an installed PackedLinear (not in the plain state dict)."""
    from zitdesk.models.quant.packed import PackedLinear

    try:
        return isinstance(model.get_submodule(name.rpartition(".")[0]), PackedLinear)
    except AttributeError:
        return False


def fix_pad_tokens(transformer) -> None:
    """Random-init checkpoints can carry NaN pad tokens (``torch.empty``); real ones never do."""
    import torch

    for name in ("x_pad_token", "cap_pad_token"):
        tok = getattr(transformer, name, None)
        if tok is not None and not torch.isfinite(tok).all():
            with torch.no_grad():
                tok.nan_to_num_(0.0)
