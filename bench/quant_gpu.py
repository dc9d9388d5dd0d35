"""GPU benchmark for issue #17: quantised DiT formats and memory caps, one process.

1. The full-size DiT (random weights, scaled as bench/generate_gpu.py does) and the Flux VAE are
   built on the GPU; a fixed caption embedding (128 × 2560) stands in for the text encoder, so
   the peaks are the DiT + VAE part of a job (the text encoder streams from RAM in every rung a
   capped card gets, a few hundred MiB at a time).
2. Each format is quantised in the script with zitdesk's own encoders and loaded through
   zitdesk's loaders (GGUF through ``load_gguf_transformer``'s diffusers path, scaled fp8 /
   nvfp4 written to disk and read by ``load_packed_transformer``): time and peak of 1024²,
   8 steps, uncapped, and the drift of the image against bf16 on the same seed.
3. For caps of 4, 6, 8, 10, 12, 16 GiB (``set_per_process_memory_fraction``) and the bf16 /
   Q8_0 / Q4_K files, the ladder's pre-flight choice (``zitdesk.memory_predict.preflight``) is
   run; on OOM the ladder's retry (``after_oom``) is followed, counting attempts.

    python bench/quant_gpu.py            # CUDA
    python bench/quant_gpu.py --tiny     # CPU check of the script
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("ZITDESK_HOME", tempfile.mkdtemp(prefix="zithome-"))

from zitdesk.offline import enforce_offline  # noqa: E402

enforce_offline()
import torch  # noqa: E402

from bench import benchkit  # noqa: E402

T0 = time.perf_counter()
GIB = 2**30
ROWS: list[dict] = []
CAPS: list[dict] = []


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.1f}s] {msg}", flush=True)


def free() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def build(tiny: bool, dev: str):
    if tiny:
        from tests.support.quant_files import make_quant_components

        c = make_quant_components()
        return c["transformer"].to(dev), c["vae"].to(dev), 256
    tr, _te, vae = benchkit.full_size_parts(dev, text_encoder=False)
    return tr, vae, 2560


def pipeline(tr, vae):
    return benchkit.plain_pipeline(tr, vae)


def generate(pipe, emb, size: int, steps: int, dev: str, tiled: bool = False):
    if tiled:
        pipe.vae.enable_tiling()
    g = torch.Generator("cpu").manual_seed(7)
    if dev == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    with torch.no_grad():
        img = pipe(
            prompt_embeds=[emb],
            height=size,
            width=size,
            num_inference_steps=steps,
            guidance_scale=0.0,
            generator=g,
            output_type="pt",
        ).images
    if dev == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t, img.float().cpu()


def comfy_state(tr) -> dict:
    from zitdesk.models.tiny import comfy_dit_state_dict

    return {k: v.detach() for k, v in comfy_dit_state_dict(tr.state_dict()).items()}


def target(name: str, t) -> bool:
    return (
        t.ndim == 2
        and name.startswith(("layers.", "noise_refiner.", "context_refiner."))
        and "norm" not in name
    )


def gguf_ckpt(sd: dict, qtype: str) -> dict:
    """What load_gguf_transformer reads from a file: GGUFParameter bytes for quantised layers."""
    from diffusers.quantizers.gguf.utils import GGUFParameter
    from gguf import GGMLQuantizationType

    from zitdesk.models.quant.codecs import gguf_quantizable, quantize_gguf

    out = {}
    for k, v in sd.items():
        if target(k, v) and gguf_quantizable(tuple(v.shape), qtype):
            out[k] = GGUFParameter(
                quantize_gguf(v, qtype).cpu(), quant_type=GGMLQuantizationType[qtype]
            )
        else:
            out[k] = v.float().cpu()
    return out


def load_gguf(ckpt: dict, cfg_dir: Path, dtype):
    from diffusers import GGUFQuantizationConfig, ZImageTransformer2DModel

    return ZImageTransformer2DModel.from_single_file(
        dict(ckpt),
        config=str(cfg_dir),
        quantization_config=GGUFQuantizationConfig(compute_dtype=dtype),
        local_files_only=True,
        dtype=dtype,
    )


def packed_file(sd: dict, fmt: str, path: Path) -> Path:
    from zitdesk.io import atomic_save_tensors
    from zitdesk.models.quant.codecs import quantize_fp8_scaled, quantize_nvfp4

    out = {}
    for k, v in sd.items():
        layer = k[: -len(".weight")]
        if target(k, v) and (fmt != "nvfp4" or v.shape[1] % 16 == 0):
            if fmt == "nvfp4":
                p, s, s2 = quantize_nvfp4(v)
                out[k], out[layer + ".weight_scale"] = p.cpu(), s.cpu()
                out[layer + ".weight_scale_2"] = s2.float().cpu()
            else:
                q, s = quantize_fp8_scaled(v)
                out[k], out[layer + ".weight_scale"] = q.cpu(), s.float().cpu()
            fmt_name = "nvfp4" if fmt == "nvfp4" else "float8_e4m3fn"
            out[layer + ".comfy_quant"] = torch.tensor(
                list(json.dumps({"format": fmt_name}).encode()), dtype=torch.uint8
            )
        else:
            out[k] = v.to(torch.bfloat16).cpu().contiguous()
    atomic_save_tensors(path, out)
    return path


def drift(img, ref) -> float:
    return float((img - ref).abs().mean())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--budget", type=float, default=300.0, help="seconds before skipping work")
    ap.add_argument("--out", default=os.environ.get("OUT", "/tmp"))
    args = ap.parse_args()
    cuda = torch.cuda.is_available() and not args.tiny
    dev = "cuda" if cuda else "cpu"
    size, steps = (1024, 8) if cuda else (64, 2)
    dtype = torch.bfloat16 if cuda else torch.float32
    total = torch.cuda.get_device_properties(0).total_memory if cuda else 0
    log(f"device {torch.cuda.get_device_name(0) if cuda else 'cpu'}, torch {torch.__version__}")

    from zitdesk.engine.requests import GenerateRequest, MemoryMode
    from zitdesk.memory_predict import MemoryPredictor, after_oom, preflight
    from zitdesk.models.loader import _config_dir, _dit_rename
    from zitdesk.models.quant.packed import load_packed_transformer

    tr, vae, cap_dim = build(args.tiny, dev)
    if not cuda:
        tr, vae = tr.float(), vae.float()
    cfg = dict(tr.config)
    cfg_dir = _config_dir("transformer", {k: v for k, v in cfg.items() if not k.startswith("_")})
    torch.manual_seed(1)
    emb = torch.randn(128, cap_dim, dtype=dtype, device=dev) * 0.5
    # on the CPU: GPU views of tr would keep the whole bf16 DiT resident in every later row
    sd = {k: v.cpu() for k, v in comfy_state(tr).items()}
    bf16_state = {k: v.detach().cpu() for k, v in tr.state_dict().items()}
    log("built")

    # -- 1. formats, uncapped ------------------------------------------------------------
    pipe = pipeline(tr, vae)
    generate(pipe, emb, size, steps, dev)  # warm-up
    free()
    t_bf16, ref = generate(pipe, emb, size, steps, dev)
    pk = torch.cuda.max_memory_allocated() if cuda else 0
    ROWS.append(dict(fmt="bf16", s=t_bf16, peak=pk, drift=0.0, weights=0))
    free()
    tr.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
    free()
    t, img = generate(pipe, emb, size, steps, dev)
    pk = torch.cuda.max_memory_allocated() if cuda else 0
    ROWS.append(dict(fmt="fp8 layerwise (mode)", s=t, peak=pk, drift=drift(img, ref), weights=0))
    del pipe, tr
    free()
    log("bf16 / fp8 done")

    work = Path(tempfile.mkdtemp(prefix="quantbench-"))
    ggufs: dict[str, dict] = {}
    for fmt in (
        "gguf-Q8_0",
        "gguf-Q6_K",
        "gguf-Q5_K",
        "gguf-Q4_K",
        "gguf-Q4_0",
        "fp8-scaled",
        "nvfp4",
    ):
        if time.perf_counter() - T0 > args.budget * 0.6:
            ROWS.append(dict(fmt=fmt, s=0, peak=0, drift=0, weights=0, note="skipped (time)"))
            continue
        try:
            tq = time.perf_counter()
            if fmt.startswith("gguf-"):
                ck = gguf_ckpt({k: v.to(dev) for k, v in sd.items()}, fmt[5:])
                if fmt in ("gguf-Q8_0", "gguf-Q4_K"):
                    ggufs[fmt] = ck
                model = load_gguf(ck, cfg_dir, dtype)
            else:
                on_dev = {k: v.to(dev) for k, v in sd.items()}  # quantised on the GPU
                path = packed_file(on_dev, fmt, work / f"dit-{fmt}.safetensors")
                del on_dev
                model = load_packed_transformer(path, "", cfg, dtype, _dit_rename)
                path.unlink()
            wbytes = sum(p.numel() * p.element_size() for p in model.parameters())
            wbytes += sum(b.numel() * b.element_size() for b in model.buffers())
            model.to(dev)
            load_s = time.perf_counter() - tq
            p2 = pipeline(model, vae)
            generate(p2, emb, size, steps, dev)
            free()
            t, img = generate(p2, emb, size, steps, dev)
            pk = torch.cuda.max_memory_allocated() if cuda else 0
            ROWS.append(
                dict(
                    fmt=fmt,
                    s=t,
                    peak=pk,
                    drift=drift(img, ref),
                    weights=wbytes,
                    note=f"quantise+load {load_s:.0f} s",
                )
            )
            del p2, model
        except Exception as exc:  # noqa: BLE001 - keep the table
            traceback.print_exc()
            ROWS.append(dict(fmt=fmt, s=0, peak=0, drift=0, weights=0, note=f"failed: {exc}"[:80]))
        free()
        log(f"{fmt} done")

    # -- 2. caps: the ladder's first attempt ------------------------------------------------
    caps = (4, 6, 8, 10, 12, 16) if cuda else (4,)
    # Q4_K first: the 8 GB file; Q8_0 last (skipped first when time runs short)
    order = [f for f in ("bf16", "gguf-Q4_K", "gguf-Q8_0") if f == "bf16" or f in ggufs]
    vae_cpu = vae.to("cpu")

    def fresh(fmt: str):
        """A new DiT on the CPU for each run (offload hooks are not undone between runs)."""
        if fmt == "bf16":
            from diffusers import ZImageTransformer2DModel

            with torch.device("meta"):
                m = ZImageTransformer2DModel.from_config(cfg)
            m.load_state_dict(bf16_state, assign=True)
            return m.to(dtype)
        return load_gguf(ggufs[fmt], cfg_dir, dtype)  # GGUFParameter has no deepcopy

    def place(pipe, req):
        mode = req.memory_mode
        if mode is MemoryMode.FP8:
            pipe.transformer.enable_layerwise_casting(
                storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype
            )
        if mode in (MemoryMode.GPU, MemoryMode.FP8):
            pipe.transformer.to(dev)
            pipe.vae.to(dev)
        elif mode is MemoryMode.MODEL_OFFLOAD:
            pipe.enable_model_cpu_offload(device=dev)
        elif mode is MemoryMode.GROUP_OFFLOAD:
            pipe.transformer.enable_group_offload(
                onload_device=torch.device(dev),
                offload_device=torch.device("cpu"),
                offload_type="block_level",
                num_blocks_per_group=1,
                use_stream=cuda,
            )
            pipe.vae.to(dev)
        else:
            pipe.enable_sequential_cpu_offload(device=dev)

    for fmt in order:
        for cap in caps:
            if time.perf_counter() - T0 > args.budget:
                CAPS.append(dict(fmt=fmt, cap=cap, note="skipped (time)"))
                continue
            if cuda:
                torch.cuda.set_per_process_memory_fraction(min(1.0, cap * GIB / total))
            room = cap * GIB
            dit_format = "" if fmt == "bf16" else fmt
            req = preflight(
                GenerateRequest(prompt="x", width=1024, height=1024, steps=8),
                room,
                MemoryPredictor(),
                dit_format,
            )
            first = f"{req.memory_mode.value}{'+te-ram' if req.unload_text_encoder else ''}{'+tiled' if req.vae_tiling else ''}"
            attempts, result = 0, None
            while attempts < 4 and result is None:
                attempts += 1
                p3 = None
                try:
                    free()
                    p3 = pipeline(fresh(fmt), copy.deepcopy(vae_cpu))
                    place(p3, req)
                    t, _img = generate(p3, emb, size, steps, dev, tiled=req.vae_tiling)
                    result = (t, torch.cuda.max_memory_allocated() if cuda else 0)
                except torch.cuda.OutOfMemoryError:
                    hint = after_oom(req, room, MemoryPredictor(), dit_format)
                    if not hint:
                        break
                    req = req.with_changes(
                        memory_mode=MemoryMode(hint["memory_mode"]),
                        vae_tiling=hint["vae_tiling"],
                        unload_text_encoder=hint["unload_text_encoder"],
                    )
                except Exception as exc:  # noqa: BLE001
                    traceback.print_exc()
                    CAPS.append(dict(fmt=fmt, cap=cap, first=first, note=f"failed: {exc}"[:80]))
                    break
                finally:
                    del p3
                    free()
            if result is not None:
                CAPS.append(
                    dict(
                        fmt=fmt,
                        cap=cap,
                        first=first,
                        attempts=attempts,
                        final=req.memory_mode.value,
                        s=result[0],
                        peak=result[1],
                        ratio=result[0] / t_bf16,
                    )
                )
            elif not any(c.get("cap") == cap and c.get("fmt") == fmt for c in CAPS):
                CAPS.append(dict(fmt=fmt, cap=cap, first=first, attempts=attempts, note="no fit"))
            log(f"cap {fmt} {cap} GiB done")
        if cuda:
            torch.cuda.set_per_process_memory_fraction(1.0)

    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "quant_gpu.json").write_text(
        json.dumps({"rows": ROWS, "caps": CAPS}, indent=1)
    )
    print(
        "\n| DiT format | s (1024², 8 steps) | peak GiB | DiT weights GiB | image drift vs bf16 (mean abs, 0–1) | note |"
    )
    print("|---|---|---|---|---|---|")
    for r in ROWS:
        w = f"{r['weights'] / GIB:.2f}" if r.get("weights") else ""
        print(
            f"| {r['fmt']} | {r['s']:.2f} | {r['peak'] / GIB:.2f} | {w} | {r['drift']:.4f} | {r.get('note', '')} |"
        )
    print(
        "\n| file | cap GiB | pre-flight choice | attempts | ran as | s | × bf16 uncapped | peak GiB | note |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for c in CAPS:
        if "s" in c:
            print(
                f"| {c['fmt']} | {c['cap']} | {c['first']} | {c['attempts']} | {c['final']} | {c['s']:.2f} | {c['ratio']:.2f} | {c['peak'] / GIB:.2f} | |"
            )
        else:
            print(
                f"| {c['fmt']} | {c['cap']} | {c.get('first', '')} | {c.get('attempts', '')} | | | | | {c.get('note', '')} |"
            )
    log("end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
