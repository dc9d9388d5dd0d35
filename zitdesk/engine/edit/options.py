"""Which edit mode a :class:`~zitdesk.engine.requests.GenerateRequest` asks for, and the checks of
its edit fields (no torch: the CLI, the app and replayed parameters all validate through here)."""

from __future__ import annotations

import math
import os
from typing import Any

from zitdesk.errors import RequestError

TXT2IMG, IMG2IMG, INPAINT = "txt2img", "img2img", "inpaint"
CONTROLNET, CONTROLNET_INPAINT, UPSCALE = "controlnet", "controlnet_inpaint", "upscale"
MODE_LABELS = {
    TXT2IMG: "text to image",
    IMG2IMG: "image to image",
    INPAINT: "inpaint",
    CONTROLNET: "ControlNet",
    CONTROLNET_INPAINT: "ControlNet inpaint",
    UPSCALE: "tiled upscale",
}
CONTROL_TYPES = ("canny", "none")  # "none": the control image already is the map (depth, pose …)
MAX_UPSCALE = 4.0
MAX_PAD = 1024


def mode_of(request: Any) -> str:
    """The edit mode of ``request`` (``txt2img`` when it uses none of the edit fields)."""
    if float(getattr(request, "upscale", 1.0) or 1.0) > 1.0:
        return UPSCALE
    masked = bool(getattr(request, "mask_image", "")) or any(getattr(request, "outpaint", ()) or ())
    if getattr(request, "controlnet_path", ""):
        return CONTROLNET_INPAINT if masked else CONTROLNET
    if masked:
        return INPAINT
    if getattr(request, "init_image", ""):
        return IMG2IMG
    return TXT2IMG


