"""End-to-end GPU check with the full-size architecture (random weights), through the CLI users run.

1. Full-size DiT, Qwen3-4B and VAE written as ComfyUI single files (as bench/generate_gpu.py), plus
   a full-size "training adapter" LoRA in the ai-toolkit layout.
2. A 4-image 1024² dataset with captions.
3. ``zitdesk train job.toml --init --preset 24gb`` then ``zitdesk train job.toml --json``: caches,
   training adapter (side mode), compiled steps, a checkpoint, a sample through the Generate path,
   the saved LoRA.
4. ``zitdesk lora inspect`` on the result and ``zitdesk generate --lora result:0.8`` at 1024².

Prints a table of phases with wall times and what each reported. CUDA only (the steps are the
same commands the tests run on the tiny model).

Run:  python bench/e2e_gpu.py [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ZITDESK_HOME", tempfile.mkdtemp(prefix="zithome-"))

from bench import benchkit  # noqa: E402

ROWS: list[tuple[str, float, str]] = []


zit = benchkit.zit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "zit-e2e"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    import torch
    from safetensors.torch import save_file

    from bench import generate_gpu as gb

    t = time.perf_counter()
    tr, te, vae, _tok = gb.build_full("cuda", False)
    model = work / "model"
    gb.write_comfy(model, tr, te, vae)
    # A full-size training adapter (ai-toolkit layout, rank 16, small random weights).
    g = torch.Generator().manual_seed(0)
    adapter = {}
    for i in range(30):
        for m, (o, n) in {
            "attention.to_q": (3840, 3840),
            "attention.to_k": (3840, 3840),
            "attention.to_v": (3840, 3840),
            "attention.to_out.0": (3840, 3840),
            "feed_forward.w1": (10240, 3840),
            "feed_forward.w3": (10240, 3840),
            "feed_forward.w2": (3840, 10240),
        }.items():
            adapter[f"diffusion_model.layers.{i}.{m}.lora_A.weight"] = (
                torch.randn(16, n, generator=g) * 0.01
            ).bfloat16()
            adapter[f"diffusion_model.layers.{i}.{m}.lora_B.weight"] = (
                torch.randn(o, 16, generator=g) * 0.01
            ).bfloat16()
    adapter_path = work / "zimage_turbo_training_adapter_test.safetensors"
    save_file(adapter, str(adapter_path))
    del tr, te, vae
    torch.cuda.empty_cache()
    ROWS.append(
        (
            "build + write full-size model and adapter",
            time.perf_counter() - t,
            ", ".join(
                f"{f.name} {f.stat().st_size / 1e9:.2f} GB"
                for f in sorted(model.glob("*.safetensors"))
            ),
        )
    )

    data = benchkit.square_dataset(work / "data", 4, 1024)

    job = work / "job.toml"
    out = work / "run"
    job.unlink(missing_ok=True)
    assert (
        zit(
            "train",
            str(job),
            "--init",
            "--preset",
            "24gb",
            "--model",
            str(model),
            "--data",
            str(data),
            "--out",
            str(out),
            "--trigger",
            "ohwx",
        ).returncode
        == 0
    )
    import tomllib

    import tomli_w

    cfg = tomllib.loads(job.read_text())
    cfg.setdefault("model", {})["training_adapter"] = str(adapter_path)
    cfg.setdefault("data", {})["resolutions"] = [1024]
    cfg.setdefault("optim", {})["steps"] = args.steps
    cfg.setdefault("save", {})["every"] = args.steps // 2
    cfg.setdefault("sample", {}).update(every=args.steps, prompts=["[trigger], a photo"])
    job.write_text(tomli_w.dumps(cfg))

    t = time.perf_counter()
    res = zit("train", str(job), "--json")
    wall = time.perf_counter() - t
    events = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    kinds = {}
    for ev in events:
        kinds[ev["event"]] = kinds.get(ev["event"], 0) + 1
    steps = [ev for ev in events if ev["event"] == "TrainStep"]
    last = events[-1] if events else {}
    note = (
        f"rc {res.returncode}; {json.dumps(kinds)}; last step: "
        + (json.dumps({k: steps[-1].get(k) for k in ("step", "loss", "it_s")}) if steps else "none")
        + f"; end: {last.get('event')} {str(last.get('message', ''))[:200]}"
    )
    ROWS.append(
        (f"zitdesk train ({args.steps} steps at 1024², 24gb preset, training adapter)", wall, note)
    )
    lora = out / "lora.safetensors"

    t = time.perf_counter()
    res = zit("lora", "inspect", str(lora), "--model", str(model), "--json")
    info = json.loads(res.stdout) if res.returncode == 0 else {}
    ROWS.append(
        (
            "zitdesk lora inspect",
            time.perf_counter() - t,
            f"rc {res.returncode}; {info.get('arch')}/{info.get('dialect')} rank {info.get('rank')} "
            f"coverage {info.get('coverage', {}).get('matched')}/{info.get('coverage', {}).get('total_in_file')}; "
            f"adapter recorded: {'zitdesk_training_adapter' in info.get('metadata', {})}",
        )
    )

    t = time.perf_counter()
    res = zit(
        "generate",
        "--prompt",
        "ohwx, a photo",
        "--model",
        str(model),
        "--lora",
        f"{lora}:0.8",
        "--seed",
        "1",
        "--out",
        str(work / "images"),
        "--unload-text-encoder",
    )
    ROWS.append(
        (
            "zitdesk generate 1024², LoRA 0.8 (incl. load)",
            time.perf_counter() - t,
            f"rc {res.returncode}; "
            + " | ".join(
                line for line in res.stderr.splitlines() if "LoRA" in line or "image(s)" in line
            )[:300],
        )
    )
    samples = sorted(out.rglob("*.png"))
    ROWS.append(
        (
            "files",
            0.0,
            f"{len(samples)} PNGs in the run (samples/contact sheet); "
            f"checkpoints: {sorted(p.name for p in (out / 'checkpoints').glob('*'))}",
        )
    )
    print(f"\n### End to end on {torch.cuda.get_device_name(0)}\n")
    print("| phase | wall s | result |")
    print("|---|---|---|")
    for name, secs, note in ROWS:
        print(f"| {name} | {secs:.1f} | {note} |")


if __name__ == "__main__":
    main()
