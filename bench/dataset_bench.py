"""Dataset manager benchmark: import speed, and GUI-thread stalls with 10,000 images.

    .venv/bin/python bench/dataset_bench.py [--images 1000] [--big 10000] [--work DIR]
                                            [--no-tokenizer] [--skip-import] [--skip-gui]

1. **Import**: generates ``--images`` source images (70 % 1024-px JPEG, 30 % 768-px PNG, each
   with a caption; not timed), then times ``import_sources`` into an empty dataset with a cold
   thumbnail cache: validation (full decode), hashes, perceptual hashes, thumbnails, copies,
   index. Target: ≤ 10 s for 1,000.
2. **GUI stalls**: opens a ``--big``-image dataset (256-px JPEGs, generated once and kept in
   ``--work``) in a real ``DatasetsWorkspace`` (thumbnails decoding, tokenizer loading, the
   pre-flight check and hashing all running on workers meanwhile) and scripts what a user does:
   smooth scrolling, flicks, dragging to the end, typing in the filter box, filter modes,
   sorting, the grid view, editing captions row after row. A 1 ms heartbeat timer measures every
   gap in the GUI event loop; the longest gap during those phases is the longest stall (target:
   ≤ 50 ms). Gaps while starting/opening and while idle afterwards (background hashing, check)
   are printed separately. ``--control`` runs the same script with no background work, to show
   the floor set by the machine itself (a shared machine's other processes stall us too).
   Runs under Xvfb when available, else offscreen.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _image(w: int, h: int, seed: int):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    chans = []
    for _ in range(3):
        fx, fy, ph = rng.uniform(0.5, 5), rng.uniform(0.5, 5), rng.uniform(0, 6.28)
        chans.append(127 + 110 * np.sin(x / w * fx * 6.28 + ph) * np.cos(y / h * fy * 6.28))
    arr = np.stack(chans, -1) + rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8), "RGB")


def make_sources(folder: Path, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    for i in range(n):
        if i % 10 < 7:
            w, h = rng.choice([(1024, 1024), (832, 1216), (1216, 832), (1024, 768)])
            _image(w, h, i).save(folder / f"gen {i:05d}.jpg", quality=90)
        else:
            _image(768, 768, i).save(folder / f"gen {i:05d}.png", compress_level=6)
        (folder / f"gen {i:05d}.txt").write_text(
            f"generated image {i}, style {i % 7}, subject {i % 13}", encoding="utf-8"
        )


def bench_import(work: Path, n: int) -> dict:
    from zitdesk.dataset.importer import import_sources

    src = work / f"sources-{n}"
    if not (src / f"gen {n - 1:05d}.txt").exists():
        print(f"generating {n} source images in {src} (not timed) …", flush=True)
        shutil.rmtree(src, ignore_errors=True)
        make_sources(src, n)
    target = Path(tempfile.mkdtemp(prefix="import-", dir=work))
    thumbs = Path(tempfile.mkdtemp(prefix="thumbs-", dir=work))
    import resource

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    rep = import_sources([src], target, thumb_cache=thumbs)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    n_thumbs = sum(1 for _ in thumbs.rglob("*.jpg"))
    mb = sum(p.stat().st_size for p in src.iterdir()) / 2**20
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(thumbs, ignore_errors=True)
    return {
        "images": len(rep.imported),
        "skipped": len(rep.skipped),
        "seconds": dt,
        "cpu": cpu,
        "load": os.getloadavg()[0],
        "thumbnails": n_thumbs,
        "source_mib": mb,
    }


def make_big(folder: Path, n: int) -> None:
    if (folder / f"img {n - 1:05d}.jpg").exists():
        return
    print(f"generating a {n}-image dataset in {folder} (not timed) …", flush=True)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    base = [_image(256, 256, s) for s in range(64)]
    rng = random.Random(3)
    words = [
        "cat",
        "dog",
        "portrait",
        "outdoors",
        "studio",
        "red",
        "blue",
        "smiling",
        "night",
        "forest",
        "city",
        "close-up",
        "wide shot",
        "film grain",
        "soft light",
    ]
    for i in range(n):
        im = base[i % 64].rotate(i % 360) if i >= 64 else base[i]
        im.save(folder / f"img {i:05d}.jpg", quality=80)
        if i % 17:
            cap = ", ".join(rng.sample(words, 5)) + f", item {i}"
            (folder / f"img {i:05d}.txt").write_text(cap, encoding="utf-8")


def start_xvfb() -> subprocess.Popen | None:
    if os.environ.get("DISPLAY") or not shutil.which("Xvfb"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        return None
    for n in range(141, 160):
        if Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
            continue
        proc = subprocess.Popen(
            ["Xvfb", f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{n}").exists():
                os.environ["DISPLAY"] = f":{n}"
                os.environ.pop("QT_QPA_PLATFORM", None)
                return proc
            time.sleep(0.1)
        proc.terminate()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    return None


def bench_gui(
    work: Path, n: int, tokenizer: bool, trace: bool = False, control: bool = False
) -> dict:
    from PySide6.QtCore import QCoreApplication, QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    big = work / f"big-{n}"
    make_big(big, n)
    shutil.rmtree(big / ".zitdesk", ignore_errors=True)  # cold: no index, no hashes
    thumbs = Path(tempfile.mkdtemp(prefix="thumbs-", dir=work))
    QCoreApplication.setOrganizationName("zitdesk-bench")
    app = QApplication.instance() or QApplication(["bench"])
    try:
        from ui.theme import apply_dark_theme

        apply_dark_theme(app)
    except ImportError:
        pass
    from ui.datasets.session import default_tokenizer_loader
    from ui.datasets.table_model import Col, FilterMode
    from ui.datasets.workspace import DatasetsWorkspace

    clock = QElapsedTimer()
    clock.start()
    gaps: list[tuple[float, str]] = []
    phase = ["startup"]
    last = [clock.nsecsElapsed()]

    def beat() -> None:
        now = clock.nsecsElapsed()
        gaps.append(((now - last[0]) / 1e6, phase[0]))
        last[0] = now

    stalls: dict[str, int] = {}
    if trace:
        import threading
        import traceback

        gui_ident = threading.get_ident()
        stop_trace = threading.Event()

        def sampler() -> None:  # where is the GUI thread while the heartbeat is late?
            while not stop_trace.wait(0.01):
                if (clock.nsecsElapsed() - last[0]) / 1e6 < 30:
                    continue
                frames = sys._current_frames()
                f = frames.get(gui_ident)
                if f is None:
                    continue
                st = traceback.extract_stack(f)[-4:]
                key = " <- ".join(
                    f"{Path(x.filename).name}:{x.lineno}:{x.name}" for x in reversed(st)
                )
                others = []
                for tid, fr in frames.items():
                    if tid in (gui_ident, threading.get_ident()):
                        continue
                    top = traceback.extract_stack(fr)[-2:]
                    others.append(
                        "/".join(
                            f"{Path(x.filename).name}:{x.lineno}:{x.name}" for x in reversed(top)
                        )
                    )
                key += "  || other threads: " + " ; ".join(sorted(others))
                stalls[f"[{phase[0]}] " + key] = stalls.get(f"[{phase[0]}] " + key, 0) + 1

        threading.Thread(target=sampler, daemon=True).start()

    hb = QTimer()
    hb.setTimerType(Qt.TimerType.PreciseTimer)
    hb.setInterval(1)
    hb.timeout.connect(beat)
    hb.start()

    def pump(ms: float, until=None) -> None:
        end = clock.elapsed() + ms
        while clock.elapsed() < end:
            app.processEvents()
            if until is not None and until():
                return
            time.sleep(0.0005)

    t_open = time.perf_counter()
    ws = DatasetsWorkspace(
        folder=big,
        tokenizer_loader=default_tokenizer_loader if tokenizer else None,
        thumb_cache_dir=thumbs,
        remember=False,
        auto_check=not control,
    )
    if control:  # no background work at all: the floor set by the machine's load
        ws.thumbs._max_loops = 0
    ws.resize(1500, 900)
    ws.show()
    phase[0] = "open (worker reads 10k headers)"
    pump(120_000, lambda: ws.session.dataset is not None)
    open_s = time.perf_counter() - t_open
    m = ws.model
    bar = ws.table.verticalScrollBar()
    pump(300)

    phase[0] = "smooth scroll"
    for _ in range(150):
        bar.setValue(bar.value() + 40)
        pump(16)
    phase[0] = "flick (page down ×60)"
    for _ in range(60):
        bar.setValue(bar.value() + bar.pageStep())
        pump(8)
    phase[0] = "drag to end and back"
    for v in (bar.maximum(), 0, bar.maximum() // 2, bar.maximum(), 0):
        bar.setValue(v)
        pump(30)
    phase[0] = "typing in the filter"
    ws.filter_edit.setFocus()
    for text in ("c", "ca", "cat", "cat ", "cat r", "cat re", "cat red", "cat re", "cat", ""):
        ws.filter_edit.setText(text)
        pump(60)
    pump(300)
    phase[0] = "filter modes"
    for mode in (
        FilterMode.MISSING,
        FilterMode.DUPLICATE,
        FilterMode.FLAGGED,
        FilterMode.LONG,
        FilterMode.ALL,
    ):
        ws.filter_mode.setCurrentIndex(list(FilterMode).index(mode))
        pump(80)
    phase[0] = "sorting"
    for col, order in (
        (Col.CAPTION, Qt.SortOrder.AscendingOrder),
        (Col.SIZE, Qt.SortOrder.DescendingOrder),
        (Col.TOKENS, Qt.SortOrder.DescendingOrder),
        (Col.NAME, Qt.SortOrder.AscendingOrder),
    ):
        ws.table.sortByColumn(col, order)
        pump(80)
    phase[0] = "grid view scroll"
    ws.show_grid()
    gbar = ws.grid.grid.verticalScrollBar()
    pump(200)
    for _ in range(100):
        gbar.setValue(gbar.value() + 60)
        pump(16)
    for v in (gbar.maximum(), 0):
        gbar.setValue(v)
        pump(40)
    phase[0] = "edit caption + next row ×30"
    ws.show_table()
    for i in range(30):
        ws.select_row(i)
        m.setData(m.index(i, Col.CAPTION), f"edited caption {i}")
        pump(16)
    phase[0] = "waiting for background work"
    pump(60_000, lambda: not ws.session.checking and not ws.thumbs.busy)
    hb.stop()
    if trace:
        stop_trace.set()
        for k, v in sorted(stalls.items(), key=lambda kv: -kv[1])[:15]:
            print(f"   stall sample ×{v}: {k}")
    report = ws.stats.report
    ws.shutdown()
    shutil.rmtree(thumbs, ignore_errors=True)
    by_phase: dict[str, float] = {}
    for g, ph in gaps:
        by_phase[ph] = max(by_phase.get(ph, 0.0), g)
    opening = ("startup", "open (worker reads 10k headers)")
    idle = ("waiting for background work",)
    interactive = [g for g, ph in gaps if ph not in opening + idle]
    return {
        "open_s": open_s,
        "max_ms": max(interactive),
        "p99_ms": statistics.quantiles(interactive, n=100)[98],
        "open_max_ms": max(g for g, ph in gaps if ph in opening),
        "by_phase": by_phase,
        "rows": m.total,
        "check": report.summary if report else "(no check finished)",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--big", type=int, default=10_000)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "zitdesk-dataset-bench"))
    ap.add_argument("--no-tokenizer", action="store_true")
    ap.add_argument("--skip-import", action="store_true")
    ap.add_argument("--skip-gui", action="store_true")
    ap.add_argument(
        "--control",
        action="store_true",
        help="same script with no background work (no thumbnails, tokenizer or "
        "check): shows the stalls caused by the machine itself",
    )
    ap.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval for the GUI run (Python's default: 0.005 s)",
    )
    ap.add_argument(
        "--trace-stalls",
        action="store_true",
        help="sample the GUI thread's stack whenever the heartbeat is late",
    )
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ZITDESK_HOME", str(work / "home"))
    print(f"machine: {os.cpu_count()} CPU cores, Python {sys.version.split()[0]}")
    if not args.skip_import:
        r = bench_import(work, args.images)
        print(
            f"import: {r['images']} images ({r['source_mib']:.0f} MiB) with {r['thumbnails']} "
            f"thumbnails in {r['seconds']:.2f} s = {r['images'] / r['seconds']:.0f} images/s "
            f"(target ≤ 10 s for 1,000: {'OK' if r['seconds'] <= 10 * args.images / 1000 else 'MISSED'}); "
            f"CPU {r['cpu']:.1f} s, load average {r['load']:.1f} on {os.cpu_count()} cores",
            flush=True,
        )
    if not args.skip_gui:
        if args.switch_interval:
            sys.setswitchinterval(args.switch_interval)
        xvfb = start_xvfb()
        try:
            r = bench_gui(
                work,
                args.big,
                not args.no_tokenizer and not args.control,
                args.trace_stalls,
                args.control,
            )
        finally:
            if xvfb is not None:
                xvfb.terminate()
                xvfb.wait(5)
        where = os.environ.get("DISPLAY") and "Xvfb" or "offscreen"
        print(
            f"gui ({where}): {r['rows']:,} images opened in {r['open_s']:.1f} s (worker); longest "
            f"GUI-thread stall while scrolling/filtering {r['max_ms']:.1f} ms, p99 "
            f"{r['p99_ms']:.1f} ms (target ≤ 50 ms: {'OK' if r['max_ms'] <= 50 else 'MISSED'}); "
            f"while starting and opening {r['open_max_ms']:.1f} ms; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        for ph, g in r["by_phase"].items():
            print(f"   {g:7.1f} ms  {ph}")
        print(f"   check: {r['check']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
