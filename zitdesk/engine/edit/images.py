"""Pictures for the edit modes, with Pillow and NumPy only (no torch, the UI uses them too): the
init image, the mask (feathered, outpaint canvas), the canny map, pasting a result back."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from zitdesk.errors import RequestError

MAX_PIXELS = 64_000_000  # a bigger file is refused before it is decoded


def open_image(path: str, label: str = "The image") -> Image.Image:
    """``path`` as an RGB picture, or RequestError with one sentence."""
    name = os.path.basename(path)
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise RequestError(f"{label} {name} is too large ({im.width}×{im.height}).")
            im.load()
            turned = ImageOps.exif_transpose(im)  # a phone photo as it is seen, not as stored
            if turned is not None and turned is not im:
                im = turned  # type: ignore[assignment]
            if im.mode in ("RGBA", "LA", "P"):
                rgba = im.convert("RGBA")
                flat = Image.new("RGBA", im.size, (255, 255, 255, 255))
                return Image.alpha_composite(flat, rgba).convert("RGB")
            return im.convert("RGB")
    except RequestError:
        raise
    except FileNotFoundError:
        raise RequestError(f"{label} {name} was not found.") from None
    except (OSError, ValueError, Image.DecompressionBombError):
        raise RequestError(f"{label} {name} is not a picture Pillow can read.") from None


def open_mask(path: str) -> Image.Image:
    """A mask file as 8-bit grey, white = repaint. A picture with transparency gives its
    transparent part (what an editor erased) as the area to repaint."""
    name = os.path.basename(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                alpha = np.asarray(im.convert("RGBA"))[..., 3]
                if alpha.min() < 255:
                    return Image.fromarray(255 - alpha)
            return im.convert("L")
    except FileNotFoundError:
        raise RequestError(f"The mask {name} was not found.") from None
    except (OSError, ValueError, Image.DecompressionBombError):
        raise RequestError(f"The mask {name} is not a picture Pillow can read.") from None


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """``image`` at ``width``×``height`` (Lanczos; unchanged when it already is)."""
    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.LANCZOS)


def extend_canvas(
    image: Image.Image, mask: Image.Image | None, pads: tuple[int, int, int, int], blur: int
) -> tuple[Image.Image, Image.Image]:
    """Outpaint: ``image`` with ``pads`` (left, top, right, bottom) pixels added, filled from its
    edge colours, and the mask (``mask`` grown the same way) white over the new area and
    ``blur`` pixels into the old one, so the seam is repainted too."""
    left, top, right, bottom = pads
    rgb = np.asarray(image.convert("RGB"))
    grown = np.pad(rgb, ((top, bottom), (left, right), (0, 0)), mode="edge")
    h, w = grown.shape[:2]
    new = np.full((h, w), 255, np.uint8)
    inner = new[top : top + rgb.shape[0], left : left + rgb.shape[1]]
    old = np.asarray(mask.convert("L")) if mask is not None else np.zeros(rgb.shape[:2], np.uint8)
    inner[:] = old
    m = max(0, blur)
    if m:  # into the old picture along the sides that grew
        if left:
            inner[:, :m] = 255
        if right:
            inner[:, -m:] = 255
        if top:
            inner[:m, :] = 255
        if bottom:
            inner[-m:, :] = 255
    return Image.fromarray(grown), Image.fromarray(new)


def hard_mask(mask: Image.Image) -> Image.Image:
    """White where ``mask`` is at least half white (what the inpaint pipeline repaints)."""
    return mask.convert("L").point(lambda v: 255 if v >= 128 else 0)


def feathered(mask: Image.Image, blur: int) -> Image.Image:
    """``mask`` with its edge softened over about ``blur`` pixels (0: unchanged)."""
    mask = mask.convert("L")
    return mask.filter(ImageFilter.GaussianBlur(blur / 2)) if blur > 0 else mask


def paste_back(
    original: Image.Image, result: Image.Image, mask: Image.Image, blur: int
) -> Image.Image:
    """The result where the mask is white, the original elsewhere, blended over the feather:
    pixels outside the mask come back exactly (the VAE round trip changes them slightly)."""
    soft = feathered(hard_mask(mask), blur)
    # Keep the repaint full strength inside the hard mask, blend only outside its edge.
    soft = Image.fromarray(np.maximum(np.asarray(soft), np.asarray(hard_mask(mask))))
    result = fit(result.convert("RGB"), *original.size)
    return Image.composite(result, original.convert("RGB"), soft)


# --- canny --------------------------------------------------------------------------------


def _shifted(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(a)
    h, w = a.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def canny(image: Image.Image, low: int = 100, high: int = 200) -> Image.Image:
    """Canny edges of ``image`` (white on black, RGB, same size) with NumPy: Gaussian blur,
    Sobel gradients, non-maximum suppression in four directions, double threshold, hysteresis.
    ``low``/``high`` are on the usual 0–255 gradient scale (OpenCV's defaults for ControlNet)."""
    grey = image.convert("L").filter(ImageFilter.GaussianBlur(0.8))  # noise only, keep edges
    g = np.asarray(grey, dtype=np.float32)
    p = np.pad(g, 1, mode="edge")
    gx = (p[:-2, 2:] + 2 * p[1:-1, 2:] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[1:-1, :-2] + p[2:, :-2])
    gy = (p[2:, :-2] + 2 * p[2:, 1:-1] + p[2:, 2:]) - (p[:-2, :-2] + 2 * p[:-2, 1:-1] + p[:-2, 2:])
    mag = np.hypot(gx, gy)
    angle = (np.degrees(np.arctan2(gy, gx)) + 180.0) % 180.0
    keep = np.zeros(mag.shape, bool)
    for lo, hi, (dy, dx) in (
        (0, 22.5, (0, 1)),
        (157.5, 180.1, (0, 1)),
        (22.5, 67.5, (1, 1)),
        (67.5, 112.5, (1, 0)),
        (112.5, 157.5, (1, -1)),
    ):
        sel = (angle >= lo) & (angle < hi)
        a, b = _shifted(mag, dy, dx), _shifted(mag, -dy, -dx)
        keep |= sel & (mag >= a) & (mag >= b)
    mag = np.where(keep, mag, 0)
    strong = mag >= high
    weak = mag >= low
    edges = strong.copy()
    for _ in range(max(mag.shape)):  # grow strong edges along weak ones until nothing changes
        grown = edges.copy()
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    grown |= _shifted(edges, dy, dx)
        grown &= weak
        if np.array_equal(grown, edges):
            break
        edges = grown
    out = edges.astype(np.uint8) * 255
    return Image.fromarray(np.stack([out] * 3, axis=-1))


def control_map(image: Image.Image, control_type: str) -> Image.Image:
    """The map a ControlNet is given for ``image``: its canny edges, or the image itself when it
    already is a map (``none``: depth, pose, … made elsewhere)."""
    if control_type == "canny":
        return canny(image)
    return image.convert("RGB")


def as_array(image: Any) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)
