"""Launch-to-window time of the desktop app, and what is imported when the window appears.

    .venv/bin/python bench/launch_time.py [--runs 5] [--platform offscreen|xcb]

Each run starts ``main.py --bench-launch`` in a fresh process (so Python start-up and every
import count), with a throw-away ``ZITDESK_HOME``. The app prints the wall-clock time right after
its window is shown and the event loop has processed the show; the difference to the moment the
process was spawned is the launch time. Target: ≤ 1.5 s. The heavy-module list must not contain
torch (torch, diffusers, transformers and peft load on the engine thread's first job).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.5


def one_run(platform: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="zitdesk-bench-") as home:
        env = {**os.environ, "ZITDESK_HOME": home, "QT_QPA_PLATFORM": platform}
        t0 = time.time()
        res = subprocess.run(
            [sys.executable, str(ROOT / "main.py"), "--bench-launch"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        t_exit = time.time()
    if res.returncode != 0:
        raise SystemExit(f"the app failed to start:\n{res.stderr[-3000:]}")
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("{")), None)
    if line is None:
        raise SystemExit(f"no report from the app:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    report = json.loads(line)
    report["launch_s"] = report["window_shown_epoch"] - t0
    report["process_s"] = t_exit - t0
    return report


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--platform", default=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    args = ap.parse_args()
    one_run(args.platform)  # warm the OS file cache; not counted
    runs = [one_run(args.platform) for _ in range(args.runs)]
    times = [r["launch_s"] for r in runs]
    heavy = sorted({m for r in runs for m in r["heavy_modules"]})
    median = statistics.median(times)
    print(f"platform: {args.platform}; runs: {len(times)}")
    print("launch-to-window: " + ", ".join(f"{t:.3f}" for t in times) + " s")
    print(f"median {median:.3f} s, max {max(times):.3f} s (target ≤ {TARGET_S} s)")
    print(f"modules loaded at window time: {runs[-1]['module_count']}")
    print("heavy modules at window time: " + (", ".join(heavy) if heavy else "none"))
    ok = median <= TARGET_S and "torch" not in heavy
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
