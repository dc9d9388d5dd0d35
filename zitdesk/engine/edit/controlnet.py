"""Z-Image ControlNet files: a header check that refuses other families with one sentence
(torch-free, the UI checks a file when it is chosen), and the loader (engine thread).

Accepted: a diffusers folder (``config.json`` + ``diffusion_pytorch_model.safetensors``, as
``ZImageControlNetModel.save_pretrained`` writes it) or one ``.safetensors`` file in the
VideoX-Fun layout of alibaba-pai's "Z-Image-Turbo-Fun-Controlnet-Union" releases (1.0, 2.0, 2.1),
whose config is read from the tensor shapes (no download).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zitdesk.errors import ModelError
from zitdesk.st_header import SafetensorsHeader, read_header

WEIGHTS = "diffusion_pytorch_model.safetensors"
_EMBEDDER = re.compile(r"^control_all_x_embedder\.(\d+)-(\d+)\.weight$")

# Keys that name ControlNets of other families (diffusers and original layouts).
_FOREIGN_CONTROLNETS = (
    ("input_hint_block.", "a Stable Diffusion / SDXL ControlNet"),
    ("controlnet_cond_embedding.", "a Stable Diffusion / SDXL ControlNet"),
    ("controlnet_down_blocks.", "a Stable Diffusion / SDXL ControlNet"),
    ("controlnet_x_embedder.", "a Flux or SD3 ControlNet"),
    ("controlnet_blocks.", "a Flux or SD3 ControlNet"),
    ("controlnet_single_blocks.", "a Flux ControlNet"),
    ("img_in.", "a Flux model"),
)


@dataclass(frozen=True)
class ControlNetInfo:
    """What a Z-Image ControlNet file holds (from its header)."""

    path: Path
    weights: Path
    config: dict[str, Any] = field(default_factory=dict)
    version: str = ""  # "1.0", "2.0", "2.1" or "" (a diffusers folder)

    @property
    def dim(self) -> int:
        return int(self.config.get("dim", 0))

    @property
    def label(self) -> str:
        n = len(self.config.get("control_layers_places", []))
        v = f" {self.version}" if self.version else ""
        return f"{self.path.name} (Z-Image ControlNet{v}, {n} control layers)"


def _count(keys: set[str], prefix: str) -> int:
    idx = {int(m.group(1)) for k in keys if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    return max(idx) + 1 if idx else 0


def _refusal(header: SafetensorsHeader) -> str:
    from zitdesk.models.families import detect_checkpoint_family

    name = header.path.name
    keys = set(header.tensors)
    if not keys:
        return f"{name} holds no tensors."
    for needle, what in _FOREIGN_CONTROLNETS:
        if any(needle in k for k in keys):
            return f"{name} is {what}, not a Z-Image ControlNet; choose a Z-Image (Turbo-Fun) ControlNet file."
    family = detect_checkpoint_family(keys, {k: v.shape for k, v in header.tensors.items()})
    what = {
        "lora": "a LoRA (add it in the LoRA stack)",
        "zimage-dit": "a Z-Image base model (DiT), not its ControlNet",
        "flux-vae": "a VAE",
        "qwen3": "a text encoder",
    }.get(
        family, f"a {family} file" if family != "unknown" else "no ControlNet layout zitdesk knows"
    )
    return f"{name} is {what}; choose a Z-Image ControlNet file (e.g. Z-Image-Turbo-Fun-Controlnet-Union)."


def infer_config(header: SafetensorsHeader, dit_config: dict[str, Any] | None = None) -> dict:
    """A ``ZImageControlNetModel`` config from the tensor shapes of a VideoX-Fun file."""
    dit = dict(dit_config or {})
    keys = set(header.tensors)
    emb = [(k, m) for k in keys if (m := _EMBEDDER.match(k))]
    if not emb or "control_layers.0.before_proj.weight" not in keys:
        raise ModelError(_refusal(header))
    key, m = emb[0]
    patch, fpatch = int(m.group(1)), int(m.group(2))
    dim, flat = header.tensors[key].shape[:2]
    n_layers = _count(keys, "control_layers.")
    n_refiner = _count(keys, "control_noise_refiner.")
    dit_layers = int(dit.get("n_layers", 30))
    step = max(1, dit_layers // max(1, n_layers))
    places = list(range(0, dit_layers, step))[:n_layers]
    refiner_places = list(range(int(dit.get("n_refiner_layers", max(n_refiner, 2)))))
    has_before = "control_noise_refiner.0.before_proj.weight" in keys
    mode: str | None = None
    if n_layers >= 15 or has_before:  # the 2.x layout (diffusers' single-file detection)
        mode = "control_noise_refiner" if has_before else "control_layers"
    head_dim = sum(dit.get("axes_dims", [32, 48, 48]))
    heads = int(dit.get("n_heads", max(1, dim // head_dim)))
    return {
        "control_layers_places": places,
        "control_refiner_layers_places": refiner_places,
        "control_in_dim": flat // (patch * patch * fpatch),
        "add_control_noise_refiner": mode,
        "all_patch_size": [patch],
        "all_f_patch_size": [fpatch],
        "dim": int(dim),
        "n_refiner_layers": int(dit.get("n_refiner_layers", max(n_refiner, 2))),
        "n_heads": heads,
        "n_kv_heads": int(dit.get("n_kv_heads", heads)),
        "norm_eps": float(dit.get("norm_eps", 1e-5)),
        "qk_norm": bool(dit.get("qk_norm", True)),
    }


def check_controlnet(path: str | Path, dit_config: dict[str, Any] | None = None) -> ControlNetInfo:
    """The ControlNet at ``path`` (file or diffusers folder), or ModelError with one sentence:
    a missing file, another family, or a ControlNet for a DiT of another width than the model's
    (``dit_config``: the loaded transformer's config, when known)."""
    p = Path(path)
    if p.is_dir():
        cfg_file, weights = p / "config.json", p / WEIGHTS
        if not cfg_file.is_file() or not weights.is_file():
            raise ModelError(
                f"The folder {p.name} is not a ControlNet (no config.json and {WEIGHTS} in it)."
            )
        try:
            config = json.loads(cfg_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ModelError(f"The config.json of ControlNet {p.name} cannot be read.") from None
        if not isinstance(config, dict) or config.get("_class_name") != "ZImageControlNetModel":
            raise ModelError(
                f"{p.name} is not a Z-Image ControlNet (its config names another model)."
            )
        header = _header(weights)
        if not any(_EMBEDDER.match(k) for k in header.tensors):
            raise ModelError(_refusal(header))
        info = ControlNetInfo(
            p, weights, {k: v for k, v in config.items() if not k.startswith("_")}
        )
    else:
        if p.suffix.lower() != ".safetensors":
            raise ModelError(
                f"{p.name} is not a .safetensors file; choose a Z-Image ControlNet file."
            )
        header = _header(p)
        config = infer_config(header, dit_config)
        keys = set(header.tensors)
        version = "1.0"
        if config["add_control_noise_refiner"] == "control_layers":
            version = "2.0"
        elif config["add_control_noise_refiner"] == "control_noise_refiner":
            version = "2.1"
        info = ControlNetInfo(p, p, config, version if keys else "")
    want = int((dit_config or {}).get("dim", 0))
    if want and info.dim and info.dim != want:
        raise ModelError(
            f"{info.path.name} is a Z-Image ControlNet for a model of width {info.dim}, but the "
            f"loaded model has width {want}; choose the ControlNet made for this model."
        )
    return info


def _header(path: Path) -> SafetensorsHeader:
    try:
        return read_header(path)
    except FileNotFoundError:
        raise ModelError(f"The ControlNet {path.name} was not found.") from None
    except Exception as exc:  # noqa: BLE001 - FileFormatError carries a plain sentence already
        raise ModelError(str(exc)) from exc


def load_controlnet(info: ControlNetInfo, transformer: Any, device: Any = "cpu") -> Any:
    """The ``ZImageControlNetModel`` of ``info``, in the transformer's dtype on ``device``, with
    only its own weights loaded (the embedders and refiners are the transformer's: the pipeline
    shares them through ``ZImageControlNetModel.from_transformer``)."""
    import torch
    from accelerate import init_empty_weights
    from diffusers import ZImageControlNetModel
    from safetensors.torch import load_file

    config = dict(info.config)
    state = {k: v for k, v in load_file(str(info.weights)).items() if k.startswith("control_")}
    before = state.get("control_noise_refiner.0.before_proj.weight")
    if config.get("add_control_noise_refiner") == "control_noise_refiner" and before is not None:
        if not bool(before.any()):  # Union 2.0 ships unused, all-zero refiner weights
            config["add_control_noise_refiner"] = "control_layers"
    with init_empty_weights():
        model = ZImageControlNetModel.from_config(config)
    if config.get("add_control_noise_refiner") == "control_layers":
        state = {k: v for k, v in state.items() if not k.startswith("control_noise_refiner.")}
    own = {k for k, _ in model.named_parameters()} | {k for k, _ in model.named_buffers()}
    missing = sorted(own - set(state))
    unknown = sorted(set(state) - own)
    if missing or unknown:
        detail = f"missing {missing[0]}" if missing else f"unexpected {unknown[0]}"
        raise ModelError(
            f"{info.path.name} does not match the Z-Image ControlNet layout ({detail}); it may be "
            "damaged or of another release."
        )
    dtype = getattr(transformer, "dtype", torch.bfloat16)
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        dtype = torch.bfloat16  # fp8 storage: the ControlNet computes in bf16
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, assign=True)
    model.to(device=device, dtype=dtype)
    return model.eval().requires_grad_(False)
