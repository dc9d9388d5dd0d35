"""``zitdesk generate``: images from a prompt, over the same engine as the app.

    zitdesk generate --prompt TEXT [--model PATH] [--width N] [--height N] [--steps N] [--seed N]
                     [--count N] [--lora PATH:WEIGHT]... [--out DIR] [--json] [--quiet]

Written paths on stdout (``--json``: one JSON list at the end); progress, LoRA reports and
warnings on stderr (:class:`~zitdesk.cli.events.EventPrinter`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path
from typing import Any

from zitdesk.cli.events import EventPrinter
from zitdesk.cli.variant_args import add_variant_args, apply_variant_args, lora_notes
from zitdesk.errors import RequestError, ZitdeskError


def add_generate_parser(
    subparsers: Any, name: str = "generate", help: str = "generate images"
) -> argparse.ArgumentParser:
    from zitdesk.cli.edit import add_edit_arguments
    from zitdesk.engine.requests import MemoryMode

    g = subparsers.add_parser(name, help=help)
    g.add_argument("--prompt", required=name == "generate")
    g.add_argument("--negative", default="")
    g.add_argument(
        "--model", help="diffusers folder, HF-cache model folder, or folder of ComfyUI files"
    )
    g.add_argument("--width", type=int, default=None, help="1024, or the init image's")
    g.add_argument("--height", type=int, default=None, help="1024, or the init image's")
    g.add_argument("--steps", type=int, default=None, help="default: the variant's (Turbo 8)")
    g.add_argument("--seed", type=int, default=None, help="default: random")
    g.add_argument("--count", type=int, default=1)
    g.add_argument("--guidance", type=float, default=None, help="CFG (0 = off; Turbo's default)")
    g.add_argument("--shift", type=float, default=None, help="default: the variant's (Turbo 3)")
    add_variant_args(g)  # --variant, --variety, --cfg-normalization (zitdesk.cli.variant_args)
    g.add_argument("--lora", action="append", metavar="PATH:WEIGHT")
    g.add_argument("--memory-mode", choices=[m.value for m in MemoryMode], default="gpu")
    g.add_argument("--vae-tiling", action="store_true")
    g.add_argument(
        "--compile",
        action="store_true",
        help="compile the DiT blocks (CUDA; already the default with --speed auto)",
    )
    g.add_argument(
        "--speed",
        choices=["auto", "fp8", "off"],
        default="auto",
        help="auto: compile (and fp8 compute in fp8 mode) where the GPU supports it; fp8: fp8 "
        "compute on fp8 tensor cores; off: eager bf16 (also ZITDESK_SPEED=off)",
    )
    g.add_argument("--no-compile", action="store_true", help="never compile (same as --speed off)")
    g.add_argument("--unload-text-encoder", action="store_true")
    g.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: auto)")
    g.add_argument("--out", help="output folder (default: the app's outputs folder)")
    g.add_argument("--json", action="store_true", help="print a JSON list of written files")
    g.add_argument("--quiet", action="store_true")
    add_edit_arguments(g)  # --init-image, --strength, --mask, --outpaint, --controlnet …
    g.set_defaults(func=cmd_generate)
    return g


def parse_lora(text: str):
    """``PATH:WEIGHT`` (weight optional, default 1.0). Windows drive letters are handled."""
    from zitdesk.engine.requests import LoraSpec

    path, weight = text, 1.0
    head, sep, tail = text.rpartition(":")
    if sep and head and not (len(head) == 1 and head.isalpha()):
        try:
            weight = float(tail)
            path = head
        except ValueError:
            path = text
    if not Path(path).is_file():
        raise RequestError(f"LoRA file {path} does not exist.")
    return LoraSpec(path=str(Path(path).resolve()), weight=weight)


def _describe(printer: EventPrinter, ev: Any) -> None:
    from zitdesk.engine.events import ImageReady, LoraReport, StepProgress

    if isinstance(ev, StepProgress):
        printer.progress(
            ev.image_index * ev.total + ev.step, f"image {ev.image_index + 1}/{ev.image_count}"
        )
    elif isinstance(ev, LoraReport) and printer.show_info:
        name = Path(ev.path).name
        printer.info(
            f"LoRA {name}: {ev.matched}/{ev.total_targets} modules"
            + (f", {len(ev.unknown_keys)} unknown keys skipped" if ev.unknown_keys else "")
        )
        for text in ev.warnings:
            printer.warn(f"LoRA {name}: {text}")
    elif isinstance(ev, ImageReady):
        printer.result(ev.path)


def cmd_generate(args: argparse.Namespace) -> int:
    from zitdesk.cli.edit import edit_fields
    from zitdesk.engine.cancel import CancelToken
    from zitdesk.engine.edit import total_steps
    from zitdesk.engine.generate import GenerationEngine
    from zitdesk.engine.requests import GenerateRequest, MemoryMode, require_device

    loras = tuple(parse_lora(x) for x in args.lora or ())
    variant = apply_variant_args(args)  # steps/guidance/shift not given: the variant's defaults
    edit = edit_fields(args)  # init image, mask, ControlNet, upscale; the size of an init image
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    req = GenerateRequest(
        prompt=args.prompt,
        # "is not None", not "or": --width 0 must reach validation and be refused, not become 1024
        width=edit.pop("width", args.width if args.width is not None else 1024),
        height=edit.pop("height", args.height if args.height is not None else 1024),
        steps=args.steps,
        seed=seed,
        count=args.count,
        guidance=args.guidance,
        shift=args.shift,
        negative_prompt=args.negative or "",
        loras=loras,
        memory_mode=MemoryMode(args.memory_mode),
        vae_tiling=args.vae_tiling,
        unload_text_encoder=args.unload_text_encoder,
        compile=args.compile and not args.no_compile,
        speed="off" if args.no_compile else args.speed,
        output_dir=str(Path(args.out).resolve()) if args.out else "",
        model_path=args.model or "",
        preview_every=0,
        **variant,
        **edit,
    ).validate()
    if args.model:
        from zitdesk.models.discovery import resolve_model

        src = resolve_model(args.model)  # fail fast, before any progress bar
        if not src.complete:
            raise ZitdeskError(src.describe())
    device = require_device(args.device)
    if device == "auto" and os.environ.get("ZITDESK_DEVICE"):
        require_device(os.environ["ZITDESK_DEVICE"])  # the engine's default: refuse it plainly too
    engine = GenerationEngine(device=None if device == "auto" else device)
    cancel = CancelToken()
    quiet = args.json or args.quiet
    printer = EventPrinter(
        _describe,
        total_steps(req) * req.count,
        bar=not quiet,
        info=not quiet,
        warnings=not args.json,
    )
    for note in lora_notes([lo.path for lo in req.loras if lo.enabled], req.variant):
        printer.warn(note)  # a LoRA made for another variant: a note, never a refusal
    code = printer.run(lambda: engine.run(req, printer, cancel), cancel)
    if code is None:
        code = printer.exit_code()
    if code is not None:
        return code
    ev = printer.terminal
    if args.json:
        print(json.dumps(list(ev.paths)))
    elif not quiet:
        print(f"{len(ev.paths)} image(s) in {ev.elapsed_s:.1f} s", file=sys.stderr)
    return 0
