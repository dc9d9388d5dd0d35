"""Check ``zitdesk.train.estimate`` on a GPU: one preset's training step at several bucket sizes.

The model, LoRA and inputs are ``bench/train_gpu.py``'s (full-size random DiT, LoRA r32 on
attention + feed-forward of all 34 blocks, one latent and a 128-token caption). One process builds
and prepares the model once, then steps each size in turn (``--warmup`` untimed steps, which take
the compiles, then ``--steps`` timed) and prints one JSON line per size with the measured s/step
and peak memory beside the estimate for this card.

    python bench/estimate_gpu.py --preset 16gb --sizes 512,768,1024
    python bench/estimate_gpu.py --preset 24gb --sizes 768,1024
    python bench/estimate_gpu.py --tiny --sizes 64,128      # CPU check of the script
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="16gb")
    ap.add_argument("--sizes", default="512,768,1024")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    saved, sys.argv = sys.argv, sys.argv[:1]  # train_gpu parses nothing at import, but be safe
    import torch

    import bench.train_gpu as B
    from zitdesk.train.config import TrainConfig
    from zitdesk.train.core import MicroBatch, StepRunner
    from zitdesk.train.estimate import GpuSpec, estimate_run
    from zitdesk.train.presets import apply_preset
    from zitdesk.train.setup import prepare_transformer
    from zitdesk.train.trainer import LossReporter

    sys.argv = saved
    cuda = torch.cuda.is_available() and not args.tiny
    dev = "cuda" if cuda else "cpu"
    name = torch.cuda.get_device_name(0) if cuda else "cpu"
    total = torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else 8.0
    print(f"device {name} {total:.1f} GiB, torch {torch.__version__}", flush=True)
    cfg = apply_preset(TrainConfig(), args.preset).with_changes(
        lora={
            "rank": 32,
            "alpha": 32.0,
            "targets": ("attention", "feed_forward"),
            "include_refiners": True,
        },
        optim={"steps": 10**6, "learning_rate": 1e-4},
    )
    if not cuda:  # the CUDA-only parts of the presets swapped for CPU ones, as train_gpu does
        cfg = cfg.with_changes(
            model={"base_precision": "fp8"}, optim={"optimizer": "adamw"}, memory={"compile": False}
        )
    t0 = time.perf_counter()
    tr = B.build_transformer(dev, not cuda)
    prepare_transformer(tr, cfg, dev)
    print(f"built and prepared in {time.perf_counter() - t0:.1f} s", flush=True)
    B.clean()
    runner = StepRunner(tr, cfg, dev)
    plan = runner.configure(image_tokens=(1024 // 16) ** 2, caption_tokens=128)
    print("plan", {k: v for k, v in plan.items() if not isinstance(v, (list, dict))}, flush=True)
    reporter = LossReporter(lambda ev: None, "bench", 10**6, cuda)
    k = 0
    for size in (int(s) for s in args.sizes.split(",")):
        lat, capt = B.inputs(dev, not cuda, size)
        B.sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats()

        def step(i: int, lat=lat, capt=capt) -> None:
            g = torch.Generator().manual_seed(i)
            noise = torch.randn(lat.shape, generator=g)
            mb = MicroBatch(lat, noise, [capt], [0.3 + 0.6 * ((i * 7919) % 100) / 100], [1.0])
            reporter.add(i + 1, runner.train_step([mb]), runner.lr)

        t = time.perf_counter()
        for _ in range(args.warmup):
            step(k)
            k += 1
        reporter.flush()
        B.sync()
        warm_s = time.perf_counter() - t
        t = time.perf_counter()
        for _ in range(args.steps):
            step(k)
            k += 1
        reporter.flush()
        B.sync()
        s_step = (time.perf_counter() - t) / args.steps
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
        est = estimate_run(
            cfg.with_changes(data={"resolutions": (size,)}),
            GpuSpec(name, total),
            buckets=[(size, size)],
        )
        print(
            json.dumps(
                {
                    "preset": args.preset,
                    "size": size,
                    "s_step": round(s_step, 4),
                    "peak_gib": round(peak, 2),
                    "warmup_s": round(warm_s, 1),
                    "est_s_step": round(est.step_s, 4),
                    "est_peak_gib": round(est.peak_gib, 2),
                    "loss": reporter.last_loss,
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
