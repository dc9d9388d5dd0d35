"""``zitdesk lora inspect|scan``: one LoRA file's report, and the LoRA library index.

    zitdesk lora inspect FILE [--model PATH] [--json]
    zitdesk lora scan [DIR...] [--auto] [--hash] [--model PATH] [--no-cache] [--json]

``inspect`` prints :func:`zitdesk.lora.inspect.inspect_json`. ``scan`` reuses the app's index
cache, so a second run is fast; ``--no-cache`` reads every file again without touching the cache.
With no DIR it scans the app's library folders and the auto-found ones (ComfyUI, Forge/A1111,
SwarmUI, StabilityMatrix, zitdesk's own). A folder that does not exist is an error (exit 1);
unreadable files are entries with ``status: "error"``. ``--model`` measures coverage against that
model's Linear names (:func:`zitdesk.models.zimage_tree.model_linear_names`) instead of the
full-size Z-Image Turbo set.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from zitdesk.errors import ZitdeskError


def add_lora_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``lora`` with ``inspect`` and ``scan`` to the top-level sub-parsers."""
    lo = subparsers.add_parser("lora", help="LoRA tools")
    lsub = lo.add_subparsers(dest="lora_command", required=True)
    li = lsub.add_parser("inspect", help="dialect, architecture, rank, coverage, metadata")
    li.add_argument("file")
    li.add_argument(
        "--model", help="measure coverage against this model (default: full-size Z-Image Turbo)"
    )
    li.add_argument("--json", action="store_true")
    li.set_defaults(func=cmd_lora_inspect)
    add_lora_scan_parser(lsub)
    return lo


def _module_names(model: str | None) -> set[str] | None:
    if not model:
        return None
    from zitdesk.models.zimage_tree import model_linear_names

    return model_linear_names(model)


def cmd_lora_inspect(args: argparse.Namespace) -> int:
    from zitdesk.lora.inspect import inspect_json

    info = inspect_json(args.file, _module_names(args.model))
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
    else:
        cov = info.get("coverage", {})
        print(
            f"{Path(args.file).name}: {info.get('arch')} / {info.get('dialect')}, rank {info.get('rank')}, "
            f"alpha {info.get('alpha')}, {cov.get('matched')}/{cov.get('total_in_file')} modules"
        )
        print(info.get("message", ""))
    return 0


def add_lora_scan_parser(lora_subparsers: Any) -> argparse.ArgumentParser:
    """Add ``scan`` to the ``zitdesk lora`` sub-parsers; returns the new parser."""
    sc = lora_subparsers.add_parser(
        "scan", help="index LoRA folders: architecture, coverage, metadata, sidecars, previews"
    )
    sc.add_argument(
        "dirs",
        nargs="*",
        metavar="DIR",
        help="folders to scan recursively (default: library folders + auto-found ones)",
    )
    sc.add_argument(
        "--auto",
        action="store_true",
        help="also scan auto-found folders (ComfyUI, Forge/A1111, SwarmUI, zitdesk) with DIRs",
    )
    sc.add_argument(
        "--hash", action="store_true", help="compute sha256/AutoV2/AutoV3 hashes (reads every file)"
    )
    sc.add_argument(
        "--model", help="measure coverage against this model (default: full-size Z-Image Turbo)"
    )
    sc.add_argument(
        "--no-cache", action="store_true", help="read every file again; leave the cache alone"
    )
    sc.add_argument("--json", action="store_true", help="print the index as JSON")
    sc.set_defaults(func=cmd_lora_scan)
    return sc


def cmd_lora_scan(args: argparse.Namespace) -> int:
    from zitdesk.library.index import LibraryIndex, index_document
    from zitdesk.library.roots import Root, merge_roots
    from zitdesk.library.store import LibraryStore

    store = LibraryStore()
    for d in args.dirs:
        if not Path(d).is_dir():
            raise ZitdeskError(f"Folder {d} does not exist.")
    if args.dirs:
        roots = [Root(str(Path(d).resolve()), "user") for d in args.dirs]
        if args.auto:
            roots = merge_roots([r.path for r in roots], include_auto=True)
    else:
        roots = merge_roots(store.folders, include_auto=True)
    names = _module_names(args.model)
    index = (
        LibraryIndex(cache_path=None, hash_cache=None, module_names=names)
        if args.no_cache
        else LibraryIndex(module_names=names)
    )
    result = index.scan(roots)
    if args.hash:
        for e in list(result.entries):
            index.compute_hashes(e.path)
        index.save()
        result.entries = index.entries
    doc = index_document(result, index, store)
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    _print_table(doc)
    return 0


def _print_table(doc: dict[str, Any]) -> None:
    for e in doc["entries"]:
        if e["status"] != "ok":
            mark = "✗"
            line = f"{e['file_name']}: {e['reason']}"
        else:
            mark = "✓" if e["compatible"] else "-"
            bits = [e["arch_label"], e["dialect"]]
            if e["rank"]:
                bits.append(f"rank {e['rank']}")
            if e["coverage_badge"]:
                bits.append(f"{e['coverage_badge']} modules")
            line = f"{e['file_name']}: " + ", ".join(bits)
            if not e["compatible"]:
                line += f" ({e['reason']})"
            words = [t["word"] for t in e["trigger_words"] if not t["from_tags"]]
            if words:
                line += f"; trigger: {', '.join(words[:5])}"
        print(f"[{mark}] {line}")
    for r in doc["missing_roots"]:
        print(f"missing folder: {r}", file=sys.stderr)
    for g in doc["duplicates"]:
        print("duplicates: " + " = ".join(Path(p).name for p in g))
    print(
        f"{doc['count']} files, {doc['compatible']} usable, {doc['errors']} unreadable, "
        f"{doc['unsupported']} unsupported ({doc['elapsed_s']:.2f} s)",
        file=sys.stderr,
    )
