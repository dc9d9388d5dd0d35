#!/usr/bin/env python3
"""Draw the zitdesk icon with Pillow (no fonts, no downloads) into ``resources/icons/``.

    python packaging/make_icons.py      # writes zitdesk.png (256 px), zitdesk-512.png, zitdesk.ico

The outputs are committed; rerun only to change the design.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "resources" / "icons"
S = 1024  # drawn large, then downsampled (anti-aliasing)


def _gradient(size: int, top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    g = Image.new("RGB", (1, size))
    for y in range(size):
        t = y / (size - 1)
        g.putpixel((0, y), tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
    return g.resize((size, size))


def draw(size: int = S) -> Image.Image:
    k = size / 1024
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).rounded_rectangle(
        (40 * k, 40 * k, 984 * k, 984 * k), radius=200 * k, fill=255
    )
    img.paste(_gradient(size, (43, 52, 92), (18, 20, 36)), (0, 0), mask)

    # The "Z": top bar, diagonal, bottom bar, as one polygon.
    z = [
        (250, 240),
        (780, 240),
        (780, 350),
        (420, 680),
        (780, 680),
        (780, 790),
        (250, 790),
        (250, 680),
        (610, 350),
        (250, 350),
    ]
    glow = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(glow).polygon([(x * k, y * k) for x, y in z], fill=(120, 200, 255, 170))
    img.alpha_composite(glow.filter(ImageFilter.GaussianBlur(28 * k)))
    ImageDraw.Draw(img).polygon([(x * k, y * k) for x, y in z], fill=(236, 244, 255, 255))

    # A four-point spark at the top right ("turbo").
    cx, cy, r, w = 800, 215, 120, 26
    spark = [
        (cx, cy - r),
        (cx + w, cy - w),
        (cx + r, cy),
        (cx + w, cy + w),
        (cx, cy + r),
        (cx - w, cy + w),
        (cx - r, cy),
        (cx - w, cy - w),
    ]
    ImageDraw.Draw(img).polygon([(x * k, y * k) for x, y in spark], fill=(255, 196, 64, 255))
    return img


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    big = draw()
    big.resize((512, 512), Image.LANCZOS).save(OUT / "zitdesk-512.png", optimize=True)
    big.resize((256, 256), Image.LANCZOS).save(OUT / "zitdesk.png", optimize=True)
    big.resize((256, 256), Image.LANCZOS).save(
        OUT / "zitdesk.ico",
        sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)],
    )
    for p in sorted(OUT.iterdir()):
        print(p.relative_to(ROOT), p.stat().st_size)


if __name__ == "__main__":
    main()
