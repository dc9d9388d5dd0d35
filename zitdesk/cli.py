"""The headless ``zitdesk`` command line, over the same engine as the app.

Contract (scripts call these exactly; flags may be added, never removed)::

    zitdesk make-tiny-model DIR [--layout diffusers|comfy]
    zitdesk generate --prompt TEXT [--model PATH] [--width N] [--height N] [--steps N] [--seed N]
                     [--count N] [--lora PATH:WEIGHT]... [--out DIR] [--json]
    zitdesk lora inspect FILE [--model PATH] --json
    zitdesk params IMAGE --json
    zitdesk doctor [--json]

Errors go to stderr as one plain sentence with a non-zero exit code, never a bare traceback
(set ``ZITDESK_DEBUG=1`` to see it).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
from pathlib import Path

from zitdesk import __version__
from zitdesk.errors import RequestError, ZitdeskError

EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 1, 2, 130


def _fail(message: str, code: int = EXIT_ERROR) -> int:
    print(f"zitdesk: {message}", file=sys.stderr)
    return code


def _debug() -> bool:
    return bool(os.environ.get("ZITDESK_DEBUG"))


def run_guarded(func, args: argparse.Namespace) -> int:
    """Run one command; every exception becomes one sentence on stderr and exit code 1.

    The one top level of every ``zitdesk`` command (``generate``, ``train``, ``dataset``,
    ``lora``, ``make-tiny-model``, ``params``, ``doctor``, also ``python -m zitdesk.train.cli``):
    the sentence comes from :func:`zitdesk.errors.user_message` (``ZITDESK_DEBUG=1`` prints the
    traceback first).
    """
    from zitdesk.errors import user_message

    try:
        return func(args)
    except KeyboardInterrupt:
        return _fail("cancelled.", EXIT_CANCELLED)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - the CLI never shows a bare traceback
        if _debug():
            import traceback

            traceback.print_exc()
        return _fail(user_message(exc))


def job_exit_code(ev, cancelled: str = "cancelled.") -> int | None:
    """The exit code for a job's terminal event (the one handling of generate and train).

    ``JobFailed``: its sentence on stderr (its traceback first with ``ZITDESK_DEBUG=1``), 1.
    ``JobCancelled``: ``cancelled`` on stderr, 130. No terminal event: an error, 1.
    ``JobFinished``: None, the caller prints its own summary.
    """
    from zitdesk.engine.events import JobCancelled, JobFailed, JobFinished

    if isinstance(ev, JobFailed):
        if _debug() and ev.traceback:
            print(ev.traceback, file=sys.stderr)
        return _fail(" ".join(ev.message.split()) or "the job failed.")
    if isinstance(ev, JobCancelled):
        return _fail(cancelled, EXIT_CANCELLED)
    if not isinstance(ev, JobFinished):
        return _fail("the job ended without a result; rerun with ZITDESK_DEBUG=1 to see why.")
    return None


class _NoTracebacks(logging.Filter):
    """Keep log records with a traceback off the terminal: the failure they describe reaches the
    user as the command's one sentence (``ZITDESK_DEBUG=1`` shows them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _debug():
            return True
        if record.exc_info or record.stack_info:
            return False
        return "Traceback (most recent call last)" not in record.getMessage()


def configure_logging() -> None:
    """Warnings and errors on stderr as one line each, tracebacks only with ZITDESK_DEBUG=1."""
    root = logging.getLogger()
    if root.handlers:  # someone (a host program, pytest) set logging up already: leave it
        return
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in root.handlers:
        handler.addFilter(_NoTracebacks())


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (``zitdesk: …; see … --help``), exit 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"zitdesk: {message}; see '{self.prog} --help'.\n")


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


# --- commands ---------------------------------------------------------------------------------

