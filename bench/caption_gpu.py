"""Caption benchmark: full-size describers (random weights) and a ViT-B/16 WD-layout tagger.

Speed and memory do not depend on weight values, so random weights give real figures; random
weights never emit the end token, so every caption is exactly ``--tokens`` tokens long (real
captions often stop earlier: the per-token figure is the one to scale). The script

1. builds Qwen2.5-VL-3B and Qwen3-VL-4B (their published config sizes, kept in
   tests/support/caption_models.py with the tiny describers) with random bf16 weights,
   saves each folder (weights, image processor config, the bundled Qwen tokenizer), loads it
   through ``zitdesk.caption.describer.load_describer`` (the app's path) and captions
   ``--images`` 1024×768 images with the "detailed" template: load seconds, seconds per image,
   tokens per second, peak VRAM;
2. exports a ViT-B/16 tagger at 448² in the WD v3 layout (NHWC BGR input, sigmoid output over
   10,861 tags, random weights) to ONNX and times ``zitdesk.caption.tagger`` on onnxruntime's
   CPU provider and, when present, its CUDA provider: images per second.

Prints a markdown table last (also $OUT/caption_gpu.json when $OUT is set).

Run on a CUDA machine:  python bench/caption_gpu.py
Check the script on a CPU with tiny sizes:  python bench/caption_gpu.py --tiny
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ZITDESK_HOME", tempfile.mkdtemp(prefix="zithome-"))

from zitdesk.offline import enforce_offline  # noqa: E402

enforce_offline()

import torch  # noqa: E402

from tests.support.caption_models import QWEN_VL_FULL  # noqa: E402

ROWS: list[dict] = []


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0


def bench_describer(name: str, args, work: Path) -> None:
    from PIL import Image
    from transformers import AutoModelForImageTextToText

    from tests.support.caption_models import bundled_tokenizer, qwen_vl_config
    from tests.support.caption_models import save_describer_folder as save_folder
    from zitdesk.caption.describer import DescriberOptions, load_describer

    cuda = torch.cuda.is_available()
    dev = "cuda" if cuda else "cpu"
    row: dict = {"what": name, "device": dev}
    try:
        tok = bundled_tokenizer()
        cfg, patch = qwen_vl_config(name, args.tiny, tok)
        folder = work / name
        t = time.perf_counter()
        torch.manual_seed(0)
        with torch.device(dev):
            model = AutoModelForImageTextToText.from_config(
                cfg, dtype=torch.bfloat16 if cuda else torch.float32
            )
        row["params_b"] = round(sum(p.numel() for p in model.parameters()) / 1e9, 3)
        save_folder(model, folder, tok, patch_size=patch)
        del model
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
        row["build_save_s"] = round(time.perf_counter() - t, 1)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        opts = DescriberOptions(template="detailed", max_tokens=args.tokens, device=dev)
        d = load_describer(folder, opts)
        row["load_s"] = round(time.perf_counter() - t, 2)
        rng = torch.Generator().manual_seed(1)
        imgs = [
            Image.fromarray(
                torch.randint(0, 256, (768, 1024, 3), generator=rng, dtype=torch.uint8).numpy()
            )
            for _ in range(args.images + 1)
        ]
        d.describe(imgs[0], opts)  # warm-up (kernels, allocator)
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        texts = [d.describe(im, opts) for im in imgs[1:]]
        if cuda:
            torch.cuda.synchronize()
        per = (time.perf_counter() - t) / args.images
        n_tok = len(d.tokenizer(texts[0])["input_ids"]) if texts else 0
        row.update(
            s_per_image=round(per, 2), tokens=args.tokens, tok_per_s=round(args.tokens / per, 1)
        )
        row["peak_vram_gib"] = round(peak_gib(), 2)
        row["sample_tokens_decoded"] = n_tok
        d.close()
        del d
    except Exception as exc:  # noqa: BLE001 - keep the table
        traceback.print_exc()
        row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
        import shutil

        shutil.rmtree(work / name, ignore_errors=True)
    ROWS.append(row)
    print(row, flush=True)


class _ViTTagger(torch.nn.Module):
    """ViT-B/16 at 448² with the WD v3 interface: NHWC BGR 0–255 in, sigmoid scores out."""

    def __init__(self, n_tags: int, dim: int = 768, depth: int = 12, heads: int = 12, side=448):
        super().__init__()
        self.patch = torch.nn.Conv2d(3, dim, 16, 16)
        self.pos = torch.nn.Parameter(torch.randn(1, (side // 16) ** 2, dim) * 0.02)
        layer = torch.nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = torch.nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, n_tags)

    def forward(self, x):
        x = x.permute(0, 3, 1, 2) / 255.0
        x = self.patch(x).flatten(2).transpose(1, 2) + self.pos
        x = self.norm(self.blocks(x)).mean(1)
        return torch.sigmoid(self.head(x))


def bench_tagger(args, work: Path) -> None:
    import onnxruntime as ort
    from PIL import Image

    from tests.support.caption_models import write_selected_tags
    from zitdesk.caption.tagger import TaggerOptions, load_tagger

    n_tags, side = (10861, 448) if not args.tiny else (64, 448)
    folder = work / "wd-vit-b16-random"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        torch.manual_seed(0)
        m = _ViTTagger(n_tags, *((768, 12, 12) if not args.tiny else (64, 1, 2))).eval()
        x = torch.zeros(1, side, side, 3)
        torch.onnx.export(
            m,
            (x,),
            str(folder / "model.onnx"),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
        cats = [9 if k < 4 else (4 if k > n_tags - 2700 else 0) for k in range(n_tags)]
        write_selected_tags(folder, [(k, f"tag_{k}", c, 1) for k, c in enumerate(cats)])
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        ROWS.append({"what": "tagger export", "error": f"{type(exc).__name__}: {exc}"[:200]})
        return
    img = Image.new("RGB", (1024, 768), (120, 80, 40))
    devices = ["cpu"] + (
        ["cuda"] if "CUDAExecutionProvider" in ort.get_available_providers() else []
    )
    for dev in devices:
        row: dict = {"what": "tagger ViT-B/16 448² (WD v3 layout)", "device": dev}
        try:
            t = load_tagger(folder, device=dev)
            row["provider"] = t.provider
            row["cpu_threads"] = os.cpu_count()
            t.tags(img, TaggerOptions())  # warm-up
            n = args.tagger_images
            t0 = time.perf_counter()
            for _ in range(n):
                t.tags(img, TaggerOptions())
            dt = time.perf_counter() - t0
            row.update(images=n, images_per_s=round(n / dt, 2), s_per_image=round(dt / n, 3))
            opts = TaggerOptions()
            [t.pick(r, opts) for r in t.scores([img] * 8)]  # warm-up at batch 8
            t0 = time.perf_counter()
            reps = max(1, n // 8)
            for _ in range(reps):
                [t.pick(r, opts) for r in t.scores([img] * 8)]
            row["batch8_images_per_s"] = round(8 * reps / (time.perf_counter() - t0), 2)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        ROWS.append(row)
        print(row, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="tiny sizes on the CPU (checks the script)")
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--tagger-images", type=int, default=20)
    ap.add_argument("--only", choices=("all", "describer", "tagger"), default="all")
    args = ap.parse_args()
    if args.tiny:
        args.tokens, args.images, args.tagger_images = min(args.tokens, 8), 1, 3
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zit-caption-") as tmp:
        work = Path(tmp)
        if args.only in ("all", "describer"):
            for name in QWEN_VL_FULL:
                bench_describer(name, args, work)
        if args.only in ("all", "tagger"):
            bench_tagger(args, work)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU only"
    print(
        f"\n## caption benchmark ({gpu}, torch {torch.__version__}, {time.perf_counter() - t_all:.0f} s)\n"
    )
    cols = [
        "what",
        "device",
        "params_b",
        "load_s",
        "s_per_image",
        "tok_per_s",
        "tokens",
        "peak_vram_gib",
        "images_per_s",
        "batch8_images_per_s",
        "provider",
        "error",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in ROWS:
        print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    out = os.environ.get("OUT")
    if out:
        Path(out, "caption_gpu.json").write_text(json.dumps({"gpu": gpu, "rows": ROWS}, indent=1))
    return 0 if all("error" not in r for r in ROWS) else 1


if __name__ == "__main__":
    sys.exit(main())
