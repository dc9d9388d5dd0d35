"""GPU check (#19) on ONE card: what a single GPU can prove of the multi-GPU work, at full size.

The 2-GPU figures (scaling, generating on GPU 0 while GPU 1 trains) need two cards:
bench/multigpu_gpu.py. On one card this script measures:

1. **The 1-GPU baseline** of that scaling: ``zitdesk train job.toml --device cuda:0`` (preset 24gb,
   1024², batch 1) on the full-size random-weight model — steady steps/s, trainer peak, nvidia-smi
   peak.
2. **The app's lanes** (ui/engine_host.py runs one engine per card, each on its own thread): two
   :class:`~zitdesk.engine.studio.StudioEngine`s in one process on two threads, here both on
   cuda:0 — a generation alone (cold, then warm), then the same generation while the other engine
   trains. Both jobs must end well (CUDA, torch.compile and the PNG writer used from two engine
   threads at once); the figures say what sharing one card costs (on two cards each has its own).

Prints a markdown table last (and writes it to --work).

    python bench/lanes_gpu.py [--steps 20]        # one CUDA card
    python bench/lanes_gpu.py --tiny              # CPU check of the script (tiny model)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ZITDESK_HOME", tempfile.mkdtemp(prefix="zithome-"))
os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")


def run_job(engine, request, out: list, done: threading.Event) -> None:
    from zitdesk.engine.cancel import CancelToken

    try:
        engine.run(request, out.append, CancelToken())
    finally:
        done.set()


def end_of(events: list) -> str:
    from zitdesk.engine.events import TERMINAL_EVENTS

    ends = [e for e in events if isinstance(e, TERMINAL_EVENTS)]
    if not ends:
        return "no end"
    e = ends[-1]
    return type(e).__name__ + (f" ({e.message[:160]})" if getattr(e, "message", "") else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--skip", type=int, default=5, help="steps left out of the speed (warm-up)")
    ap.add_argument("--tiny", action="store_true", help="CPU check: tiny model")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "zit-lanes"))
    args = ap.parse_args()
    from bench import benchkit
    from bench import multigpu_gpu as mg

    class Rows(list):  # each figure printed as soon as it is known (a run cut short keeps them)
        def append(self, row) -> None:
            super().append(row)
            print("ROW |", " | ".join(row), flush=True)

    mg.ROWS = Rows()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    size = 64 if args.tiny else 1024
    import torch

    if not args.tiny and not torch.cuda.is_available():
        sys.exit("this check needs a CUDA GPU (or --tiny on the CPU)")
    t = time.perf_counter()
    if args.tiny:
        from zitdesk.models.tiny import save_tiny_model

        model = work / "tiny-model"
        if not model.is_dir():
            save_tiny_model(model, "diffusers")
    else:
        from bench import generate_gpu as gb

        model = work / "model"
        if not (model / "ae.safetensors").is_file():
            tr, te, vae, _tok = gb.build_full("cuda", False)
            gb.write_comfy(model, tr, te, vae)
            del tr, te, vae
            torch.cuda.empty_cache()
    data = benchkit.square_dataset(work / "data", 8, size)
    mg.ROWS.append(("build model + dataset", f"{time.perf_counter() - t:.0f} s", str(model)))
    device = "cpu" if args.tiny else "cuda:0"

    # 1. the 1-GPU baseline through the CLI
    jobs = {}
    for name in ("one", "lane"):
        jobs[name] = work / f"{name}.toml"
        out = work / f"run-{name}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        mg.write_job(jobs[name], model, data, out, args.steps, size)
    s1, _ = mg.train(
        jobs["one"], ["--device", device], f"train, 1 GPU (batch 1, {size}²)", args.skip
    )
    mg.ROWS.append(
        ("1-GPU images/s (the 2-GPU goal: ≥ 1.8× this)", f"{s1:.3f}", "batch 1: images/s = steps/s")
    )

    # 2. two engines on two threads in one process (the app's lanes), both on this card
    from zitdesk.engine.events import ImageReady
    from zitdesk.engine.requests import GenerateRequest
    from zitdesk.engine.studio import StudioEngine
    from zitdesk.train.config import TrainConfig, TrainSpec
    from zitdesk.train.events import TrainStep

    gen_engine, train_engine = StudioEngine(device=device), StudioEngine(device=device)

    ends: list[str] = []

    def generate(label: str) -> float:
        req = GenerateRequest(
            prompt="a photo of a red square",
            model_path=str(model),
            width=size,
            height=size,
            seed=1,
            output_dir=str(work / "images"),
            device=device,
        )
        evs: list = []
        done = threading.Event()
        t0 = time.perf_counter()
        th = threading.Thread(target=run_job, args=(gen_engine, req, evs, done), name="lane-gen")
        th.start()
        th.join(timeout=1800)
        dt = time.perf_counter() - t0
        images = sum(isinstance(e, ImageReady) for e in evs)
        ends.append(end_of(evs))
        mg.ROWS.append((label, f"{dt:.1f} s", f"{ends[-1]}, {images} image(s)"))
        return dt

    generate("lane A: generate alone, cold (load + compile)")
    alone = generate("lane A: generate alone, warm")
    cfg = TrainConfig.load(jobs["lane"]).with_changes(model={"device": device})
    tevs: list = []
    tdone = threading.Event()
    trainer = threading.Thread(
        target=run_job,
        args=(train_engine, TrainSpec(config=cfg), tevs, tdone),
        name="lane-train",
    )
    t0 = time.perf_counter()
    trainer.start()
    while not tdone.is_set() and not any(isinstance(e, TrainStep) for e in tevs):
        time.sleep(0.2)
    first_step = time.perf_counter() - t0
    beside = generate("lane A: generate while lane B trains on the same card")
    trainer.join(timeout=3600)
    steps = [e for e in tevs if isinstance(e, TrainStep)]
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
    mg.ROWS.append(
        (
            "lane B: train beside lane A (same card)",
            f"{steps[-1].it_s if steps else float('nan'):.3f} steps/s",
            f"{end_of(tevs)}, {len(steps)} steps, first step after {first_step:.0f} s; "
            f"generate {beside / alone:.2f}× its warm time alone; process peak {peak:.1f} GiB",
        )
    )
    ok = end_of(tevs) == "JobFinished" and all(e == "JobFinished" for e in ends)
    mg.ROWS.append(("both lanes ended well", "yes" if ok else "NO", ""))
    gen_engine.shutdown()
    train_engine.shutdown()

    table = ["| what | figure | notes |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in mg.ROWS]
    (work / "lanes.log").write_text("\n\n".join(mg.LOG))
    (work / "lanes.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
