"""``zitdesk dataset caption``: auto-caption a dataset folder with a local tagger or VLM.

Contract (flags may be added, never removed)::

    zitdesk dataset caption DIR --tagger PATH | --vlm PATH [--mode replace|append|prepend]
                            [--only-uncaptioned] [--limit N] [--json] ...

The job is the app's (:class:`zitdesk.caption.job.CaptionEngine` through ``StudioEngine.run``);
the results are written through the caption store as one undoable, journaled edit
(:func:`zitdesk.caption.store.caption_and_apply`); a caption changed while the job ran is left
as it is and named. Ctrl-C stops
after the current image and keeps the captions made so far (exit 130). A failure is one
sentence on stderr, exit 1.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from zitdesk.cli.common import EXIT_CANCELLED, EXIT_ERROR, fail
from zitdesk.dataset.fsnames import dumps, shown


def _unit(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"{v} is not between 0 and 1")
    return v


def add_caption_parser(dsub) -> argparse.ArgumentParser:
    from zitdesk.caption.request import MODES, QUANTS, TEMPLATES

    c = dsub.add_parser("caption", help="caption images with a local tagger or vision model")
    c.add_argument("dir")
    which = c.add_mutually_exclusive_group(required=True)
    which.add_argument("--tagger", metavar="PATH", help="WD tagger folder (model.onnx + csv)")
    which.add_argument("--vlm", metavar="PATH", help="vision-language model folder (Qwen-VL)")
    c.add_argument("--mode", choices=MODES, default="replace", help="how new text joins the old")
    c.add_argument("--only-uncaptioned", action="store_true", help="skip captioned images")
    c.add_argument("--limit", type=int, default=0, metavar="N", help="only the first N images")
    c.add_argument("--threshold", type=_unit, default=0.35, help="general tag threshold")
    c.add_argument("--character-threshold", type=_unit, default=0.85)
    c.add_argument(
        "--exclude", default="", metavar="TAGS", help="comma-separated tags to leave out"
    )
    c.add_argument("--ratings", action="store_true", help="add the rating tag")
    c.add_argument("--keep-underscores", action="store_true", help="write long_hair, not long hair")
    c.add_argument("--template", choices=TEMPLATES, default="short")
    c.add_argument("--trigger", default="", help="the subject the 'training' template leaves out")
    c.add_argument("--prompt", default="", help="your own instruction instead of the template")
    c.add_argument("--max-tokens", type=int, default=160)
    c.add_argument("--quant", choices=QUANTS, default="none")
    c.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    c.add_argument("--json", action="store_true", help="print the result as JSON")
    c.set_defaults(func=cmd_dataset_caption)
    return c


def cmd_dataset_caption(args: argparse.Namespace) -> int:
    from zitdesk.caption.request import CaptionReady, CaptionRequest
    from zitdesk.caption.store import Outcome, caption_and_apply, with_expected
    from zitdesk.engine.cancel import CancelToken
    from zitdesk.engine.events import JobCancelled, JobFailed, JobFinished, JobWarning
    from zitdesk.engine.studio import StudioEngine

    req = CaptionRequest(
        folder=args.dir,
        model_kind="tagger" if args.tagger else "vlm",
        model_path=args.tagger or args.vlm,
        only_uncaptioned=args.only_uncaptioned,
        mode=args.mode,
        limit=max(0, args.limit),
        general_threshold=args.threshold,
        character_threshold=args.character_threshold,
        exclude=tuple(t.strip() for t in args.exclude.split(",") if t.strip()),
        ratings=args.ratings,
        underscores_to_spaces=not args.keep_underscores,
        template=args.template,
        trigger=args.trigger,
        prompt=args.prompt,
        max_tokens=args.max_tokens,
        quant=args.quant,
        device=args.device,
    ).validate()
    images: list[dict] = []
    warnings: list[str] = []
    outcome: list[Outcome] = []

    def emit(ev) -> None:
        if isinstance(ev, CaptionReady):
            images.append(
                {"name": ev.name, "old": ev.old, "new": ev.new, "generated": ev.generated}
            )
            if not args.json:
                eta = f", about {ev.eta_s:.0f} s left" if ev.index + 1 < ev.total else ""
                print(f"[{ev.index + 1}/{ev.total}{eta}] {shown(ev.name)}: {shown(ev.new or '')}")
        elif isinstance(ev, JobWarning):
            warnings.append(ev.message)
            if not args.json:
                print(f"warning: {shown(ev.message)}", file=sys.stderr)

    req = with_expected(req)  # the captions at start; a missing folder is one sentence here
    engine = StudioEngine(device="cpu" if args.device == "cpu" else None)
    cancel = CancelToken()

    def work() -> None:
        outcome.append(caption_and_apply(engine.run, req, emit, cancel))

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        cancel.cancel()  # finish this image, keep what is done
        worker.join()
    finally:
        engine.shutdown()
    res = outcome[0] if outcome else Outcome()
    ev = res.end or JobFailed(req.job_id, message="The caption job ended without a result.")
    status = {JobFinished: "finished", JobCancelled: "cancelled"}.get(type(ev), "failed")
    written = [str(Path(args.dir) / n) for n in res.written]
    warnings += res.skipped
    if not args.json:
        for w in res.skipped:
            print(f"warning: {shown(w)}", file=sys.stderr)
    if args.json:
        out = {
            "job_id": req.job_id,
            "status": status,
            "folder": args.dir,
            "captioned": len(images),
            "written": written,
            "images": images,
            "warnings": warnings,
            "stats": getattr(ev, "stats", {}),
            "error": getattr(ev, "message", "") if status == "failed" else "",
        }
        print(dumps(out, indent=1))
    elif status != "failed":
        print(f"Captioned {len(images)} image(s); wrote {len(written)} caption file(s).")
    if status == "failed":
        return fail(getattr(ev, "message", "") or "The caption job failed.", EXIT_ERROR)
    return EXIT_CANCELLED if status == "cancelled" else 0
