"""A tiny random Z-Image ControlNet (the real ``ZImageControlNetModel`` class, widths of the tiny
DiT in zitdesk.models.tiny), saved in the diffusers folder layout or as one VideoX-Fun file."""

from __future__ import annotations

from pathlib import Path

from zitdesk.io import atomic_save_tensors
from zitdesk.models.tiny import TINY_TRANSFORMER


def tiny_controlnet_config(inpaint: bool = True) -> dict:
    t = TINY_TRANSFORMER
    return dict(
        control_layers_places=list(range(t["n_layers"])),
        control_refiner_layers_places=list(range(t["n_refiner_layers"])),
        control_in_dim=33 if inpaint else t["in_channels"],
        add_control_noise_refiner="control_noise_refiner",
        all_patch_size=list(t["all_patch_size"]),
        all_f_patch_size=list(t["all_f_patch_size"]),
        dim=t["dim"],
        n_refiner_layers=t["n_refiner_layers"],
        n_heads=t["n_heads"],
        n_kv_heads=t["n_kv_heads"],
        norm_eps=t["norm_eps"],
        qk_norm=t["qk_norm"],
    )


def make_tiny_controlnet(target: Path, layout: str = "diffusers", seed: int = 0, **cfg) -> Path:
    """Save a tiny ControlNet to ``target`` (a folder for ``diffusers``, a ``.safetensors`` file
    for ``file``). Its zero-initialised projections get random values, so it changes images."""
    import torch
    from diffusers import ZImageControlNetModel

    torch.manual_seed(seed)
    model = ZImageControlNetModel(**{**tiny_controlnet_config(), **cfg})
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "proj" in name:
                p.normal_(0.0, 0.3)
    target = Path(target)
    if layout == "diffusers":
        model.save_pretrained(target, safe_serialization=True)
        return target
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    atomic_save_tensors(target, state)
    return target
