"""The edit flags of ``zitdesk generate`` and the ``zitdesk upscale`` command.

    zitdesk generate --prompt TEXT --init-image PIC [--strength 0.6]
                     [--mask MASK.png] [--mask-blur 4] [--outpaint L,T,R,B]
                     [--controlnet FILE --control-image PIC [--control-type canny|none]
                      [--control-scale 0.75] [--control-start 0] [--control-end 1]]
    zitdesk upscale IMAGE [--factor 2] [--strength 0.3] [--tile 1024] [--overlap 128]
                    [--prompt TEXT] (default: the prompt the image was made with) [generate's flags]

Without ``--width/--height`` an init image gives the size (rounded to 16, grown by the outpaint).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from zitdesk.errors import RequestError

UPSCALE_PROMPT = "high quality, sharp details"


def add_edit_arguments(g: argparse.ArgumentParser) -> None:
    e = g.add_argument_group("image to image, inpaint, ControlNet")
    e.add_argument("--init-image", help="the picture to start from (image to image)")
    e.add_argument("--strength", type=float, default=None, help="denoise strength 0–1 (0.6)")
    e.add_argument("--mask", help="inpaint mask: white = repaint (needs --init-image)")
    e.add_argument("--mask-blur", type=int, default=4, help="mask feather in pixels (4)")
    e.add_argument("--outpaint", metavar="L,T,R,B", help="grow the canvas by these pixels")
    e.add_argument("--controlnet", help="a Z-Image ControlNet file or folder")
    e.add_argument("--control-image", help="the picture the ControlNet follows")
    e.add_argument("--control-type", choices=["canny", "none"], default="canny")
    e.add_argument("--control-scale", type=float, default=0.75)
    e.add_argument("--control-start", type=float, default=0.0)
    e.add_argument("--control-end", type=float, default=1.0)


def _file(path: str | None, label: str) -> str:
    if not path:
        return ""
    if not Path(path).exists():
        raise RequestError(f"{label} {path} does not exist.")
    return str(Path(path).resolve())


def _pads(text: str | None) -> tuple[int, int, int, int]:
    if not text:
        return (0, 0, 0, 0)
    parts = text.replace(" ", "").split(",")
    try:
        pads = tuple(int(p) for p in parts)
    except ValueError:
        pads = ()
    if len(pads) != 4:
        raise RequestError(
            "--outpaint takes four whole numbers: left,top,right,bottom (e.g. 0,0,256,0)."
        )
    return pads


def edit_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The GenerateRequest edit fields (and the size, when an init image sets it) from ``args``."""
    init = _file(getattr(args, "init_image", None), "The init image")
    fields: dict[str, Any] = dict(
        init_image=init,
        mask_image=_file(getattr(args, "mask", None), "The mask"),
        mask_blur=getattr(args, "mask_blur", 4),
        outpaint=_pads(getattr(args, "outpaint", None)),
        controlnet_path=_file(getattr(args, "controlnet", None), "The ControlNet"),
        control_image=_file(getattr(args, "control_image", None), "The control image"),
        control_type=getattr(args, "control_type", "canny"),
        control_scale=getattr(args, "control_scale", 0.75),
        control_start=getattr(args, "control_start", 0.0),
        control_end=getattr(args, "control_end", 1.0),
    )
    upscale = getattr(args, "factor", None)
    if upscale:
        fields.update(
            upscale=float(upscale),
            upscale_tile=args.tile,
            upscale_overlap=args.overlap,
        )
    strength = getattr(args, "strength", None)
    if strength is not None:
        fields["strength"] = strength
    elif upscale:
        fields["strength"] = 0.3
    size = _size(args, init, fields)
    if size:
        fields["width"], fields["height"] = size
    return fields


def _size(args: argparse.Namespace, init: str, fields: dict[str, Any]) -> tuple[int, int] | None:
    from zitdesk.engine.edit.options import upscale_size

    if not init or (args.width is not None and args.height is not None):
        return None
    from PIL import Image

    try:
        with Image.open(init) as im:
            w, h = im.size
    except OSError:
        raise RequestError(f"The init image {os.path.basename(init)} is not a picture.") from None
    left, top, right, bottom = fields["outpaint"]
    w, h = w + left + right, h + top + bottom
    factor = float(fields.get("upscale", 1.0))
    if factor > 1:
        return upscale_size(w, h, factor)
    w16, h16 = max(16, round(w / 16) * 16), max(16, round(h / 16) * 16)
    return (
        args.width if args.width is not None else w16,
        args.height if args.height is not None else h16,
    )


def add_upscale_parser(subparsers: Any) -> argparse.ArgumentParser:
    from zitdesk.cli.generate import add_generate_parser

    u = add_generate_parser(subparsers, name="upscale", help="tiled upscale of a picture")
    u.add_argument("image", help="the picture to upscale")
    u.add_argument("--factor", type=float, default=2.0, help="how many times larger (2)")
    u.add_argument("--tile", type=int, default=1024, help="tile side in pixels (1024)")
    u.add_argument("--overlap", type=int, default=128, help="tile overlap in pixels (128)")
    u.set_defaults(func=cmd_upscale)
    return u


def cmd_upscale(args: argparse.Namespace) -> int:
    from zitdesk.cli.generate import cmd_generate

    args.init_image = args.image
    if not args.prompt:
        args.prompt = _prompt_of(args.image)
    return cmd_generate(args)


def _prompt_of(path: str) -> str:
    """The prompt ``path`` was made with (its PNG parameters), else a neutral one."""
    try:
        from zitdesk.imagemeta import read_parameters

        found = read_parameters(path)
        if found.prompt:
            return found.prompt
    except Exception:  # noqa: BLE001 - a picture without readable parameters
        pass
    return UPSCALE_PROMPT
