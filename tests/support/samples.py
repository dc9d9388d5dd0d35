"""Fabricated LoRA files for tests, the scan benchmark and UI screenshots (torch-free).

Files get a real safetensors header and zero-filled (sparse) tensor data, so a full-size
240-module Z-Image LoRA header costs almost no disk. Every dialect zitdesk reads and a few
foreign architectures can be made: :func:`make_lora` (``kind`` = ``aitoolkit``, ``kohya``,
``kohya_fused``, ``dot``, ``diffusers``, ``peft``, ``lokr``, ``sdxl``, ``sd15``, ``flux``,
``qwen_image``, ``wan``, ``unknown``). :func:`build_sample_library` writes a small mixed library
with sidecars and previews.
"""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path
from typing import Any

_SIZES = {"F32": 4, "F16": 2, "BF16": 2}


def write_safetensors(
    path: str | Path, tensors: dict[str, tuple], metadata: dict[str, Any] | None = None
) -> Path:
    """``tensors``: name → ``(shape,)``, ``(shape, dtype)`` or ``(shape, dtype, scalar value)``.

    ``metadata`` values are written as given (non-strings too, to fabricate odd headers).
    """
    header: dict[str, Any] = {}
    values: list[tuple[int, bytes]] = []
    off = 0
    for name, spec in tensors.items():
        shape = list(spec[0])
        dtype = spec[1] if len(spec) > 1 else "BF16"
        n = 1
        for s in shape:
            n *= s
        nbytes = n * _SIZES[dtype]
        if len(spec) > 2:
            raw = struct.pack("<f", spec[2])
            values.append(
                (
                    off,
                    raw
                    if dtype == "F32"
                    else (struct.pack("<e", spec[2]) if dtype == "F16" else raw[2:]),
                )
            )
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + nbytes]}
        off += nbytes
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)) + h)
        for pos, raw in values:
            fh.seek(8 + len(h) + pos)
            fh.write(raw)
        fh.truncate(8 + len(h) + off)
    return p


# Z-Image modules (diffusers names) and shapes, a subset is enough for most tests.
_D, _F = 3840, 10240
_ZI_MODULES = {
    "attention.to_q": (_D, _D),
    "attention.to_k": (_D, _D),
    "attention.to_v": (_D, _D),
    "attention.to_out.0": (_D, _D),
    "feed_forward.w1": (_F, _D),
    "feed_forward.w3": (_F, _D),
    "feed_forward.w2": (_D, _F),
    "adaLN_modulation.0": (4 * _D, 256),
}


def zimage_modules(layers: int = 30) -> dict[str, tuple[int, int]]:
    """``{module: (out, in)}``: the 240 modules ai-toolkit trains (30 layers × 8)."""
    return {f"layers.{i}.{s}": shp for i in range(layers) for s, shp in _ZI_MODULES.items()}


def _kohya(module: str) -> str:
    return "lora_unet_" + module.replace(".", "_")


