"""Training through the app's engine path (StudioEngine on an engine thread) against the CLI.

Full-size random-weight model (ComfyUI files, as bench/generate_gpu.py), a 4-image 1024² dataset,
the ``24gb`` preset at 1024² (bf16, auto checkpointing, compiled blocks):

1. **CLI**: ``python -m zitdesk train job.toml --json`` in its own process (loads the model).
2. **App path**: one ``StudioEngine`` on a dedicated thread, exactly as the app's engine thread
   runs it: a 1024² generation (loads the model) → the same training job (borrows the loaded
   pipeline) with a pause a third of the way in → one "try" generation inside the paused job
   (new prompt, the LoRA as of that step) → resume → the end → the same 1024² generation again.

Step time: the median interval between consecutive ``TrainStep`` events after the first
``--skip`` steps (arrival times in this process; on CUDA each loss is read one step late, which
shifts but does not stretch the intervals), steps next to the pause excluded. Prints a markdown
table for docs/benchmarks.md.

Run:  python bench/studio_gpu.py [--steps 60]      (``--tiny``: CPU check of the script)
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ZITDESK_HOME", tempfile.mkdtemp(prefix="zithome-"))

from bench import benchkit  # noqa: E402


def median_step(times: dict[int, float], skip: int, exclude: set[int]) -> float:
    steps = sorted(times)
    d = [
        times[b] - times[a]
        for a, b in zip(steps, steps[1:], strict=False)
        if a >= skip and b == a + 1 and a not in exclude and b not in exclude
    ]
    return statistics.median(d) if d else float("nan")


def make_inputs(work: Path, tiny: bool, steps: int):
    import torch

    from bench import generate_gpu as gb

    model = work / "model"
    if tiny:  # the tiny model needs its own tokenizer: diffusers layout
        from zitdesk.models.tiny import save_tiny_model

        model = work / "model-tiny"
        if not (model / "model_index.json").exists():
            save_tiny_model(model, "diffusers")
    elif not (model / "z_image_turbo_bf16.safetensors").exists():
        tr, te, vae, _tok = gb.build_full("cpu" if tiny else "cuda", tiny)
        gb.write_comfy(model, tr, te, vae)
        del tr, te, vae
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    size = 64 if tiny else 1024
    data = benchkit.square_dataset(work / "data", 4, size)

    from zitdesk.train.config import TrainConfig
    from zitdesk.train.presets import apply_preset

    def config(out: Path) -> TrainConfig:
        return apply_preset(TrainConfig(), "24gb").with_changes(
            # the tiny model is fp32 on the CPU: keep its dtype so the pipeline can be shared
            model={"path": str(model), **({"base_precision": "auto"} if tiny else {})},
            data={
                "folder": str(data),
                "trigger": "ohwx",
                "resolutions": (size,),
                "cache_dir": str(work / "cache"),
            },
            optim={"steps": steps},
            save={"output_dir": str(out), "every": 0},
            sample={"every": 0},
        )

    return model, size, config


def run_cli(work: Path, cfg) -> dict:
    job = cfg.write(work / "job-cli.toml")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "zitdesk", "train", str(job), "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    times: dict[int, float] = {}
    first_phase: dict[str, float] = {}
    last: dict = {}
    for line in proc.stdout:
        now = time.perf_counter() - t0
        if not line.startswith("{"):
            continue
        ev = json.loads(line)
        if ev["event"] == "TrainStep":
            times[ev["step"]] = now
            last = ev
        elif ev["event"] == "PhaseChanged":
            first_phase.setdefault(ev["phase"], now)
        elif ev["event"] in ("JobFinished", "JobFailed", "JobCancelled"):
            last["end"] = ev["event"]
            last["message"] = ev.get("message", "")
    err = proc.stderr.read()
    rc = proc.wait()
    if rc != 0:
        print(err[-3000:], file=sys.stderr)
    return {
        "rc": rc,
        "wall": time.perf_counter() - t0,
        "times": times,
        "phases": first_phase,
        "last": last,
    }


class EngineThread:
    """One long-lived thread running StudioEngine jobs from a queue (what ui/engine_host does)."""

    def __init__(self) -> None:
        from zitdesk.engine.studio import StudioEngine

        self.engine = StudioEngine()
        self.jobs: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="zitdesk-engine", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self.jobs.get()
            if item is None:
                return
            request, emit, token, done = item
            self.engine.run(request, emit, token)
            done.set()

    def run(self, request, emit, token=None):
        from zitdesk.engine.cancel import CancelToken

        done = threading.Event()
        self.jobs.put((request, emit, token or CancelToken(), done))
        done.wait()

    def stop(self) -> None:
        self.jobs.put(None)
        self.thread.join()


def run_app(work: Path, cfg, model: Path, size: int, steps: int) -> dict:
    from zitdesk.engine.cancel import CancelToken
    from zitdesk.engine.events import (
        ImageReady,
        JobFailed,
        JobFinished,
        JobStarted,
        PhaseChanged,
    )
    from zitdesk.engine.requests import GenerateRequest, LoraSpec, new_job_id
    from zitdesk.models import loader
    from zitdesk.train.config import TrainSpec
    from zitdesk.train.events import Paused, Resumed, TrainStep

    loads: list[float] = []
    real = loader.load_pipeline

    def counting(*a, **kw):
        t = time.perf_counter()
        out = real(*a, **kw)
        loads.append(time.perf_counter() - t)
        return out

    loader.load_pipeline = counting
    eng = EngineThread()
    gen = GenerateRequest(
        prompt="ohwx, a photo of a square",
        width=size,
        height=size,
        steps=8,
        seed=1,
        model_path=str(model),
        output_dir=str(work / "images"),
        preview_every=0,
    )
    res: dict = {}

    def timed_generate(label: str) -> None:
        got: list = []
        t = time.perf_counter()
        eng.run(gen.with_changes(job_id=new_job_id()), got.append)
        res[label] = time.perf_counter() - t
        res[label + "_ok"] = isinstance(got[-1], JobFinished)
        res[label + "_loads"] = len(loads)
        res[label + "_path"] = got[-1].paths[0] if res[label + "_ok"] else ""

    timed_generate("gen_before")
    token = CancelToken()
    times: dict[int, float] = {}
    marks: dict[str, float] = {}
    pause_at = max(3, steps // 3)
    t0 = time.perf_counter()
    tries: list = []

    def emit(ev) -> None:
        now = time.perf_counter() - t0
        if isinstance(ev, TrainStep) and ev.job_id == spec.job_id:
            times[ev.step] = now
            res["last_it_s"] = ev.it_s
            if ev.step == pause_at and "pause_req" not in marks:
                marks["pause_req"] = now
                token.pause()
            if "resumed" in marks and "first_after" not in marks:
                marks["first_after"] = now
                res["first_after_step"] = ev.step
        elif isinstance(ev, PhaseChanged) and ev.job_id == spec.job_id:
            marks.setdefault("phase_" + ev.phase, now)
        elif isinstance(ev, Paused):
            marks["paused"] = now
            res["paused_step"] = ev.step
            req = gen.with_changes(
                job_id="try-1",
                prompt="ohwx, a red square on grey",
                loras=(LoraSpec(ev.lora_path, 1.0),),
            )
            token.interject(req, CancelToken())
        elif isinstance(ev, JobStarted) and ev.job_id == "try-1":
            marks["try_started"] = now
        elif isinstance(ev, ImageReady) and ev.job_id == "try-1":
            marks["try_image"] = now
        elif isinstance(ev, (JobFinished, JobFailed)) and ev.job_id == "try-1":
            tries.append(ev)
            marks["resume_req"] = time.perf_counter() - t0
            token.resume()
        elif isinstance(ev, Resumed):
            marks["resumed"] = now
        elif isinstance(ev, (JobFinished, JobFailed)) and ev.job_id == spec.job_id:
            res["train_end"] = type(ev).__name__ + " " + getattr(ev, "message", "")

    spec = TrainSpec(cfg)
    eng.run(spec, emit, token)
    res["train_wall"] = time.perf_counter() - t0
    res["train_loads"] = len(loads)
    res["times"], res["marks"] = times, marks
    res["try"] = (
        type(tries[0]).__name__ + " " + getattr(tries[0], "message", "") if tries else "none"
    )
    timed_generate("gen_after")
    eng.stop()
    loader.load_pipeline = real
    if res["gen_before_path"] and res["gen_after_path"]:
        import numpy as np
        from PIL import Image

        a, b = (
            np.asarray(Image.open(res[k]).convert("RGB"), np.int16)
            for k in ("gen_before_path", "gen_after_path")
        )
        res["gen_diff"] = int(np.abs(a - b).max())
    res["load_s"] = loads
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--skip", type=int, default=8, help="warm-up steps left out of the median")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "zit-studio"))
    ap.add_argument("--json", default="", help="also write the raw figures here")
    args = ap.parse_args()
    if args.tiny:
        os.environ.setdefault("ZITDESK_DEVICE", "cpu")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    import shutil

    for d in ("run-cli", "run-app"):
        shutil.rmtree(work / d, ignore_errors=True)
    model, size, config = make_inputs(work, args.tiny, args.steps)
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    cli = run_cli(work, config(work / "run-cli"))
    app = run_app(work, config(work / "run-app"), model, size, args.steps)

    m = app["marks"]
    paused_step = app.get("paused_step", -1)
    near = {paused_step, paused_step + 1, app.get("first_after_step", -1)}
    cli_s = median_step(cli["times"], args.skip, set())
    app_s = median_step(app["times"], args.skip, near)
    rows = [
        (
            "CLI `zitdesk train` (own process, loads the model)",
            f"{cli_s:.4f} s/step",
            f"exit {cli['rc']}, {len(cli['times'])} steps, {cli['wall']:.1f} s wall; "
            f"last it/s {cli['last'].get('it_s', 0):.2f}; {cli['last'].get('end', '')}",
        ),
        (
            "StudioEngine on an engine thread (borrows generation's model)",
            f"{app_s:.4f} s/step",
            f"{len(app['times'])} steps, {app['train_wall']:.1f} s wall incl. pause and try; "
            f"ratio to CLI {app_s / cli_s:.3f}; {app.get('train_end', '')}",
        ),
        (
            "model loads (app path)",
            f"{app['train_loads']} before/while training",
            f"generation loaded it once ({app['load_s'][0]:.1f} s); the training job borrowed it"
            if app["train_loads"] == 1
            else f"load times {app['load_s']}",
        ),
        (
            "start → first caching phase",
            f"CLI {cli['phases'].get('caching', float('nan')):.1f} s",
            f"app {m.get('phase_caching', float('nan')):.1f} s (no load)",
        ),
        (
            "pause asked → Paused",
            f"{m.get('paused', 0) - m.get('pause_req', 0):.2f} s",
            f"finishes the step, writes the LoRA of step {paused_step}",
        ),
        (
            "Paused → try image ready",
            f"{m.get('try_image', 0) - m.get('paused', 0):.2f} s",
            f"new prompt (parked text encoder), {size}², 8 steps, LoRA as of this step; {app['try']}",
        ),
        (
            "pause asked → first try image",
            f"{m.get('try_image', 0) - m.get('pause_req', 0):.2f} s",
            "",
        ),
        ("resume asked → Resumed", f"{m.get('resumed', 0) - m.get('resume_req', 0):.3f} s", ""),
        (
            "resume asked → next TrainStep",
            f"{m.get('first_after', 0) - m.get('resume_req', 0):.2f} s",
            f"step {app.get('first_after_step')}",
        ),
        ("generate before training (incl. load)", f"{app['gen_before']:.1f} s", ""),
        (
            "generate after training",
            f"{app['gen_after']:.1f} s",
            f"loads so far {app['gen_after_loads']} (1 = the pipeline came back, no reload); "
            f"max pixel difference to the image before training: {app.get('gen_diff')}",
        ),
    ]
    print(
        f"\n### Training through StudioEngine vs the CLI on {gpu} ({size}², {args.steps} steps, "
        "24gb preset)\n"
    )
    print("| what | figure | notes |")
    print("|---|---|---|")
    for a, b, c in rows:
        print(f"| {a} | {b} | {c} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"cli": cli, "app": app}, default=str, indent=1))


if __name__ == "__main__":
    main()