def denoise_steps(steps: int, strength: float) -> int:
    """How many steps a run at ``strength`` denoises (diffusers' img2img ``get_timesteps``)."""
    init = min(steps * strength, steps)
    return steps - int(max(steps - init, 0))


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one side: as few tiles as keep at least ``overlap`` pixels between
    neighbours, spread evenly (multiples of 16), the first at 0 and the last flush with the edge."""
    if size <= tile:
        return [0]
    n = math.ceil((size - overlap) / max(16, tile - overlap))
    n = max(n, 2)
    starts = [round(k * (size - tile) / (n - 1) / 16) * 16 for k in range(n)]
    starts[-1] = size - tile
    return starts


def upscale_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """The output size of upscaling ``width``×``height`` by ``factor`` (multiples of 16)."""
    return (max(16, round(width * factor / 16) * 16), max(16, round(height * factor / 16) * 16))


def upscale_tiles(request: Any) -> int:
    """How many tiles the upscale of ``request`` (output ``width``×``height``) renders."""
    tile = min(int(request.upscale_tile), max(request.width, request.height))
    tw, th = min(tile, request.width), min(tile, request.height)
    return len(tile_starts(request.width, tw, request.upscale_overlap)) * len(
        tile_starts(request.height, th, request.upscale_overlap)
    )


def total_steps(request: Any) -> int:
    """The denoising steps one image of ``request`` takes (what the progress bar counts)."""
    mode = mode_of(request)
    if mode in (IMG2IMG, INPAINT):
        return denoise_steps(request.steps, request.strength)
    if mode == UPSCALE:
        return denoise_steps(request.steps, request.strength) * upscale_tiles(request)
    return request.steps


def _fraction(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RequestError(f"{name} must be a finite number.")
    if not 0 <= value <= 1:
        raise RequestError(f"{name} must be between 0 and 1.")


def _existing(label: str, path: Any) -> None:
    if not isinstance(path, str):
        raise RequestError(f"{label} must be a file path.")
    if path and not os.path.exists(path):
        raise RequestError(f"{label} {os.path.basename(path)} was not found ({path}).")


def validate_edit(request: Any) -> None:
    """RequestError (one sentence) for an edit field of the wrong type, range or combination."""
    _existing("The init image", request.init_image)
    _existing("The mask", request.mask_image)
    _existing("The control image", request.control_image)
    _existing("The ControlNet", request.controlnet_path)
    _fraction("Denoise strength", request.strength)
    for name, label in (("control_start", "ControlNet start"), ("control_end", "ControlNet end")):
        _fraction(label, getattr(request, name))
    scale = request.control_scale
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
        raise RequestError("The ControlNet scale must be a finite number.")
    if not 0 <= scale <= 2:
        raise RequestError("The ControlNet scale must be between 0 and 2 (0.6–1.0 is usual).")
    if request.control_start >= request.control_end:
        raise RequestError("The ControlNet start must come before its end (e.g. 0 and 1).")
    if request.control_type not in CONTROL_TYPES:
        raise RequestError(
            f"Control type {str(request.control_type)[:30]!r} is not known; use canny, or none "
            "when the control image already is the map (depth, pose …)."
        )
    for name, label, low, high in (
        ("mask_blur", "Mask blur", 0, 256),
        ("upscale_tile", "The upscale tile size", 64, 2048),
        ("upscale_overlap", "The upscale tile overlap", 0, 1024),
    ):
        value = getattr(request, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise RequestError(f"{label} must be a whole number.")
        if not low <= value <= high:
            raise RequestError(f"{label} must be between {low} and {high} pixels.")
    pads = request.outpaint
    if (
        not isinstance(pads, tuple)
        or len(pads) != 4
        or not all(isinstance(p, int) and not isinstance(p, bool) for p in pads)
        or not all(0 <= p <= MAX_PAD for p in pads)
    ):
        raise RequestError(
            f"Outpaint takes four whole numbers of pixels (left, top, right, bottom), each 0–{MAX_PAD}."
        )
    up = request.upscale
    if isinstance(up, bool) or not isinstance(up, (int, float)) or not math.isfinite(up):
        raise RequestError("The upscale factor must be a finite number.")
    if not 1 <= up <= MAX_UPSCALE:
        raise RequestError(f"The upscale factor must be between 1 and {MAX_UPSCALE:g} (e.g. 2).")
    if request.upscale_tile % 16:
        raise RequestError("The upscale tile size must be a multiple of 16 (e.g. 1024).")
    if request.upscale_overlap >= request.upscale_tile // 2:
        raise RequestError("The upscale tile overlap must be less than half the tile size.")
    mode = mode_of(request)
    needs_init = mode in (IMG2IMG, INPAINT, UPSCALE) or (mode == CONTROLNET_INPAINT)
    if needs_init and not request.init_image:
        what = "Upscaling" if mode == UPSCALE else "Inpainting and outpainting"
        raise RequestError(f"{what} needs an init image; choose the picture to start from.")
    if request.controlnet_path and not request.control_image:
        raise RequestError("A ControlNet needs a control image; drop the picture it should follow.")
    if request.control_image and not request.controlnet_path:
        raise RequestError(
            "A control image needs a ControlNet file; choose one or clear the image."
        )
    if mode == CONTROLNET and request.init_image:
        raise RequestError(
            "ControlNet runs from noise or with a mask (inpaint); clear the init image, or paint a mask."
        )
    if mode == UPSCALE and (request.controlnet_path or request.mask_image or any(pads)):
        raise RequestError("Upscale works on the whole picture; clear the mask and the ControlNet.")


def work_size(request: Any) -> tuple[int, int]:
    """The size one denoise runs at: a tile for the tiled upscale, else the image."""
    if mode_of(request) == UPSCALE:
        tile = int(request.upscale_tile)
        return min(tile, request.width), min(tile, request.height)
    return request.width, request.height


def controlnet_bytes(request: Any) -> int:
    """The ControlNet's weights on disk (what it adds to the GPU), 0 without one."""
    path = getattr(request, "controlnet_path", "")
    if not path:
        return 0
    if os.path.isdir(path):
        path = os.path.join(path, "diffusion_pytorch_model.safetensors")
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
