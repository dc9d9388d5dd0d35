"""Tiled upscale: the picture is enlarged (Lanczos) to the output size, then every tile goes
through image-to-image at a low denoise strength and the tiles are blended back.

Each tile is denoised and decoded on its own, so the peak memory is that of one tile (a 1024²
tile fits a 12 GB card in model-offload mode) whatever the output size. Neighbouring tiles
overlap by ``upscale_overlap`` pixels or more; each tile's weight ramps linearly from near 0 to
1 across its overlapping sides (never at the picture's border), and the output is the
weight-normalised sum, so the weights — and the picture — stay continuous across every seam.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from zitdesk.engine.edit import images
from zitdesk.engine.edit.options import denoise_steps, tile_starts


def ramp(length: int, overlap: int, before: bool, after: bool) -> np.ndarray:
    """Blend weights along one side of a tile: rising over ``overlap`` pixels where a tile lies
    ``before`` it, falling where one lies ``after`` it, 1 elsewhere (never 0)."""
    w = np.ones(length, np.float32)
    o = min(overlap, length // 2)
    if o > 0:
        edge = np.arange(1, o + 1, dtype=np.float32) / (o + 1)
        if before:
            w[:o] = edge
        if after:
            w[-o:] = np.minimum(w[-o:], edge[::-1])
    return w


def tiles(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """The tile boxes (left, top, right, bottom) covering ``width``×``height``, row by row."""
    tw, th = min(tile, width), min(tile, height)
    xs, ys = tile_starts(width, tw, overlap), tile_starts(height, th, overlap)
    return [(x, y, x + tw, y + th) for y in ys for x in xs]


def blend(
    size: tuple[int, int],
    boxes: list[tuple[int, int, int, int]],
    parts: list[Image.Image],
    overlap: int,
) -> Image.Image:
    """The tiles ``parts`` (at ``boxes``) blended into one ``size`` picture (see the module doc)."""
    width, height = size
    acc = np.zeros((height, width, 3), np.float64)
    total = np.zeros((height, width), np.float64)
    for (x0, y0, x1, y1), part in zip(boxes, parts, strict=True):
        arr = np.asarray(images.fit(part.convert("RGB"), x1 - x0, y1 - y0), np.float64)
        wx = ramp(x1 - x0, overlap, x0 > 0, x1 < width)
        wy = ramp(y1 - y0, overlap, y0 > 0, y1 < height)
        w = np.outer(wy, wx)
        acc[y0:y1, x0:x1] += arr * w[..., None]
        total[y0:y1, x0:x1] += w
    out = acc / np.maximum(total, 1e-9)[..., None]
    return Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))


def upscale_image(pipe: Any, request: Any, index: int, embeds: Any, neg: Any, on_step: Any = None):
    """The tiled upscale of ``request.init_image`` to ``request.width``×``request.height``."""
    import torch
    from diffusers import ZImageImg2ImgPipeline

    from zitdesk.engine.edit.render import _common, shared_pipeline

    source = images.open_image(request.init_image, "The picture to upscale")
    big = images.fit(source, request.width, request.height)
    boxes = tiles(request.width, request.height, request.upscale_tile, request.upscale_overlap)
    per_tile = denoise_steps(request.steps, request.strength)
    edit = shared_pipeline(ZImageImg2ImgPipeline, pipe)
    parts: list[Image.Image] = []
    for k, (x0, y0, x1, y1) in enumerate(boxes):

        def step(p, i, t, kwargs, _k=k):
            return on_step(p, _k * per_tile + i, t, kwargs) if on_step is not None else {}

        kwargs = _common(request, index, embeds, neg, step)
        with torch.inference_mode():
            out = edit(
                image=big.crop((x0, y0, x1, y1)),
                strength=request.strength,
                height=y1 - y0,
                width=x1 - x0,
                **kwargs,
            ).images[0]
        parts.append(out)
    return blend((request.width, request.height), boxes, parts, request.upscale_overlap)