def cmd_make_tiny_model(args: argparse.Namespace) -> int:
    from zitdesk.models.tiny import save_tiny_model

    out = save_tiny_model(args.dir, layout=args.layout, seed=args.seed,
                          dit_dtype="float8_e4m3fn" if args.fp8 else "float32")
    print(str(out))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from zitdesk.engine.cancel import CancelToken
    from zitdesk.engine.events import (
        ImageReady,
        JobCancelled,
        JobFailed,
        JobFinished,
        JobWarning,
        LoraReport,
        StepProgress,
    )
    from zitdesk.engine.generate import GenerationEngine
    from zitdesk.engine.requests import GenerateRequest, MemoryMode

    loras = tuple(parse_lora(x) for x in args.lora or ())
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    req = GenerateRequest(
        prompt=args.prompt, width=args.width, height=args.height, steps=args.steps, seed=seed,
        count=args.count, guidance=args.guidance, shift=args.shift, negative_prompt=args.negative or "",
        loras=loras, memory_mode=MemoryMode(args.memory_mode), vae_tiling=args.vae_tiling,
        unload_text_encoder=args.unload_text_encoder, compile=args.compile,
        output_dir=str(Path(args.out).resolve()) if args.out else "", model_path=args.model or "",
        preview_every=0,
    ).validate()
    if args.model:
        from zitdesk.models.discovery import resolve_model

        src = resolve_model(args.model)  # fail fast, before any progress bar
        if not src.complete:
            raise ZitdeskError(src.describe())
    from zitdesk.engine.requests import require_device

    device = require_device(args.device)
    if device == "auto" and os.environ.get("ZITDESK_DEVICE"):
        require_device(os.environ["ZITDESK_DEVICE"])  # the engine's default: refuse it plainly too
    engine = GenerationEngine(device=None if device == "auto" else device)
    cancel = CancelToken()
    result: dict = {}
    bar = None
    quiet = args.json or args.quiet

    def emit(ev) -> None:
        nonlocal bar
        if isinstance(ev, StepProgress) and not quiet:
            if bar is None:  # created on the first step, so load errors are not mixed with a bar
                from tqdm import tqdm

                bar = tqdm(total=req.steps * req.count, unit="step", file=sys.stderr, dynamic_ncols=True)
            bar.n = ev.image_index * ev.total + ev.step
            bar.set_postfix_str(f"image {ev.image_index + 1}/{ev.image_count}")
            bar.refresh()
        elif isinstance(ev, LoraReport) and not quiet:
            print(f"LoRA {Path(ev.path).name}: {ev.matched}/{ev.total_targets} modules"
                  + (f", {len(ev.unknown_keys)} unknown keys skipped" if ev.unknown_keys else ""),
                  file=sys.stderr)
            for text in ev.warnings:
                print(f"warning: LoRA {Path(ev.path).name}: {text}", file=sys.stderr)
        elif isinstance(ev, JobWarning) and not args.json:
            print(f"warning: {ev.message}", file=sys.stderr)
        elif isinstance(ev, ImageReady) and not quiet:
            (bar.write if bar else print)(ev.path)
        elif isinstance(ev, (JobFinished, JobFailed, JobCancelled)):
            result["event"] = ev

    try:
        engine.run(req, emit, cancel)
    except KeyboardInterrupt:
        cancel.cancel()
        return _fail("cancelled.", EXIT_CANCELLED)
    finally:
        if bar is not None:
            bar.close()
    ev = result.get("event")
    code = job_exit_code(ev)
    if code is not None:
        return code
    if args.json:
        print(json.dumps(list(ev.paths)))
    elif not quiet:
        print(f"{len(ev.paths)} image(s) in {ev.elapsed_s:.1f} s", file=sys.stderr)
    return 0


