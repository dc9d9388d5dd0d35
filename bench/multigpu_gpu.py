"""GPU benchmark (#19): data-parallel LoRA training on 2 GPUs against 1, and generating on GPU 0
while GPU 1 trains — full-size Z-Image architecture, random weights, 1024², through the CLI.

1. The full-size DiT, Qwen3-4B and VAE as ComfyUI single files (bench/generate_gpu.py), and an
   8-image 1024² dataset with captions.
2. ``zitdesk train job.toml --init --preset 24gb``, then (batch 1, grad-accum 1, no samples):
   * ``--device cuda:0``: one GPU — steps/s from the TrainStep events, peak VRAM;
   * ``--gpus 2``: two processes (NCCL), each step trains 2 images — images/s and the scaling
     (images/s on 2 GPUs ÷ on 1; goal ≥ 1.8);
   peak memory per card is read with ``nvidia-smi`` every 0.5 s during each run (the process's
   whole footprint, CUDA context included), and the trainer's own peak (allocated) of rank 0.
3. ``zitdesk generate --device cuda:0`` alone, then again while ``zitdesk train --device cuda:1``
   runs: the image time on GPU 0 with and without training beside it, and the training steps/s
   on GPU 1 while generating.

Prints a markdown table last (and writes it with the log to --work).

Run on a 2-GPU CUDA machine:  python bench/multigpu_gpu.py [--steps 30]
Check the script on a CPU with the tiny model (gloo, 2 processes):  python bench/multigpu_gpu.py --tiny
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ZITDESK_HOME", tempfile.mkdtemp(prefix="zithome-"))
os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")

from bench import benchkit  # noqa: E402

ROWS: list[tuple[str, str, str]] = []
LOG: list[str] = []


def zit(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return benchkit.zit(*args, timeout=timeout, log=LOG)


class VramWatch:
    """Peak ``memory.used`` per GPU (MiB) from nvidia-smi, polled in a thread."""

    def __init__(self) -> None:
        self.peak: dict[int, int] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(
                    [
                        "nvidia-smi",
                        "--query-gpu=index,memory.used",
                        "--format=csv,noheader,nounits",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=10,
                ).stdout
            except (OSError, subprocess.SubprocessError):
                return
            for line in out.splitlines():
                try:
                    i, used = (int(x) for x in line.split(","))
                except ValueError:
                    continue
                self.peak[i] = max(self.peak.get(i, 0), used)
            self._stop.wait(0.5)

    def __enter__(self) -> VramWatch:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join(timeout=15)

    def text(self) -> str:
        return ", ".join(f"GPU {i} {mib / 1024:.1f} GiB" for i, mib in sorted(self.peak.items()))


def events(stdout: str) -> list[dict]:
    return [json.loads(ln) for ln in stdout.splitlines() if ln.startswith("{")]


def steps_per_s(evs: list[dict], skip: int) -> float:
    """Steady steps/s: the TrainStep events after the first ``skip`` (compilation, warm-up)."""
    steps = [e for e in evs if e["event"] == "TrainStep"]
    its = [float(e.get("it_s") or 0) for e in steps[skip:]]
    return its[-1] if its else float("nan")


def train(job: Path, extra: list[str], label: str, skip: int) -> tuple[float, dict]:
    with VramWatch() as watch:
        t = time.perf_counter()
        res = zit("train", str(job), "--json", *extra)
        wall = time.perf_counter() - t
    evs = events(res.stdout)
    end = evs[-1] if evs else {}
    sps = steps_per_s(evs, skip)
    ROWS.append(
        (
            label,
            f"{sps:.3f} steps/s",
            f"rc {res.returncode}, wall {wall:.0f} s, end {end.get('event')}, trainer peak "
            f"{(end.get('peak_vram_bytes') or 0) / 2**30:.1f} GiB, nvidia-smi peak {watch.text()}"
            + (f", {str(end.get('message', ''))[:200]}" if end.get("event") == "JobFailed" else ""),
        )
    )
    return sps, end


def write_job(job: Path, model: Path, data: Path, out: Path, steps: int, size: int) -> None:
    import tomllib

    import tomli_w

    job.unlink(missing_ok=True)
    base = ["train", str(job), "--init", "--preset", "24gb", "--model", str(model)]
    assert zit(*base, "--data", str(data), "--out", str(out), "--trigger", "ohwx").returncode == 0
    cfg = tomllib.loads(job.read_text())
    cfg.setdefault("data", {})["resolutions"] = [size]
    cfg["optim"].update(steps=steps, batch_size=1, grad_accum=1)
    cfg.setdefault("save", {})["every"] = 0
    cfg.setdefault("sample", {}).update(every=0, prompts=[])
    job.write_text(tomli_w.dumps(cfg))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--skip", type=int, default=5, help="steps left out of the speed (warm-up)")
    ap.add_argument("--tiny", action="store_true", help="CPU check: tiny model, 2 gloo processes")
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "zit-multigpu"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    size = 64 if args.tiny else 1024
    spec = importlib.util.spec_from_file_location("genbench", ROOT / "bench" / "generate_gpu.py")
    gb = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(gb)  # type: ignore[union-attr]
    import torch

    if not args.tiny and torch.cuda.device_count() < 2:
        sys.exit("this benchmark needs 2 GPUs (or --tiny on the CPU)")
    t = time.perf_counter()
    model = work / "model"
    if args.tiny:  # the tiny model with its own tokenizer (diffusers folder layout)
        from zitdesk.models.tiny import save_tiny_model

        model = work / "tiny-model"
        if not model.is_dir():
            save_tiny_model(model, "diffusers")
    elif not (model / "ae.safetensors").is_file():
        tr, te, vae, _tok = gb.build_full("cuda", False)
        gb.write_comfy(model, tr, te, vae)
        del tr, te, vae
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    data = benchkit.square_dataset(work / "data", 8, size)
    ROWS.append(("build model + dataset", f"{time.perf_counter() - t:.0f} s", str(model)))

    one_dev = ["--device", "cpu"] if args.tiny else ["--device", "cuda:0"]
    two = ["--processes", "2"] if args.tiny else ["--gpus", "2"]
    jobs = {}
    for name in ("one", "two", "beside"):
        jobs[name] = work / f"{name}.toml"
        out = work / f"run-{name}"
        if out.exists():
            import shutil

            shutil.rmtree(out)
        write_job(jobs[name], model, data, out, args.steps, size)

    s1, _ = train(jobs["one"], one_dev, "train, 1 GPU (batch 1)", args.skip)
    s2, _ = train(jobs["two"], two, "train, 2 GPUs data-parallel (batch 1 each)", args.skip)
    ROWS.append(
        (
            "scaling: images/s on 2 GPUs ÷ on 1",
            f"{2 * s2 / s1:.2f}×" if s1 == s1 and s1 > 0 else "n/a",
            f"{s1:.3f} vs {2 * s2:.3f} images/s (goal ≥ 1.8×)",
        )
    )

    gen = [
        "generate",
        "--prompt",
        "a photo of a red square",
        "--model",
        str(model),
        "--seed",
        "1",
        "--width",
        str(size),
        "--height",
        str(size),
        "--out",
        str(work / "images"),
        "--device",
        "cpu" if args.tiny else "cuda:0",
        "--unload-text-encoder",
    ]
    t = time.perf_counter()
    res = zit(*gen)
    alone = time.perf_counter() - t
    ROWS.append(("generate on GPU 0 alone (incl. load)", f"{alone:.1f} s", f"rc {res.returncode}"))

    beside = ["--device", "cpu" if args.tiny else "cuda:1"]
    cmd = [sys.executable, "-m", "zitdesk", "train", str(jobs["beside"]), "--json", *beside]
    with VramWatch() as watch:
        err = (work / "beside.stderr").open("w")
        trainer = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        lines: list[str] = []
        assert trainer.stdout is not None
        for line in trainer.stdout:  # wait for the first training step
            lines.append(line)
            if '"TrainStep"' in line:
                break
        t = time.perf_counter()
        res = zit(*gen)
        during = time.perf_counter() - t
        rest, _ = trainer.communicate(timeout=3600)
        err.close()
    evs = events("".join(lines) + rest)
    ROWS.append(
        (
            "generate on GPU 0 while GPU 1 trains (incl. load)",
            f"{during:.1f} s",
            f"rc {res.returncode}, {during / alone:.2f}× the time alone; training beside it "
            f"{steps_per_s(evs, args.skip):.3f} steps/s, end {evs[-1]['event'] if evs else '?'}; "
            f"nvidia-smi peak {watch.text()}",
        )
    )

    table = ["| what | figure | notes |", "|---|---|---|"]
    table += [f"| {a} | {b} | {c} |" for a, b, c in ROWS]
    (work / "multigpu.log").write_text("\n\n".join(LOG))
    (work / "multigpu.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
