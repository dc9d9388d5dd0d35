"""The small commands: ``make-tiny-model``, ``params``, ``selftest``, ``doctor``.

zitdesk make-tiny-model DIR [--layout diffusers|comfy] [--seed N] [--fp8]
zitdesk params IMAGE [--json]
zitdesk selftest [--no-ui] [--ui-only] [--device D] [--keep]
zitdesk doctor [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from zitdesk.cli.common import EXIT_ERROR


def add_make_tiny_model_parser(subparsers: Any) -> argparse.ArgumentParser:
    t = subparsers.add_parser(
        "make-tiny-model", help="write a tiny random-weight Z-Image model (tests, demos)"
    )
    t.add_argument("dir")
    t.add_argument("--layout", choices=("diffusers", "comfy"), default="diffusers")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--fp8", action="store_true", help="comfy layout: store the DiT as fp8_e4m3fn")
    t.set_defaults(func=cmd_make_tiny_model)
    return t


def add_params_parser(subparsers: Any) -> argparse.ArgumentParser:
    pa = subparsers.add_parser("params", help="read generation parameters from an image")
    pa.add_argument("image")
    pa.add_argument("--json", action="store_true")
    pa.set_defaults(func=cmd_params)
    return pa


def add_selftest_parser(subparsers: Any) -> argparse.ArgumentParser:
    st = subparsers.add_parser(
        "selftest", help="check this installation end to end (tiny model, no network)"
    )
    st.add_argument("--no-ui", action="store_true", help="skip opening the main window")
    st.add_argument("--ui-only", action="store_true", help="only open and close the main window")
    st.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: auto)")
    st.add_argument("--keep", action="store_true", help="keep the temporary folder")
    st.set_defaults(func=cmd_selftest)
    return st


def add_doctor_parser(subparsers: Any) -> argparse.ArgumentParser:
    d = subparsers.add_parser("doctor", help="check GPU, driver, torch and models")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_doctor)
    return d


def cmd_make_tiny_model(args: argparse.Namespace) -> int:
    from zitdesk.models.tiny import save_tiny_model

    out = save_tiny_model(
        args.dir,
        layout=args.layout,
        seed=args.seed,
        dit_dtype="float8_e4m3fn" if args.fp8 else "float32",
    )
    print(str(out))
    return 0


def cmd_params(args: argparse.Namespace) -> int:
    from zitdesk.imagemeta import read_parameters

    result: Any = read_parameters(args.image)
    # The typed ImageParameters (issue 13 part A) or the plain dict it replaces.
    data = result.to_dict() if hasattr(result, "to_dict") else dict(result)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    else:
        print(f"source: {data.get('source')}")
        for k in (
            "prompt",
            "negative_prompt",
            "steps",
            "guidance",
            "a1111_cfg_scale",
            "cfg_scale",
            "seed",
            "width",
            "height",
            "model",
        ):
            if data.get(k) not in (None, ""):
                print(f"{k}: {data[k]}")
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    """``zitdesk selftest``: the engine steps (the window step belongs to the UI side,
    ``main.py --selftest``; this package never imports ``ui``)."""
    from zitdesk.engine.requests import require_device
    from zitdesk.selftest import run_selftest

    device = require_device(args.device) if args.device else None
    ok, verdict = run_selftest(
        ui=not args.no_ui,
        engine=not args.ui_only,
        device=None if device == "auto" else device,
        keep=args.keep,
        log=lambda line: print(line, file=sys.stderr),
    )
    print(verdict)
    return 0 if ok else EXIT_ERROR


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