def make_lora(
    path: str | Path,
    kind: str = "aitoolkit",
    rank: int = 16,
    alpha: float | None = None,
    metadata: dict[str, Any] | None = None,
    layers: int = 30,
) -> Path:
    """Write a LoRA of ``kind`` (see the module docstring) with ``layers`` Z-Image blocks."""
    t: dict[str, tuple] = {}
    mods = zimage_modules(layers)
    a = float(alpha if alpha is not None else rank)
    if kind in ("aitoolkit", "diffusers", "peft"):
        prefix = {"aitoolkit": "diffusion_model.", "diffusers": "transformer.", "peft": ""}[kind]
        ad = ".default" if kind == "peft" else ""
        for m, (o, i) in mods.items():
            t[f"{prefix}{m}.lora_A{ad}.weight"] = ((rank, i),)
            t[f"{prefix}{m}.lora_B{ad}.weight"] = ((o, rank),)
    elif kind == "kohya":
        for m, (o, i) in mods.items():
            k = _kohya(m)
            t[f"{k}.lora_down.weight"] = ((rank, i),)
            t[f"{k}.lora_up.weight"] = ((o, rank),)
            t[f"{k}.alpha"] = ((), "F32", a)
    elif kind == "kohya_fused":
        for li in range(layers):
            k = f"lora_unet_layers_{li}_attention_qkv"
            t[f"{k}.lora_down.weight"] = ((rank, _D),)
            t[f"{k}.lora_up.weight"] = ((3 * _D, rank),)
            t[f"{k}.alpha"] = ((), "F32", a)
            k = f"lora_unet_layers_{li}_attention_out"
            t[f"{k}.lora_down.weight"] = ((rank, _D),)
            t[f"{k}.lora_up.weight"] = ((_D, rank),)
            t[f"{k}.alpha"] = ((), "F32", a)
    elif kind == "dot":
        for m, (o, i) in mods.items():
            k = m.replace("to_q", "to.q").replace("to_k", "to.k").replace("to_v", "to.v")
            t[f"{k}.lora.down.weight"] = ((rank, i),)
            t[f"{k}.lora.up.weight"] = ((o, rank),)
            t[f"{k}.alpha"] = ((), "F32", a)
    elif kind == "lokr":
        for m, (o, i) in mods.items():
            t[f"diffusion_model.{m}.lokr_w1"] = ((4, 4),)
            t[f"diffusion_model.{m}.lokr_w2_a"] = ((o // 4, rank),)
            t[f"diffusion_model.{m}.lokr_w2_b"] = ((rank, i // 4),)
    elif kind == "sdxl":
        for b in range(2):
            for blk in range(2):
                base = f"lora_unet_input_blocks_{4 + b}_1_transformer_blocks_{blk}_attn2"
                t[f"{base}_to_k.lora_down.weight"] = ((rank, 2048),)
                t[f"{base}_to_k.lora_up.weight"] = ((640, rank),)
                t[f"{base}_to_k.alpha"] = ((), "F32", a)
        t["lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"] = ((rank, 768),)
        t["lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_up.weight"] = ((3072, rank),)
    elif kind == "sd15":
        for blk in range(2):
            base = f"lora_unet_down_blocks_{blk}_attentions_0_transformer_blocks_0_attn2"
            t[f"{base}_to_k.lora_down.weight"] = ((rank, 768),)
            t[f"{base}_to_k.lora_up.weight"] = ((320, rank),)
            t[f"{base}_to_k.alpha"] = ((), "F32", a)
    elif kind == "flux":
        for blk in range(4):
            for part in ("img_attn_qkv", "txt_attn_qkv", "img_mlp_0"):
                base = f"lora_unet_double_blocks_{blk}_{part}"
                t[f"{base}.lora_down.weight"] = ((rank, 3072),)
                t[f"{base}.lora_up.weight"] = ((3072, rank),)
        t["lora_unet_single_blocks_0_linear1.lora_down.weight"] = ((rank, 3072),)
        t["lora_unet_single_blocks_0_linear1.lora_up.weight"] = ((3072, rank),)
    elif kind == "qwen_image":
        for blk in range(4):
            for part in ("img_mlp.net.0.proj", "txt_mlp.net.0.proj", "img_mod.1"):
                base = f"transformer.transformer_blocks.{blk}.{part}"
                t[f"{base}.lora_A.weight"] = ((rank, 3072),)
                t[f"{base}.lora_B.weight"] = ((3072, rank),)
    elif kind == "wan":
        for blk in range(4):
            for part in ("self_attn.q", "cross_attn.k", "ffn.0"):
                base = f"diffusion_model.blocks.{blk}.{part}"
                t[f"{base}.lora_A.weight"] = ((rank, 1536),)
                t[f"{base}.lora_B.weight"] = ((1536, rank),)
    elif kind == "unknown":
        t["some.weird.key.lora_A.weight"] = ((rank, 64),)
        t["some.weird.key.lora_B.weight"] = ((64, rank),)
    else:
        raise ValueError(f"unknown sample LoRA kind {kind!r}")
    return write_safetensors(path, t, metadata)


def kohya_metadata(
    name: str = "my_lora",
    dim: int = 16,
    alpha: float = 16.0,
    base: str = "zimage",
    tags: dict[str, int] | None = None,
    **extra: Any,
) -> dict[str, str]:
    """Metadata as sd-scripts/musubi write it (every value a string)."""
    freq = {
        "10_" + name: tags
        or {name: 40, "1girl": 38, "solo": 30, "smile": 12, "outdoors": 9, "hat": 3}
    }
    meta = {
        "ss_output_name": name,
        "ss_network_module": "networks.lora_zimage",
        "ss_network_dim": str(dim),
        "ss_network_alpha": str(alpha),
        "ss_base_model_version": base,
        "ss_resolution": "(1024, 1024)",
        "ss_num_train_images": "40",
        "ss_num_epochs": "10",
        "ss_steps": "2000",
        "ss_learning_rate": "0.0001",
        "ss_tag_frequency": json.dumps(freq),
    }
    meta.update({k: str(v) for k, v in extra.items()})
    return meta


def modelspec_metadata(
    title: str,
    author: str = "",
    trigger: str = "",
    description: str = "",
    architecture: str = "Z-Image/lora",
    thumbnail: str = "",
) -> dict[str, str]:
    meta = {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": architecture,
        "modelspec.title": title,
    }
    if author:
        meta["modelspec.author"] = author
    if trigger:
        meta["modelspec.trigger_phrase"] = trigger
    if description:
        meta["modelspec.description"] = description
    if thumbnail:
        meta["modelspec.thumbnail"] = thumbnail
    return meta


def png_bytes(
    width: int = 64,
    height: int = 64,
    rgb: tuple[int, int, int] = (80, 140, 220),
    stripes: bool = True,
) -> bytes:
    """A small valid PNG (no Pillow needed): a flat colour with soft diagonal stripes."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            k = 0.75 + 0.25 * (((x + y) // max(1, width // 8)) % 2) if stripes else 1.0
            row += bytes(min(255, int(c * k)) for c in rgb)
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + tag
            + data
            + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def build_sample_library(root: str | Path, layers: int = 30) -> list[Path]:
    """About a dozen LoRAs of mixed architectures, dialects, sidecars and previews (screenshots, demos).

    ``layers``: Z-Image blocks per file (30 = full size; tests use fewer to hash less data).
    """
    root = Path(root)
    comfy = root / "ComfyUI" / "models" / "loras"
    forge = root / "forge" / "models" / "Lora"
    out: list[Path] = []
    out.append(
        make_lora(
            comfy / "zit_watercolor_v2.safetensors",
            "aitoolkit",
            32,
            layers=layers,
            metadata={
                **modelspec_metadata(
                    "Watercolor Wash",
                    "mika",
                    "wtrclr painting",
                    "Soft watercolor style for Z-Image Turbo.\nWorks best at 0.8.",
                ),
                "ss_base_model_version": "zimage",
            },
        )
    )
    (comfy / "zit_watercolor_v2.preview.png").write_bytes(png_bytes(96, 96, (90, 150, 230)))
    out.append(
        make_lora(
            comfy / "cat_character_kohya.safetensors",
            "kohya",
            16,
            8,
            layers=layers,
            metadata=kohya_metadata(
                "mochi_cat", 16, 8, tags={"mochi cat": 50, "cat": 48, "sitting": 20}
            ),
        )
    )
    (comfy / "cat_character_kohya.png").write_bytes(png_bytes(96, 96, (230, 160, 80)))
    (comfy / "cat_character_kohya.json").write_text(
        json.dumps(
            {
                "description": "My cat Mochi.",
                "activation text": "mochi cat",
                "preferred weight": 0.9,
                "notes": "Trained on 40 photos.",
                "sd version": "Unknown",
            }
        )
    )
    out.append(
        make_lora(
            comfy / "neon_city_fused.safetensors",
            "kohya_fused",
            64,
            32,
            layers=layers,
            metadata=modelspec_metadata(
                "Neon City",
                "pixelwitch",
                "neon city night",
                thumbnail=data_uri(png_bytes(64, 64, (200, 60, 220))),
            ),
        )
    )
    out.append(make_lora(comfy / "anime_lines_dot.safetensors", "dot", 8, layers=layers))
    (comfy / "anime_lines_dot.civitai.info").write_text(
        json.dumps(
            {
                "id": 1234,
                "modelId": 567,
                "name": "v1.0",
                "baseModel": "ZImageTurbo",
                "trainedWords": ["anm lines", "cel shading"],
                "description": "<p>Clean <b>anime</b> line art.</p>",
                "model": {"name": "Anime Lines", "tags": ["anime", "style"]},
                "creator": {"username": "lineart_fan"},
            }
        )
    )
    out.append(
        make_lora(
            comfy / "subdir" / "portrait_diffusers.safetensors",
            "diffusers",
            4,
            layers=layers,
            metadata={
                "format": "pt",
                "lora_adapter_metadata": json.dumps({"r": 4, "lora_alpha": 16}),
            },
        )
    )
    (comfy / "subdir" / "portrait_diffusers.cm-info.json").write_text(
        json.dumps(
            {
                "ModelName": "Studio Portrait",
                "VersionName": "v3",
                "BaseModel": "Z-Image",
                "TrainedWords": ["studio portrait"],
                "ModelDescription": "Even studio light.",
                "Tags": ["portrait", "photo"],
            }
        )
    )
    (comfy / "subdir" / "portrait_diffusers.thumb.png").write_bytes(
        png_bytes(96, 96, (120, 200, 140))
    )
    out.append(make_lora(comfy / "lokr_texture.safetensors", "lokr", 8, layers=layers))
    (comfy / "lokr_texture.metadata.json").write_text(
        json.dumps(
            {
                "model_name": "Paper Texture",
                "base_model": "Z-Image",
                "usage_tips": json.dumps({"strength": 0.6}),
                "civitai": {"trainedWords": ["paper texture"]},
                "notes": "subtle",
            }
        )
    )
    out.append(
        make_lora(
            forge / "sdxl_pixel_art.safetensors",
            "sdxl",
            32,
            metadata=kohya_metadata("pixel_art_xl", 32, 16, base="sdxl_base_v1-0"),
        )
    )
    (forge / "sdxl_pixel_art.preview.png").write_bytes(png_bytes(96, 96, (60, 180, 90)))
    out.append(
        make_lora(
            forge / "sd15_old_style.safetensors",
            "sd15",
            8,
            metadata=kohya_metadata("old_style", 8, 4, base="sd_v1"),
        )
    )
    out.append(make_lora(forge / "flux_realism.safetensors", "flux", 16))
    (forge / "flux_realism.swarm.json").write_text(
        json.dumps(
            {
                "modelspec.title": "Flux Realism",
                "modelspec.architecture": "Flux.1-dev/lora",
                "modelspec.trigger_phrase": "realism",
                "modelspec.thumbnail": data_uri(png_bytes(64, 64, (150, 150, 150))),
            }
        )
    )
    out.append(make_lora(forge / "qwen_image_style.safetensors", "qwen_image", 16))
    old = forge / "legacy_model.ckpt"
    old.write_bytes(b"PK\x03\x04 not really a zip")
    out.append(old)
    bad = comfy / "broken_download.safetensors"
    bad.write_bytes(struct.pack("<Q", 10**12) + b"{}")
    out.append(bad)
    return out
