"""Time the LoRA library index: 1,000 files, cold and warm.

    .venv/bin/python bench/library_scan.py [--files 1000] [--dir /tmp/libbench] [--keep]

Builds a library of full-size Z-Image LoRA headers (240 modules; kohya with ``.alpha`` tensors
and kohya metadata, ai-toolkit with modelspec metadata, fused-qkv kohya, a few SDXL/Flux files
and broken downloads) with sparse tensor data, plus sidecars and preview images on a third of
them, then prints:

* cold: a new index, no cache (every header, alpha and sidecar read);
* warm (app start): a new index that loads the JSON cache and stats every file;
* warm (rescan): the same index again, as after a file-watcher event.

The target is warm ≤ 1 s for 1,000 files.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def build(folder: Path, n: int) -> None:
    from tests.support.samples import kohya_metadata, make_lora, modelspec_metadata, png_bytes

    png = png_bytes(64, 64)
    for i in range(n):
        sub = folder / f"group{i % 10:02d}"
        name = f"lora_{i:04d}"
        r = i % 20
        if r < 9:
            # header lengths vary in real libraries; a comment of varying length spreads them
            make_lora(
                sub / f"{name}.safetensors",
                "kohya",
                16,
                8,
                metadata=kohya_metadata(
                    name,
                    16,
                    8,
                    tags={name: 40, "1girl": 30, "solo": 20},
                    ss_training_comment="c" * (i % 257),
                ),
            )
        elif r < 15:
            make_lora(
                sub / f"{name}.safetensors",
                "aitoolkit",
                32,
                metadata=modelspec_metadata(f"LoRA {i}", "bench", f"trig{i}"),
            )
        elif r < 17:
            make_lora(sub / f"{name}.safetensors", "kohya_fused", 32, 16)
        elif r == 17:
            make_lora(
                sub / f"{name}.safetensors",
                "sdxl",
                16,
                metadata=kohya_metadata(name, base="sdxl_base_v1-0"),
            )
        elif r == 18:
            make_lora(sub / f"{name}.safetensors", "flux", 16)
        else:
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"{name}.safetensors").write_bytes(b"\x00" * 7)
        if i % 3 == 0:
            (sub / f"{name}.preview.png").write_bytes(png)
        if i % 4 == 0:
            (sub / f"{name}.json").write_text(
                json.dumps({"activation text": f"word{i}", "preferred weight": 0.8})
            )
        if i % 7 == 0:
            (sub / f"{name}.civitai.info").write_text(
                json.dumps({"trainedWords": [f"civ{i}"], "model": {"name": name}})
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--dir", help="library folder (default: a temp folder)")
    ap.add_argument("--keep", action="store_true", help="keep the generated library")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="zitdesk-libbench-"))
    os.environ["ZITDESK_HOME"] = str(work / "home")
    lib = Path(args.dir) if args.dir else work / "loras"
    from zitdesk.library.index import LibraryIndex

    t = time.perf_counter()
    if not any(lib.rglob("*.safetensors")) if lib.exists() else True:
        build(lib, args.files)
    print(f"built {args.files} files in {time.perf_counter() - t:.1f} s under {lib}")
    cache = work / "cache" / "index.json"

    def fresh() -> LibraryIndex:
        from zitdesk.library.hashing import HashCache

        return LibraryIndex(cache_path=cache, hash_cache=HashCache(work / "cache" / "hashes.json"))

    t = time.perf_counter()
    idx = fresh()
    r = idx.scan([lib])
    cold = time.perf_counter() - t
    ok = sum(1 for e in r.entries if e.compatible)
    print(
        f"cold:            {cold:6.3f} s  ({len(r.entries)} files, {r.inspected} read, {ok} usable, "
        f"{r.errors} errors; cache {cache.stat().st_size / 1e6:.1f} MB)"
    )
    reasons: dict[str, int] = {}
    for e in r.entries:
        if e.status != "ok":
            key = e.error.split(" ", 1)[1][:60] if " " in e.error else e.error
            reasons[key] = reasons.get(key, 0) + 1
    for why, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:3]:
        print(f"   {n:4d} × {why}")
    warm_start = []
    for _ in range(3):
        t = time.perf_counter()
        r = fresh().scan([lib])
        warm_start.append(time.perf_counter() - t)
        assert r.inspected == 0, r.inspected
    print(
        f"warm (app start): {min(warm_start):6.3f} s  (new index from the JSON cache, best of 3; "
        f"{r.reused} reused)"
    )
    rescans = []
    for _ in range(3):
        t = time.perf_counter()
        r = idx.scan([lib])
        rescans.append(time.perf_counter() - t)
    print(
        f"warm (rescan):    {min(rescans):6.3f} s  (same index, after a watcher event, best of 3)"
    )
    target = "OK" if min(warm_start) <= 1.0 else "MISSED"
    print(f"target warm <= 1 s: {target}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
