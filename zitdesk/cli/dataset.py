"""``zitdesk dataset import|check``: the dataset manager, headless.

Contract (flags may be added, never removed)::

    zitdesk dataset import SRC... --to DIR [--max-pixels N] [--json]
    zitdesk dataset check DIR [--preset 8gb|12gb|16gb|24gb | --resolution N ...]
                              [--trigger WORD] [--no-tokens] [--no-duplicates] [--json]
    zitdesk dataset caption DIR --tagger PATH | --vlm PATH [--mode replace|append|prepend]
                              [--only-uncaptioned] [--json]   (zitdesk.cli.caption)

``import`` exits 0 when it ran (skipped files are listed in the report, not errors); ``check``
exits 0 whatever the verdict unless ``--fail-on warnings|blocked`` is given (then 3 when the
verdict is at least that bad). Errors are one plain sentence on stderr, exit 1.
"""

from __future__ import annotations

import argparse
import sys

from zitdesk.dataset.fsnames import dumps, shown

EXIT_VERDICT = 3


def _positive_int(text: str) -> int:
    """argparse type: a whole number ≥ 1 (a bad value is a one-line usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def add_dataset_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``dataset`` command (with ``import`` and ``check``) to ``subparsers``."""
    d = subparsers.add_parser("dataset", help="import images and captions, check a dataset")
    dsub = d.add_subparsers(dest="dataset_command", required=True)

    im = dsub.add_parser("import", help="copy files, folders and .zip archives into a dataset")
    im.add_argument("sources", nargs="+", metavar="SRC")
    im.add_argument("--to", required=True, metavar="DIR", help="dataset folder (created if needed)")
    im.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=None,
        help="reject images with more pixels (default 89478485, Pillow's limit)",
    )
    im.add_argument("--json", action="store_true", help="print the import report as JSON")
    im.set_defaults(func=cmd_dataset_import)

    ck = dsub.add_parser("check", help="pre-flight check for training")
    ck.add_argument("dir")
    ck.add_argument(
        "--preset",
        choices=("8gb", "12gb", "16gb", "24gb"),
        default=None,
        help="take the training resolutions from a VRAM preset (default 24gb)",
    )
    ck.add_argument(
        "--resolution",
        type=int,
        action="append",
        metavar="N",
        help="training resolution (repeatable); overrides --preset",
    )
    ck.add_argument("--trigger", default="", help="the trigger word training will use")
    ck.add_argument("--no-tokens", action="store_true", help="skip the token count")
    ck.add_argument("--no-duplicates", action="store_true", help="skip duplicate detection")
    ck.add_argument("--fail-on", choices=("warnings", "blocked"), default=None)
    ck.add_argument("--json", action="store_true", help="print the report as JSON")
    ck.set_defaults(func=cmd_dataset_check)

    from zitdesk.cli.caption import add_caption_parser

    add_caption_parser(dsub)  # dataset caption DIR --tagger PATH | --vlm PATH [--mode ...]
    return d


def cmd_dataset_import(args: argparse.Namespace) -> int:
    from zitdesk.dataset.images import DEFAULT_MAX_PIXELS
    from zitdesk.dataset.importer import import_sources

    def progress(done: int, total: int) -> None:
        if not args.json and total and (done == total or done % 50 == 0):
            print(f"\r{done}/{total}", end="", file=sys.stderr, flush=True)

    rep = import_sources(
        args.sources, args.to, max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, progress=progress
    )
    if args.json:
        print(dumps(rep.to_json(), indent=1))
        return 0
    print(file=sys.stderr)
    c = rep.to_json()["counts"]
    print(
        f"Imported {c['imported']} image(s) into {shown(rep.target)} ({c['with_caption']} with "
        f"captions, {c['converted']} converted, {c['renamed']} renamed); skipped {c['skipped']}."
    )
    for s in rep.skipped:
        print(f"  skipped {shown(s.source)}: {shown(s.reason)}")
    for e in rep.errors:
        print(shown(e), file=sys.stderr)
    return 0


def cmd_dataset_check(args: argparse.Namespace) -> int:
    from zitdesk.dataset.check import CheckOptions, check_folder

    if args.resolution:
        if any(r < 64 or r > 2048 or r % 16 for r in args.resolution):
            from zitdesk.errors import RequestError

            raise RequestError("Training resolutions must be multiples of 16 between 64 and 2048.")
        opts = CheckOptions(resolutions=tuple(args.resolution), trigger=args.trigger)
    else:
        opts = CheckOptions.for_preset(args.preset or "24gb", trigger=args.trigger)
    rep = check_folder(
        args.dir,
        opts,
        tokenizer=None if args.no_tokens else "default",
        duplicates=not args.no_duplicates,
    )
    if args.json:
        print(dumps(rep.to_json(), indent=1))
    else:
        print(shown(rep.summary))
        for i in rep.issues:
            files = [shown(f) for f in i.files[:5]]
            more = f" ({', '.join(files)}{', …' if len(i.files) > 5 else ''})" if i.files else ""
            print(f"[{i.severity}] {shown(i.message)}{more}")
        for r, b in rep.buckets.items():
            print(f"  {r} px buckets: " + ", ".join(f"{k}×{v}" for k, v in list(b.items())[:8]))
    order = {"ready": 0, "warnings": 1, "blocked": 2}
    if args.fail_on and order[rep.verdict] >= order[args.fail_on]:
        return EXIT_VERDICT
    return 0
