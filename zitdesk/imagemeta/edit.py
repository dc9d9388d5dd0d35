"""What an edit-mode image records (image-to-image, inpaint, ControlNet, upscale): the
A1111-style settings (``Denoising strength``, ``Mask blur``, ``ControlNet 0`` …) and the SHA-256
of every input picture and file, so a shared image names its sources without their folders."""

from __future__ import annotations

import os
from typing import Any

from zitdesk.hashing import autov2


def _sha256(path: str) -> str:
    from zitdesk.hashing import shared_cache

    try:
        st = os.stat(path)
        cache = shared_cache()
        sha = cache.compute(str(path), st.st_size, st.st_mtime_ns).sha256
        cache.save()
        return sha
    except OSError:
        return ""


def _num(value: float) -> str:
    return f"{float(value):.4g}"


def edit_parameters(request: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """``(settings, hashes)`` for ``request``: infotext settings in A1111's names, and the
    ``<field>_sha256`` values added to the embedded request. Both empty for text-to-image."""
    from zitdesk.engine.edit.options import (
        CONTROLNET,
        CONTROLNET_INPAINT,
        INPAINT,
        MODE_LABELS,
        TXT2IMG,
        UPSCALE,
        mode_of,
    )

    mode = mode_of(request)
    if mode == TXT2IMG:
        return {}, {}
    hashes: dict[str, str] = {}
    for name in ("init_image", "mask_image", "control_image", "controlnet_path"):
        path = getattr(request, name, "")
        if path:
            sha = _sha256(path)
            if sha:
                hashes[f"{name}_sha256"] = sha
    settings: dict[str, Any] = {"Edit mode": MODE_LABELS[mode]}
    if mode not in (CONTROLNET, CONTROLNET_INPAINT):  # ControlNet inpaint starts from noise
        settings["Denoising strength"] = _num(request.strength)
    if mode != CONTROLNET:
        if hashes.get("init_image_sha256"):
            settings["Init image hash"] = autov2(hashes["init_image_sha256"])
    if mode in (INPAINT, CONTROLNET_INPAINT):
        settings["Mask blur"] = int(request.mask_blur)
        if hashes.get("mask_image_sha256"):
            settings["Mask hash"] = autov2(hashes["mask_image_sha256"])
        if any(request.outpaint):
            settings["Outpaint"] = " ".join(str(int(p)) for p in request.outpaint)
    if mode in (CONTROLNET, CONTROLNET_INPAINT):
        name = os.path.basename(str(request.controlnet_path).rstrip("\\/"))
        stem = name[: -len(".safetensors")] if name.lower().endswith(".safetensors") else name
        short = (
            autov2(hashes["controlnet_path_sha256"]) if "controlnet_path_sha256" in hashes else ""
        )
        model = f"{stem} [{short}]" if short else stem
        settings["ControlNet 0"] = (
            f"Module: {request.control_type}, Model: {model}, Weight: {_num(request.control_scale)}, "
            f"Guidance Start: {_num(request.control_start)}, Guidance End: {_num(request.control_end)}"
        )
        if hashes.get("control_image_sha256"):
            settings["Control image hash"] = autov2(hashes["control_image_sha256"])
    if mode == UPSCALE:
        settings["Upscale factor"] = _num(request.upscale)
        settings["Upscale tile"] = int(request.upscale_tile)
        settings["SD upscale overlap"] = int(request.upscale_overlap)
    return settings, hashes