def cmd_lora_inspect(args: argparse.Namespace) -> int:
    from zitdesk.lora.inspect import inspect_json

    names = None
    if args.model:
        from zitdesk.models.zimage_tree import model_linear_names

        names = model_linear_names(args.model)
    info = inspect_json(args.file, names)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        cov = info.get("coverage", {})
        print(f"{Path(args.file).name}: {info.get('arch')} / {info.get('dialect')}, rank {info.get('rank')}, "
              f"alpha {info.get('alpha')}, {cov.get('matched')}/{cov.get('total_in_file')} modules")
        print(info.get("message", ""))
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    from zitdesk.pngmeta import read_parameters

    data = read_parameters(args.image)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        print(f"source: {data.get('source')}")
        for k in ("prompt", "negative_prompt", "steps", "cfg_scale", "seed", "width", "height", "model"):
            if data.get(k) not in (None, ""):
                print(f"{k}: {data[k]}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from zitdesk.gpu import doctor

    rep = doctor()
    if args.json:
        print(json.dumps(rep.to_dict(), indent=2, default=str))
    else:
        for k, v in rep.facts.items():
            if k not in ("models", "gpus"):
                print(f"{k}: {v}")
        for f in rep.findings:
            mark = {"ok": "✓", "warn": "!", "error": "✗", "info": "i"}.get(f.level, "-")
            print(f"[{mark}] {f.message}" + (f"\n    fix: {f.fix}" if f.fix else ""))
    return 0 if rep.ok else EXIT_ERROR


def cmd_selftest(args: argparse.Namespace) -> int:
    from zitdesk.engine.requests import require_device
    from zitdesk.selftest import run_selftest

    device = require_device(args.device) if args.device else None
    ok, verdict = run_selftest(ui=not args.no_ui, engine=not args.ui_only,
                               device=None if device == "auto" else device,
                               keep=args.keep, log=lambda line: print(line, file=sys.stderr))
    print(verdict)
    return 0 if ok else EXIT_ERROR


# --- parser ----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from zitdesk.engine.requests import MemoryMode

    p = OneLineParser(prog="zitdesk", description="Z-Image Turbo studio, headless.")
    p.add_argument("--version", action="version", version=f"zitdesk {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("make-tiny-model", help="write a tiny random-weight Z-Image model (tests, demos)")
    t.add_argument("dir")
    t.add_argument("--layout", choices=("diffusers", "comfy"), default="diffusers")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--fp8", action="store_true", help="comfy layout: store the DiT as fp8_e4m3fn")
    t.set_defaults(func=cmd_make_tiny_model)

    g = sub.add_parser("generate", help="generate images")
    g.add_argument("--prompt", required=True)
    g.add_argument("--negative", default="")
    g.add_argument("--model", help="diffusers folder, HF-cache model folder, or folder of ComfyUI files")
    g.add_argument("--width", type=int, default=1024)
    g.add_argument("--height", type=int, default=1024)
    g.add_argument("--steps", type=int, default=8)
    g.add_argument("--seed", type=int, default=None, help="default: random")
    g.add_argument("--count", type=int, default=1)
    g.add_argument("--guidance", type=float, default=0.0, help="CFG (0 = off, as Turbo expects)")
    g.add_argument("--shift", type=float, default=3.0)
    g.add_argument("--lora", action="append", metavar="PATH:WEIGHT")
    g.add_argument("--memory-mode", choices=[m.value for m in MemoryMode], default="gpu")
    g.add_argument("--vae-tiling", action="store_true")
    g.add_argument("--compile", action="store_true", help="compile the DiT blocks (CUDA; faster after ~20 s)")
    g.add_argument("--unload-text-encoder", action="store_true")
    g.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: auto)")
    g.add_argument("--out", help="output folder (default: the app's outputs folder)")
    g.add_argument("--json", action="store_true", help="print a JSON list of written files")
    g.add_argument("--quiet", action="store_true")
    g.set_defaults(func=cmd_generate)

    lo = sub.add_parser("lora", help="LoRA tools")
    lsub = lo.add_subparsers(dest="lora_command", required=True)
    li = lsub.add_parser("inspect", help="dialect, architecture, rank, coverage, metadata")
    li.add_argument("file")
    li.add_argument("--model", help="measure coverage against this model (default: full-size Z-Image Turbo)")
    li.add_argument("--json", action="store_true")
    li.set_defaults(func=cmd_lora_inspect)
    from zitdesk.library.cli import add_lora_scan_parser

    add_lora_scan_parser(lsub)  # zitdesk lora scan DIR... [--auto] [--hash] [--model PATH] --json

    pa = sub.add_parser("params", help="read generation parameters from an image")
    pa.add_argument("image")
    pa.add_argument("--json", action="store_true")
    pa.set_defaults(func=cmd_params)

    st = sub.add_parser("selftest", help="check this installation end to end (tiny model, no network)")
    st.add_argument("--no-ui", action="store_true", help="skip opening the main window")
    st.add_argument("--ui-only", action="store_true", help="only open and close the main window")
    st.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: auto)")
    st.add_argument("--keep", action="store_true", help="keep the temporary folder")
    st.set_defaults(func=cmd_selftest)

    from zitdesk.train.cli import add_train_parser

    add_train_parser(sub)  # zitdesk train CONFIG.toml [--resume] [--init --preset ...]
    from zitdesk.dataset.cli import add_dataset_parser

    add_dataset_parser(sub)  # zitdesk dataset import SRC... --to DIR --json | dataset check DIR --json

    d = sub.add_parser("doctor", help="check GPU, driver, torch and models")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_doctor)
    return p


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_guarded(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
