"""How much of a compiled first image a restart still pays with zitdesk's persistent compile cache.

The tiny model's blocks run the same Python code as the full-size ones, so Dynamo's tracing and
the cache look-ups cost about the same; only the generated kernels differ (C++ here, Triton on a
GPU). Three fresh processes compile the DiT blocks (``zitdesk.engine.speed.use_compile_cache`` +
``compile_repeated_blocks``) and time two 64² images: a cold cache, then the same cache twice.

    python bench/compile_cache_cpu.py        # prints a table (CPU only, ≈ 1–3 min)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def child() -> None:
    import torch
    from diffusers import ZImagePipeline

    from zitdesk.engine.speed import use_compile_cache
    from zitdesk.models.tiny import make_tiny_components

    torch.set_num_threads(1)
    pipe = ZImagePipeline(**make_tiny_components(seed=0))
    pipe.set_progress_bar_config(disable=True)
    use_compile_cache("cpu")
    torch._dynamo.config.recompile_limit = 16
    pipe.transformer.compile_repeated_blocks(fullgraph=False, dynamic=False)
    with torch.no_grad():
        emb, _ = pipe.encode_prompt("a fox", do_classifier_free_guidance=False)
    out = []
    for i in range(3):
        t = time.perf_counter()
        with torch.inference_mode():
            pipe(
                prompt_embeds=emb,
                height=64,
                width=64,
                num_inference_steps=2,
                guidance_scale=0.0,
                generator=torch.Generator().manual_seed(i),
                output_type="latent",
            )
        out.append(time.perf_counter() - t)
    print("RESULT " + json.dumps(out), flush=True)


def main() -> None:
    if "--child" in sys.argv:
        child()
        return
    home = tempfile.mkdtemp(prefix="zithome-cc-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TORCHINDUCTOR", "TRITON"))}
    env["ZITDESK_HOME"] = home
    rows = []
    for label in ("cold cache (first start)", "restart, warm cache", "restart again"):
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--child"], env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - t
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), "")
        if not line:
            print(proc.stderr[-3000:])
            raise SystemExit("child failed")
        first, *warm = json.loads(line[7:])
        rows.append((label, first, min(warm), wall))
    print("| process | first image s | warm image s | first − warm s | process wall s |")
    print("|---|---|---|---|---|")
    for label, first, warm, wall in rows:
        print(f"| {label} | {first:.2f} | {warm:.3f} | {first - warm:.2f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
