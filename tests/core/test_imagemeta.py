"""zitdesk.imagemeta: parameters written into zitdesk PNGs and read back from zitdesk/A1111/ComfyUI images."""

from __future__ import annotations

import io
import json
import random
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin, features

from zitdesk.engine.requests import GenerateRequest, LoraSpec
from zitdesk.errors import FileFormatError
from zitdesk.imagemeta import (
    ImageMeta,
    LoraUse,
    a1111_parameters,
    params_json,
    parse_settings_line,
    read_parameters,
    split_infotext,
    write_png,
)

SHA_A = "3b1d6e8c2f0a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
SHA_B = "7c6bad76eb54aa00bb11cc22dd33ee44ff5566778899aabbccddeeff00112233"
MODEL_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _read(path):
    """read_parameters as the JSON dict ``zitdesk params --json`` prints (the typed result's
    attributes are checked in the tests at the end of this file)."""
    return read_parameters(path).to_dict()


UNICODE_PROMPT = (
    "夕暮れの東京、ネオンの光 🌆✨\n"
    'a cat wearing a "tiny" hat, sitting: calmly, on a tatami mat\n'
    "ÆØÅ café — 100% «quoted» text 👩🏽‍💻"
)


def _image(size=(64, 48), mode="RGB"):
    return Image.new(mode, size, (10, 120, 200) if mode == "RGB" else None)


def _request(**changes) -> GenerateRequest:
    base = {
        "prompt": UNICODE_PROMPT,
        "negative_prompt": "blurry, low quality,\nwatermark: text",
        "width": 1216,
        "height": 832,
        "steps": 9,
        "guidance": 2.5,
        "shift": 3.5,
        "seed": 884736264012345,
        "loras": (
            LoraSpec("/home/u/loras/film grain.safetensors", 0.75),
            LoraSpec("C:\\Users\\u\\loras\\detail_slider.safetensors", -0.5),
            LoraSpec("/home/u/loras/off.safetensors", 1.0, enabled=False),
        ),
        "output_dir": "/home/u/private/outputs",
    }
    base.update(changes)
    return GenerateRequest(**base)


def _meta(**changes) -> ImageMeta:
    req = _request()
    meta = ImageMeta.from_request(
        req,
        model_name="Z-Image-Turbo, bf16",
        model_hash=MODEL_SHA,
        lora_hashes={req.loras[0].path: SHA_A, req.loras[1].path: SHA_B},
        version="0.1.0",
        extra={"VAE tiling": "on", "Memory mode": "group_offload"},
    )
    if changes:
        from dataclasses import replace

        meta = replace(meta, **changes)
    return meta


def _write_text_png(path: Path, chunks: dict[str, str], *, itxt: bool = False) -> Path:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        if itxt:
            info.add_itxt(key, value)
        else:
            info.add_text(key, value)
    _image().save(path, format="PNG", pnginfo=info)
    return path


def _chunk(ctype: bytes, data: bytes, crc: int | None = None) -> bytes:
    if crc is None:
        crc = zlib.crc32(ctype + data)
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", crc & 0xFFFFFFFF)


def _png_with_chunks(extra: list[bytes]) -> bytes:
    """A valid small PNG with ``extra`` raw chunks inserted right after IHDR."""
    buf = io.BytesIO()
    _image((8, 8)).save(buf, format="PNG")
    data = buf.getvalue()
    ihdr_end = 8 + 8 + 13 + 4
    return data[:ihdr_end] + b"".join(extra) + data[ihdr_end:]


def _png_chunk_types(path: Path) -> list[tuple[str, str]]:
    """(chunk type, keyword) for every text chunk, read independently of zitdesk."""
    data = path.read_bytes()
    pos, out = 8, []
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if ctype in (b"tEXt", b"iTXt", b"zTXt"):
            out.append((ctype.decode(), body.split(b"\0", 1)[0].decode("latin-1")))
        pos += 12 + length
    return out


# ------------------------------------------------------------------------------------------
# Writing: the infotext
# ------------------------------------------------------------------------------------------


def test_infotext_exact_format_for_a_simple_image():
    meta = ImageMeta(
        prompt="a cat",
        negative_prompt="blurry",
        steps=8,
        guidance=0.0,
        seed=42,
        width=1024,
        height=1024,
        model_name="Z-Image-Turbo",
        model_hash=MODEL_SHA,
        loras=(LoraUse("style", 0.8, SHA_A),),
        version="0.1.0",
    )
    assert a1111_parameters(meta) == (
        "a cat\n"
        "Negative prompt: blurry\n"
        "Steps: 8, Sampler: Euler, Schedule type: Simple, CFG scale: 1.0, Seed: 42, Size: 1024x1024, "
        'Model hash: e3b0c44298, Model: Z-Image-Turbo, Lora hashes: "style: 3b1d6e8c2f", Shift: 3, '
        "Version: zitdesk 0.1.0"
    )


def test_infotext_without_negative_hash_or_loras_has_no_empty_fields():
    text = a1111_parameters(ImageMeta(prompt="  a dog  ", seed=1, version="zitdesk 0.2.0"))
    assert text.splitlines()[0] == "a dog"
    assert "Negative prompt" not in text
    assert "Model hash" not in text and "Lora hashes" not in text
    assert text.endswith("Version: zitdesk 0.2.0")
    assert ": ," not in text


def test_version_is_prefixed_once(tmp_path):
    for version in ("0.1.0", "zitdesk 0.1.0"):
        meta = ImageMeta(prompt="x", version=version)
        assert a1111_parameters(meta).endswith("Version: zitdesk 0.1.0")
        assert _read(write_png(_image(), tmp_path / "v.png", meta))["version"] == "zitdesk 0.1.0"


def test_guidance_is_written_as_a1111_cfg_scale_guidance_plus_one():
    assert "CFG scale: 1.0," in a1111_parameters(ImageMeta(prompt="x", guidance=0.0))
    assert "CFG scale: 3.5," in a1111_parameters(ImageMeta(prompt="x", guidance=2.5))
    assert ImageMeta(prompt="x", guidance=4.0).a1111_cfg_scale == 5.0


def test_values_with_commas_colons_quotes_are_json_quoted_and_keys_sanitised():
    meta = ImageMeta(
        prompt="x",
        model_name='my "model", v2: final',
        loras=(
            LoraUse("a,b:c", 1.0, SHA_A),
            LoraUse("nohash", 1.0, ""),
            LoraUse("bad", 1.0, "zz-not-hex"),
        ),
        extra={"Seed": 999, "Weird:key,": "v", "Note": "plain", "": "dropped", "Nothing": None},
    )
    line = a1111_parameters(meta).splitlines()[-1]
    assert 'Model: "my \\"model\\", v2: final"' in line
    assert 'Lora hashes: "abc: 3b1d6e8c2f"' in line  # A1111 strips ':' and ',' from the alias
    assert "Weirdkey: v" in line and "Note: plain" in line
    assert line.count("Seed:") == 1 and "Seed: 0" in line  # extra cannot override standard keys
    assert "Nothing" not in line
    settings = dict(parse_settings_line(line))
    assert settings["Model"] == 'my "model", v2: final'
    assert settings["Lora hashes"] == "abc: 3b1d6e8c2f"


# ------------------------------------------------------------------------------------------
# zitdesk PNG round trip
# ------------------------------------------------------------------------------------------


def test_zitdesk_png_round_trip(tmp_path):
    meta = _meta()
    path = write_png(_image(), tmp_path / "out" / "img.png", meta)
    assert path == tmp_path / "out" / "img.png"
    assert not [p for p in path.parent.iterdir() if p.name != "img.png"]  # no temp files left

    result = _read(path)
    json.dumps(result)  # JSON-serialisable
    assert result["source"] == "zitdesk"
    assert result["prompt"] == UNICODE_PROMPT
    assert result["negative_prompt"] == "blurry, low quality,\nwatermark: text"
    assert result["steps"] == 9
    assert result["guidance"] == 2.5
    assert result["a1111_cfg_scale"] == 3.5
    assert result["seed"] == 884736264012345
    assert (result["width"], result["height"]) == (1216, 832)
    assert result["sampler"] == "Euler" and result["scheduler"] == "Simple"
    assert result["shift"] == 3.5
    assert result["model"] == "Z-Image-Turbo, bf16"
    assert result["model_hash"] == MODEL_SHA
    assert result["version"] == "zitdesk 0.1.0"
    assert result["loras"] == [
        {
            "name": "film grain",
            "weight": 0.75,
            "hash": SHA_A,
            "file": "film grain.safetensors",  # a name, never the user's folder
        },
        {
            "name": "detail_slider",
            "weight": -0.5,
            "hash": SHA_B,
            "file": "detail_slider.safetensors",
        },
    ]
    assert sorted(result["unmapped"]) == ["Memory mode", "VAE tiling"]
    assert result["warnings"] == []

    # The embedded request rebuilds the same GenerateRequest (minus job id and private folder).
    request = result["request"]
    assert "job_id" not in request and "output_dir" not in request
    rebuilt = GenerateRequest.from_dict(request)
    original = _request()
    for name in (
        "prompt",
        "negative_prompt",
        "width",
        "height",
        "steps",
        "guidance",
        "shift",
        "seed",
        "memory_mode",
    ):
        assert getattr(rebuilt, name) == getattr(original, name), name
    # LoRAs come back by file name (the image never holds the user's folders)
    assert [(lo.path, lo.weight, lo.enabled) for lo in rebuilt.loras] == [
        (Path(lo.path.replace("\\", "/")).name, lo.weight, lo.enabled) for lo in original.loras
    ]

    # The infotext is there too, and Pillow (an independent PNG reader) sees the same text.
    assert result["raw"]["parameters"] == a1111_parameters(meta)
    with Image.open(path) as im:
        assert im.text["parameters"] == a1111_parameters(meta)
        assert json.loads(im.text["zitdesk"])["version"] == 1
        assert im.size == (64, 48)
    assert result["settings"]["VAE tiling"] == "on"


def test_non_ascii_text_goes_into_itxt_and_ascii_into_text(tmp_path):
    uni = write_png(_image(), tmp_path / "u.png", _meta())
    assert ("iTXt", "parameters") in _png_chunk_types(uni)
    plain = write_png(
        _image(), tmp_path / "a.png", ImageMeta(prompt="plain ascii", version="0.1.0")
    )
    assert set(_png_chunk_types(plain)) == {("tEXt", "parameters"), ("tEXt", "zitdesk")}
    latin = write_png(_image(), tmp_path / "l.png", ImageMeta(prompt="café Ã©", version="0.1.0"))
    assert _read(latin)["prompt"] == "café Ã©"


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "CMYK"])
def test_write_png_accepts_common_modes(tmp_path, mode):
    path = write_png(Image.new(mode, (16, 16)), tmp_path / "m.png", ImageMeta(prompt="x"))
    assert _read(path)["source"] == "zitdesk"
    with Image.open(path) as im:
        assert im.format == "PNG"


def test_write_png_overwrites_atomically(tmp_path):
    path = tmp_path / "img.png"
    write_png(_image(), path, ImageMeta(prompt="first"))
    write_png(_image(), path, ImageMeta(prompt="second"))
    assert _read(path)["prompt"] == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["img.png"]


def test_zitdesk_infotext_alone_maps_cfg_back_to_guidance(tmp_path):
    """Without the JSON chunk (stripped by some tool), the infotext still gives zitdesk's guidance."""
    text = a1111_parameters(_meta())
    path = _write_text_png(tmp_path / "t.png", {"parameters": text}, itxt=True)
    result = _read(path)
    assert result["source"] == "a1111"
    assert result["prompt"] == UNICODE_PROMPT
    assert result["negative_prompt"] == "blurry, low quality,\nwatermark: text"
    assert result["a1111_cfg_scale"] == 3.5 and result["guidance"] == 2.5
    assert result["shift"] == 3.5 and result["seed"] == 884736264012345
    assert result["model"] == "Z-Image-Turbo, bf16" and result["model_hash"] == MODEL_SHA[:10]
    assert [(lo["name"], lo["hash"]) for lo in result["loras"]] == [
        ("film grain", SHA_A[:10]),
        ("detail_slider", SHA_B[:10]),
    ]
    assert result["version"] == "zitdesk 0.1.0"
    assert sorted(result["unmapped"]) == ["Memory mode", "VAE tiling"]


def test_damaged_zitdesk_chunk_falls_back_to_the_infotext(tmp_path):
    text = a1111_parameters(_meta())
    for bad in ("{not json", '{"version": 1, "meta": [1, 2]}', "[" * 100_000):
        path = _write_text_png(tmp_path / "d.png", {"parameters": text, "zitdesk": bad}, itxt=True)
        result = _read(path)
        assert result["source"] == "a1111"
        assert result["seed"] == 884736264012345
        assert any("zitdesk chunk" in w for w in result["warnings"])


def test_zitdesk_chunk_with_wrong_types_reports_unmapped(tmp_path):
    payload = {
        "version": 1,
        "meta": {
            "prompt": "ok",
            "steps": "many",
            "seed": 1.5,
            "cfg_scale": float("nan"),
            "loras": [{"name": 3}, {"name": "good", "weight": 0.5}],
            "width": True,
        },
    }
    path = _write_text_png(tmp_path / "w.png", {"zitdesk": json.dumps(payload)})
    result = _read(path)
    assert result["source"] == "zitdesk"
    assert result["prompt"] == "ok"
    assert result["steps"] is None and result["seed"] is None and result["guidance"] is None
    assert set(result["unmapped"]) >= {"steps", "seed", "cfg_scale", "loras", "width"}
    assert result["loras"] == [{"name": "good", "weight": 0.5, "hash": "", "file": ""}]
    json.dumps(result, allow_nan=False)


# ------------------------------------------------------------------------------------------
# Independent third-party reader: sd-parsers (github.com/d3x-at/sd-parsers)
# ------------------------------------------------------------------------------------------


def _sd_parsers_read(path: Path):
    from sd_parsers import ParserManager

    info = ParserManager().parse(path)
    assert info is not None, "sd-parsers found no parameters"
    return info


@pytest.mark.parametrize("negative", ["", "blurry, lowres"])
def test_sd_parsers_reads_zitdesk_pngs(tmp_path, negative):
    meta = _meta(negative_prompt=negative)
    path = write_png(_image(), tmp_path / "z.png", meta)
    info = _sd_parsers_read(path)
    assert info.generator.name == "AUTOMATIC1111"
    sampler = info.samplers[0]
    assert sampler.name == "Euler"
    assert [p.value for p in sampler.prompts] == [UNICODE_PROMPT]
    assert [p.value for p in sampler.negative_prompts] == ([negative] if negative else [])
    assert sampler.parameters["seed"] == "884736264012345"
    assert sampler.parameters["steps"] == "9"
    assert float(sampler.parameters["cfg_scale"]) == 3.5  # A1111 semantics: guidance 2.5 + 1
    assert sampler.parameters["scheduler"] == "Simple"
    assert info.metadata["Size"] == "1216x832"
    assert sampler.model.hash == MODEL_SHA[:10]


def test_sd_parsers_reads_a_plain_zitdesk_png(tmp_path):
    meta = ImageMeta(
        prompt="a lighthouse at dawn",
        seed=7,
        steps=8,
        width=1024,
        height=768,
        model_name="Z-Image-Turbo",
        version="0.1.0",
    )
    info = _sd_parsers_read(write_png(_image(), tmp_path / "p.png", meta))
    sampler = info.samplers[0]
    assert sampler.prompts[0].value == "a lighthouse at dawn"
    assert (
        sampler.parameters["seed"],
        sampler.parameters["steps"],
        sampler.parameters["cfg_scale"],
    ) == ("7", "8", "1.0")
    assert sampler.model.name == "Z-Image-Turbo"
    assert info.metadata["Size"] == "1024x768"


# ------------------------------------------------------------------------------------------
# A1111 / Forge infotexts
# ------------------------------------------------------------------------------------------

A1111_TEXT = (
    "masterpiece, best quality, 1girl, solo, long hair, looking at viewer, (smile:1.2), outdoors,\n"
    "cherry blossoms, <lora:add_detail:0.8>, <lora:Japanese_Style_v2:0.6:0.4>, <lyco:tiny:unet=0.3>\n"
    "Negative prompt: (worst quality, low quality:1.4), bad anatomy, EasyNegative\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, "
    "Size: 512x768, Model hash: 7f96a1a9ca, Model: anything-v5-PrtRE, VAE hash: 235745af8d, "
    "VAE: vae-ft-mse-840000-ema-pruned.safetensors, Denoising strength: 0.45, Clip skip: 2, "
    'ADetailer model: face_yolov8n.pt, ADetailer prompt: "detailed face, (blue eyes:1.1)", '
    "ADetailer confidence: 0.3, ADetailer dilate erode: 4, ADetailer mask blur: 4, "
    "ADetailer denoising strength: 0.4, ADetailer inpaint only masked: True, "
    "ADetailer inpaint padding: 32, ADetailer version: 24.1.2, Hires upscale: 2, Hires steps: 15, "
    "Hires upscaler: R-ESRGAN 4x+ Anime6B, "
    'Lora hashes: "add_detail: 7c6bad76eb54, Japanese_Style_v2: 3b1d6e8c2f0a", '
    'TI hashes: "EasyNegative: c74b4e810b03", Emphasis: Original, Version: v1.10.1'
)


def test_a1111_png_with_hires_adetailer_loras(tmp_path):
    path = _write_text_png(tmp_path / "a.png", {"parameters": A1111_TEXT})
    r = _read(path)
    assert r["source"] == "a1111"
    assert r["prompt"] == (
        "masterpiece, best quality, 1girl, solo, long hair, looking at viewer, (smile:1.2), outdoors,\n"
        "cherry blossoms, <lora:add_detail:0.8>, <lora:Japanese_Style_v2:0.6:0.4>, <lyco:tiny:unet=0.3>"
    )
    assert r["negative_prompt"] == "(worst quality, low quality:1.4), bad anatomy, EasyNegative"
    assert r["steps"] == 28
    assert r["sampler"] == "DPM++ 2M" and r["scheduler"] == "Karras"
    assert r["a1111_cfg_scale"] == 7.0 and r["guidance"] == 6.0
    assert r["seed"] == 1234567890
    assert (r["width"], r["height"]) == (512, 768)
    assert r["model"] == "anything-v5-PrtRE" and r["model_hash"] == "7f96a1a9ca"
    assert r["version"] == "v1.10.1"
    assert r["loras"] == [
        {"name": "add_detail", "weight": 0.8, "hash": "7c6bad76eb54", "file": ""},
        {"name": "Japanese_Style_v2", "weight": 0.6, "hash": "3b1d6e8c2f0a", "file": ""},
        {"name": "tiny", "weight": 0.3, "hash": "", "file": ""},
    ]
    assert r["settings"]["ADetailer prompt"] == "detailed face, (blue eyes:1.1)"
    assert r["settings"]["TI hashes"] == "EasyNegative: c74b4e810b03"
    assert r["settings"]["Hires upscaler"] == "R-ESRGAN 4x+ Anime6B"
    for key in (
        "Hires upscale",
        "Hires steps",
        "ADetailer prompt",
        "Denoising strength",
        "Clip skip",
        "TI hashes",
        "VAE",
        "VAE hash",
        "Emphasis",
    ):
        assert key in r["unmapped"], key
    for key in ("Steps", "Seed", "Size", "CFG scale", "Lora hashes", "Model"):
        assert key not in r["unmapped"]
    # and the independent reader agrees on the basics of this fixture
    info = _sd_parsers_read(path)
    assert info.samplers[0].parameters["seed"] == "1234567890"
    assert info.samplers[0].prompts[0].value == r["prompt"]


def test_a1111_multiline_prompt_without_negative_forge_style(tmp_path):
    text = (
        "portrait photo of an old fisherman,\n"
        "dramatic light: rim, golden hour\n"
        "\n"
        "35mm, film grain\n"
        "Steps: 8, Sampler: Euler, Schedule type: Simple, CFG scale: 1, Shift: 3, Seed: 5, Size: 1024x1024, "
        'Model hash: 0123456789, Model: z_image_turbo_bf16, Lora hashes: "grain: abcdef012345", '
        'Hashes: {"model": "0123456789", "lora:grain": "abcdef012345", "lora:other": "99"}, '
        'Civitai resources: [{"type": "lora", "weight": 0.7, "modelVersionId": 1}], '
        "Beta schedule alpha: 0.6, Version: f2.0.1v1.10.1-previous-665-gae278f79"
    )
    r = _read(_write_text_png(tmp_path / "f.png", {"parameters": text}))
    assert r["source"] == "a1111"
    assert (
        r["prompt"]
        == "portrait photo of an old fisherman,\ndramatic light: rim, golden hour\n\n35mm, film grain"
    )
    assert r["negative_prompt"] == ""
    assert r["a1111_cfg_scale"] == 1.0 and r["guidance"] == 0.0 and r["shift"] == 3.0
    assert r["loras"] == [
        {"name": "grain", "weight": None, "hash": "abcdef012345", "file": ""},
        {"name": "other", "weight": None, "hash": "99", "file": ""},
    ]
    assert r["settings"]["Civitai resources"].startswith("[{")
    assert "Civitai resources" in r["unmapped"] and "Beta schedule alpha" in r["unmapped"]
    assert "Hashes" not in r["unmapped"]


def test_a1111_trailing_template_lines_and_settings_detection():
    prompt, negative, settings, trailing = split_infotext(
        "a {red|blue} car\nNegative prompt: ugly\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 6.5, Seed: 1, Size: 64x64\n"
        "Template: a {red|blue} car\nNegative Template: ugly"
    )
    assert (prompt, negative) == ("a {red|blue} car", "ugly")
    assert dict(settings)["CFG scale"] == "6.5"
    assert trailing == ["Template: a {red|blue} car", "Negative Template: ugly"]
    # a prompt line with colons but no settings keys is not mistaken for settings
    prompt, _, settings, _ = split_infotext("style: anime, mood: dark, color: red")
    assert prompt == "style: anime, mood: dark, color: red" and settings == []


def test_parameters_without_settings_line_gives_the_prompt(tmp_path):
    r = _read(_write_text_png(tmp_path / "p.png", {"parameters": "just a prompt <lora:x>"}))
    assert r["source"] == "a1111" and r["prompt"] == "just a prompt <lora:x>"
    assert r["steps"] is None
    assert r["loras"] == [{"name": "x", "weight": 1.0, "hash": "", "file": ""}]
    assert r["warnings"]


def test_a1111_bad_values_are_unmapped_not_fatal(tmp_path):
    text = "p\nSteps: lots, Sampler: Euler, CFG scale: nan, Seed: 12x, Size: big, Model: m"
    r = _read(_write_text_png(tmp_path / "b.png", {"parameters": text}))
    assert r["source"] == "a1111" and r["prompt"] == "p" and r["sampler"] == "Euler"
    assert (
        r["steps"] is None
        and r["a1111_cfg_scale"] is None
        and r["seed"] is None
        and r["width"] is None
    )
    assert {"Steps", "CFG scale", "Seed", "Size"} <= set(r["unmapped"])
    json.dumps(r, allow_nan=False)


# A quadratic (or worse) parser takes hours on these inputs; pytest-timeout ends it, without
# a wall-clock assert that a loaded CI machine could miss.
@pytest.mark.timeout(120)
def test_settings_parser_is_linear_on_hostile_lines():
    hostile = [
        "a" + " " * 200_000,
        "Steps" + " -/" * 100_000,
        'k: "x, ' * 50_000,
        "k: [" * 50_000,
        "k: " + "[" * 100_000,
        ",".join(["Key: value"] * 50_000),
    ]
    for line in hostile:
        parse_settings_line(line)
        split_infotext(line + "\n" + line)


# ------------------------------------------------------------------------------------------
# ComfyUI
# ------------------------------------------------------------------------------------------

COMFY_POSITIVE = "cinematic photo of a red fox in fresh snow, 夕焼け, shallow depth of field"


def comfy_api_graph() -> dict:
    """A Z-Image Turbo ComfyUI graph in API format, as SaveImage stores it in the 'prompt' chunk."""
    return {
        "1": {
            "inputs": {"unet_name": "z_image_turbo_bf16.safetensors", "weight_dtype": "default"},
            "class_type": "UNETLoader",
            "_meta": {"title": "Load Diffusion Model"},
        },
        "2": {
            "inputs": {
                "clip_name": "qwen_3_4b.safetensors",
                "type": "lumina2",
                "device": "default",
            },
            "class_type": "CLIPLoader",
            "_meta": {"title": "Load CLIP"},
        },
        "3": {
            "inputs": {"vae_name": "ae.safetensors"},
            "class_type": "VAELoader",
            "_meta": {"title": "Load VAE"},
        },
        "4": {
            "inputs": {
                "lora_name": "zimage/film_grain.safetensors",
                "strength_model": 0.75,
                "strength_clip": 1.0,
                "model": ["1", 0],
                "clip": ["2", 0],
            },
            "class_type": "LoraLoader",
            "_meta": {"title": "Load LoRA"},
        },
        "5": {
            "inputs": {
                "lora_name": "detail_slider.safetensors",
                "strength_model": -0.5,
                "model": ["4", 0],
            },
            "class_type": "LoraLoaderModelOnly",
            "_meta": {"title": "LoraLoaderModelOnly"},
        },
        "6": {
            "inputs": {"shift": 3.0, "model": ["5", 0]},
            "class_type": "ModelSamplingAuraFlow",
            "_meta": {"title": "ModelSamplingAuraFlow"},
        },
        "7": {
            "inputs": {"text": COMFY_POSITIVE, "clip": ["4", 1]},
            "class_type": "CLIPTextEncode",
            "_meta": {"title": "CLIP Text Encode (Positive Prompt)"},
        },
        "8": {
            "inputs": {"text": "blurry, watermark, text", "clip": ["4", 1]},
            "class_type": "CLIPTextEncode",
            "_meta": {"title": "CLIP Text Encode (Negative Prompt)"},
        },
        "9": {"inputs": {"value": 1216}, "class_type": "PrimitiveInt", "_meta": {"title": "Width"}},
        "10": {
            "inputs": {"width": ["9", 0], "height": 832, "batch_size": 1},
            "class_type": "EmptySD3LatentImage",
            "_meta": {"title": "EmptySD3LatentImage"},
        },
        "11": {
            "inputs": {
                "seed": 884736264012345,
                "steps": 9,
                "cfg": 1.5,
                "sampler_name": "res_multistep",
                "scheduler": "simple",
                "denoise": 1.0,
                "model": ["6", 0],
                "positive": ["7", 0],
                "negative": ["8", 0],
                "latent_image": ["10", 0],
            },
            "class_type": "KSampler",
            "_meta": {"title": "KSampler"},
        },
        "12": {
            "inputs": {"samples": ["11", 0], "vae": ["3", 0]},
            "class_type": "VAEDecode",
            "_meta": {"title": "VAE Decode"},
        },
        "13": {
            "inputs": {"filename_prefix": "z-image", "images": ["12", 0]},
            "class_type": "SaveImage",
            "_meta": {"title": "Save Image"},
        },
    }


def comfy_ui_workflow(graph: dict) -> dict:
    """The matching UI 'workflow' chunk (nodes with positional widgets_values, and links)."""
    widget_order = {
        "UNETLoader": ["unet_name", "weight_dtype"],
        "CLIPLoader": ["clip_name", "type", "device"],
        "VAELoader": ["vae_name"],
        "LoraLoader": ["lora_name", "strength_model", "strength_clip"],
        "LoraLoaderModelOnly": ["lora_name", "strength_model"],
        "ModelSamplingAuraFlow": ["shift"],
        "CLIPTextEncode": ["text"],
        "PrimitiveInt": ["value", None],
        "EmptySD3LatentImage": ["width", "height", "batch_size"],
        "KSampler": ["seed", None, "steps", "cfg", "sampler_name", "scheduler", "denoise"],
        "VAEDecode": [],
        "SaveImage": ["filename_prefix"],
    }
    nodes, links = [], []
    for node_id, node in graph.items():
        widgets, inputs = [], []
        for name in widget_order[node["class_type"]]:
            value = node["inputs"].get(name) if name else "fixed"
            widgets.append(0 if isinstance(value, list) else value)
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                link_id = len(links) + 1
                links.append([link_id, int(value[0]), value[1], int(node_id), len(inputs), "*"])
                inputs.append({"name": name, "type": "*", "link": link_id})
        nodes.append(
            {
                "id": int(node_id),
                "type": node["class_type"],
                "mode": 0,
                "inputs": inputs,
                "outputs": [],
                "widgets_values": widgets,
                "pos": [0, 0],
                "size": [300, 100],
            }
        )
    return {
        "last_node_id": 13,
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 1, "offset": [0, 0]}},
        "version": 0.4,
    }


def _comfy_png(path: Path, graph: dict | None, workflow: dict | None = None) -> Path:
    chunks = {}
    if graph is not None:
        chunks["prompt"] = json.dumps(graph, ensure_ascii=False)
    if workflow is not None:
        chunks["workflow"] = json.dumps(workflow, ensure_ascii=False)
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)  # as ComfyUI's SaveImage does (Pillow picks iTXt for non-Latin-1)
    _image().save(path, format="PNG", pnginfo=info)
    return path


EXPECTED_COMFY_LORAS = [
    {"name": "film_grain", "weight": 0.75, "hash": "", "file": "zimage/film_grain.safetensors"},
    {"name": "detail_slider", "weight": -0.5, "hash": "", "file": "detail_slider.safetensors"},
]


def _assert_comfy_basics(r):
    assert r["source"] == "comfyui"
    assert r["prompt"] == COMFY_POSITIVE
    assert r["negative_prompt"] == "blurry, watermark, text"
    assert r["seed"] == 884736264012345 and r["steps"] == 9
    assert r["a1111_cfg_scale"] == 1.5 and r["guidance"] == 0.5
    assert r["sampler"] == "res_multistep" and r["scheduler"] == "simple"
    assert (r["width"], r["height"]) == (1216, 832)
    assert r["model"] == "z_image_turbo_bf16.safetensors"
    assert r["shift"] == 3.0
    assert r["loras"] == EXPECTED_COMFY_LORAS
    assert r["unmapped"] == []
    json.dumps(r)


def test_comfyui_api_graph(tmp_path):
    graph = comfy_api_graph()
    path = _comfy_png(tmp_path / "c.png", graph, comfy_ui_workflow(graph))
    r = _read(path)
    _assert_comfy_basics(r)
    assert r["request"] is None
    assert json.loads(r["raw"]["prompt"]) == graph
    # sd-parsers' ComfyUI reader agrees on this fixture (so the fixture is realistic)
    info = _sd_parsers_read(path)
    assert info.generator.name == "COMFYUI"
    assert COMFY_POSITIVE in [p.value for p in info.prompts]
    assert info.samplers[0].parameters["seed"] == 884736264012345


def test_comfyui_ui_workflow_only(tmp_path):
    graph = comfy_api_graph()
    r = _read(_comfy_png(tmp_path / "w.png", None, comfy_ui_workflow(graph)))
    _assert_comfy_basics(r)
    assert any("UI workflow" in w for w in r["warnings"])


def test_comfyui_bypassed_lora_in_ui_workflow_is_not_reported(tmp_path):
    workflow = comfy_ui_workflow(comfy_api_graph())
    for node in workflow["nodes"]:
        if node["type"] == "LoraLoaderModelOnly":
            node["mode"] = 4
    r = _read(_comfy_png(tmp_path / "b.png", None, workflow))
    assert [lo["name"] for lo in r["loras"]] == ["film_grain"]
    assert r["model"] == "z_image_turbo_bf16.safetensors"


def test_comfyui_checkpoint_ksampler_advanced_hires_and_zeroed_negative(tmp_path):
    graph = {
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "sdxl/juggernautXL_v9.safetensors"},
        },
        "10": {
            "class_type": "LoraLoader",
            "inputs": {
                "lora_name": "sdxl\\pixel_art.safetensors",
                "strength_model": 1.1,
                "strength_clip": 0.9,
                "model": ["4", 0],
                "clip": ["4", 1],
            },
        },
        "6": {
            "class_type": "CLIPTextEncodeSDXL",
            "inputs": {
                "text_g": "pixel art castle",
                "text_l": "castle",
                "width": 4096,
                "height": 4096,
                "clip": ["10", 1],
            },
        },
        "7": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["6", 0]}},
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 832, "height": 1216, "batch_size": 1},
        },
        "3": {
            "class_type": "KSamplerAdvanced",
            "inputs": {
                "add_noise": "enable",
                "noise_seed": 77,
                "steps": 30,
                "cfg": 6.0,
                "sampler_name": "dpmpp_2m_sde",
                "scheduler": "karras",
                "start_at_step": 0,
                "end_at_step": 10000,
                "return_with_leftover_noise": "disable",
                "model": ["10", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "20": {
            "class_type": "LatentUpscaleBy",
            "inputs": {"upscale_method": "nearest-exact", "scale_by": 1.5, "samples": ["3", 0]},
        },
        "2": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 99,
                "steps": 12,
                "cfg": 4.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 0.45,
                "model": ["10", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["20", 0],
            },
        },
        "21": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["4", 2]}},
        "22": {
            "class_type": "SaveImage",
            "inputs": {"filename_prefix": "ComfyUI", "images": ["21", 0]},
        },
    }
    r = _read(_comfy_png(tmp_path / "h.png", graph))
    assert r["source"] == "comfyui"
    assert (
        r["seed"] == 77
        and r["steps"] == 30
        and r["a1111_cfg_scale"] == 6.0
        and r["guidance"] == 5.0
    )
    assert r["prompt"] == "pixel art castle" and r["negative_prompt"] == ""
    assert (r["width"], r["height"]) == (832, 1216)
    assert r["model"] == "sdxl/juggernautXL_v9.safetensors"
    assert r["loras"] == [
        {"name": "pixel_art", "weight": 1.1, "hash": "", "file": "sdxl\\pixel_art.safetensors"}
    ]
    assert any("2 sampler nodes" in w for w in r["warnings"])


def test_comfyui_sampler_custom_advanced(tmp_path):
    graph = {
        "1": {
            "class_type": "UNETLoader",
            "inputs": {"unet_name": "z_image_turbo_fp8.safetensors", "weight_dtype": "fp8_e4m3fn"},
        },
        "2": {
            "class_type": "Power Lora Loader (rgthree)",
            "inputs": {
                "PowerLoraLoaderHeaderWidget": {"type": "PowerLoraLoaderHeaderWidget"},
                "lora_1": {"on": True, "lora": "styles/ink.safetensors", "strength": 0.6},
                "lora_2": {"on": False, "lora": "unused.safetensors", "strength": 1},
                "➕ Add Lora": "",
                "model": ["1", 0],
                "clip": ["9", 0],
            },
        },
        "9": {
            "class_type": "CLIPLoader",
            "inputs": {"clip_name": "qwen_3_4b.safetensors", "type": "lumina2"},
        },
        "3": {
            "class_type": "PrimitiveStringMultiline",
            "inputs": {"value": "ink drawing of a heron\nminimal"},
        },
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": ["3", 0], "clip": ["2", 1]}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["2", 1]}},
        "6": {
            "class_type": "CFGGuider",
            "inputs": {"cfg": 1.0, "model": ["2", 0], "positive": ["4", 0], "negative": ["5", 0]},
        },
        "7": {"class_type": "RandomNoise", "inputs": {"noise_seed": 31337}},
        "8": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "10": {
            "class_type": "BasicScheduler",
            "inputs": {"scheduler": "simple", "steps": 8, "denoise": 1.0, "model": ["2", 0]},
        },
        "11": {
            "class_type": "EmptySD3LatentImage",
            "inputs": {"width": 1024, "height": 1024, "batch_size": 1},
        },
        "12": {
            "class_type": "SamplerCustomAdvanced",
            "inputs": {
                "noise": ["7", 0],
                "guider": ["6", 0],
                "sampler": ["8", 0],
                "sigmas": ["10", 0],
                "latent_image": ["11", 0],
            },
        },
    }
    r = _read(_comfy_png(tmp_path / "s.png", graph))
    assert r["source"] == "comfyui"
    assert r["prompt"] == "ink drawing of a heron\nminimal" and r["negative_prompt"] == ""
    assert (r["seed"], r["steps"], r["a1111_cfg_scale"], r["guidance"]) == (31337, 8, 1.0, 0.0)
    assert (r["sampler"], r["scheduler"]) == ("euler", "simple")
    assert (r["width"], r["height"]) == (1024, 1024)
    assert r["model"] == "z_image_turbo_fp8.safetensors"
    assert r["loras"] == [
        {"name": "ink", "weight": 0.6, "hash": "", "file": "styles/ink.safetensors"}
    ]


def test_comfyui_broken_graphs_do_not_crash(tmp_path):
    cyclic = {
        "1": {
            "class_type": "LoraLoader",
            "inputs": {"lora_name": "a.safetensors", "strength_model": "x", "model": ["2", 0]},
        },
        "2": {
            "class_type": "LoraLoader",
            "inputs": {"lora_name": "b.safetensors", "strength_model": 1, "model": ["1", 0]},
        },
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": ["3", 0]}},
        "4": {
            "class_type": "KSampler",
            "inputs": {
                "seed": "abc",
                "steps": [1, 2, 3],
                "cfg": None,
                "sampler_name": 5,
                "positive": ["3", 0],
                "negative": ["404", 0],
                "latent_image": ["4", 0],
                "model": ["1", 0],
            },
        },
        "5": "not a node",
        "6": {"class_type": None, "inputs": []},
    }
    r = _read(_comfy_png(tmp_path / "x.png", cyclic))
    assert r["source"] == "comfyui"
    assert r["seed"] is None and r["prompt"] is None and r["model"] is None
    assert {"seed", "sampler_name", "positive", "negative", "latent_image", "model"} <= set(
        r["unmapped"]
    )
    json.dumps(r)

    for text in ("{broken", "[]", '"str"', json.dumps({"1": {"class_type": "SaveImage"}})):
        path = tmp_path / "y.png"
        _write_text_png(path, {"prompt": text, "workflow": "{also broken"})
        r = _read(path)
        assert r["source"] == "none"
        json.dumps(r)


# A quadratic (or worse) parser takes hours on these inputs; pytest-timeout ends it, without
# a wall-clock assert that a loaded CI machine could miss.
@pytest.mark.timeout(120)
def test_comfyui_hostile_fan_out_graph_is_bounded(tmp_path):
    fan = {
        k: ["2", 0]
        for k in (
            "conditioning_1",
            "conditioning_2",
            "conditioning_3",
            "samples",
            "latent",
            "pixels",
            "image",
            "images",
            "model",
        )
    }
    graph = {
        "1": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 1,
                "positive": ["2", 0],
                "negative": ["2", 1],
                "latent_image": ["2", 0],
                "model": ["2", 0],
            },
        },
        "2": {"class_type": "ConditioningCombine", "inputs": fan},
    }
    r = _read(_comfy_png(tmp_path / "fan.png", graph))
    assert r["source"] == "comfyui" and r["seed"] == 1


def test_comfyui_ui_workflow_with_reroute_and_primitive_node(tmp_path):
    workflow = {
        "nodes": [
            {
                "id": 1,
                "type": "CheckpointLoaderSimple",
                "mode": 0,
                "widgets_values": ["flux1-dev-fp8.safetensors"],
                "inputs": [],
            },
            {
                "id": 2,
                "type": "Reroute",
                "mode": 0,
                "inputs": [{"name": "", "type": "*", "link": 1}],
            },
            {
                "id": 3,
                "type": "CLIPTextEncode",
                "mode": 0,
                "widgets_values": ["a quiet harbour at night"],
                "inputs": [{"name": "clip", "type": "CLIP", "link": 2}],
            },
            {
                "id": 4,
                "type": "PrimitiveNode",
                "mode": 0,
                "widgets_values": [2024, "fixed"],
                "inputs": [],
            },
            {
                "id": 5,
                "type": "EmptyLatentImage",
                "mode": 0,
                "widgets_values": [768, 512, 1],
                "inputs": [],
            },
            {
                "id": 6,
                "type": "KSampler",
                "mode": 0,
                "widgets_values": [2024, "fixed", 20, 3.5, "euler", "beta", 1.0],
                "inputs": [
                    {"name": "model", "type": "MODEL", "link": 3},
                    {"name": "positive", "type": "CONDITIONING", "link": 4},
                    {"name": "negative", "type": "CONDITIONING", "link": None},
                    {"name": "latent_image", "type": "LATENT", "link": 5},
                    {"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": 6},
                ],
            },
        ],
        "links": [
            [1, 1, 0, 2, 0, "*"],
            [2, 1, 1, 3, 0, "CLIP"],
            [3, 2, 0, 6, 0, "MODEL"],
            [4, 3, 0, 6, 1, "CONDITIONING"],
            [5, 5, 0, 6, 3, "LATENT"],
            [6, 4, 0, 6, 4, "INT"],
        ],
        "version": 0.4,
    }
    r = _read(_comfy_png(tmp_path / "r.png", None, workflow))
    assert r["source"] == "comfyui"
    assert (r["prompt"], r["seed"], r["steps"], r["a1111_cfg_scale"]) == (
        "a quiet harbour at night",
        2024,
        20,
        3.5,
    )
    assert (r["width"], r["height"]) == (768, 512)
    assert r["model"] == "flux1-dev-fp8.safetensors"


# ------------------------------------------------------------------------------------------
# Other containers
# ------------------------------------------------------------------------------------------

INFOTEXT_FOR_EXIF = (
    "a cat 🐱\nNegative prompt: dog\nSteps: 8, Sampler: Euler, CFG scale: 1.0, Seed: 4, Size: 32x32"
)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
@pytest.mark.parametrize("encoding", ["utf-16-be", "utf-16-le"])
def test_jpeg_webp_exif_user_comment(tmp_path, fmt, encoding):
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + INFOTEXT_FOR_EXIF.encode(encoding)
    path = tmp_path / f"img.{fmt.lower()}"
    _image().save(path, format=fmt, exif=exif)
    r = _read(path)
    assert r["source"] == "a1111"
    assert (r["prompt"], r["negative_prompt"], r["seed"], r["width"]) == ("a cat 🐱", "dog", 4, 32)


def test_image_without_metadata(tmp_path):
    for name, fmt in (("a.png", "PNG"), ("b.jpg", "JPEG"), ("c.bmp", "BMP"), ("d.gif", "GIF")):
        _image().save(tmp_path / name, format=fmt)
        r = _read(tmp_path / name)
        assert r["source"] == "none" and r["prompt"] is None and r["loras"] == []


# ------------------------------------------------------------------------------------------
# Garbage
# ------------------------------------------------------------------------------------------


def test_not_an_image_raises_file_format_error(tmp_path):
    cases = {
        "notes.png": b"hello, this is text\n",
        "empty.png": b"",
        "model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ",
        "half.jpg": b"\xff\xd8\xff",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(FileFormatError) as err:
            _read(tmp_path / name)
        assert name in str(err.value) and "Traceback" not in str(err.value)
    with pytest.raises(FileFormatError, match="does not exist"):
        _read(tmp_path / "missing.png")
    with pytest.raises(FileFormatError):
        _read(tmp_path)


def test_malformed_png_chunks(tmp_path):
    good_text = b"parameters\0a cat\nSteps: 8, Sampler: Euler, CFG scale: 1.0, Seed: 3, Size: 8x8"
    cases = {
        "bad_crc": [_chunk(b"tEXt", good_text, crc=1)],
        "bad_zlib": [_chunk(b"zTXt", b"parameters\0\0" + b"not zlib at all")],
        "bad_itxt": [_chunk(b"iTXt", b"parameters\0\1\0")],
        "no_keyword": [_chunk(b"tEXt", b"no separator here")],
        "bad_utf8_itxt": [_chunk(b"iTXt", b"parameters\0\0\0\0\0\xff\xfe a cat")],
        "dup": [_chunk(b"tEXt", good_text), _chunk(b"tEXt", b"parameters\0other")],
        "zip_bomb": [
            _chunk(b"zTXt", b"parameters\0\0" + zlib.compress(b"a" * (40 * 1024 * 1024), 9))
        ],
    }
    for name, extra in cases.items():
        path = tmp_path / f"{name}.png"
        path.write_bytes(_png_with_chunks(extra))
        r = _read(path)
        json.dumps(r)
        assert r["source"] in ("a1111", "none"), name
        if name in ("bad_crc", "dup"):
            assert r["seed"] == 3 and r["warnings"], name
        if name in ("bad_zlib", "bad_itxt", "no_keyword", "zip_bomb"):
            assert r["source"] == "none" and r["warnings"], name

    # truncated file, damaged chunk header, huge declared length
    whole = _png_with_chunks([_chunk(b"tEXt", good_text)])
    (tmp_path / "trunc.png").write_bytes(whole[:60])
    (tmp_path / "header.png").write_bytes(whole[:33] + b"\0\0\0\x10\x00\x01\x02\x03" + whole[41:])
    (tmp_path / "huge.png").write_bytes(
        whole[:33] + struct.pack(">I", 0x7FFFFFF0) + b"tEXt" + b"x" * 20
    )
    (tmp_path / "sig_only.png").write_bytes(whole[:8])
    for name in ("trunc", "header", "huge", "sig_only"):
        r = _read(tmp_path / f"{name}.png")
        assert r["source"] == "none" and r["warnings"], name


def test_fuzzed_zitdesk_png_never_crashes(tmp_path):
    path = write_png(_image((16, 16)), tmp_path / "z.png", _meta())
    original = path.read_bytes()
    rng = random.Random(1234)
    target = tmp_path / "f.png"
    for i in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 12)):
            pos = rng.randrange(8, len(data))
            data[pos] = rng.randrange(256)
        if i % 3 == 0:
            data = data[: rng.randrange(8, len(data))]
        target.write_bytes(bytes(data))
        r = _read(target)
        json.dumps(r)
        assert r["source"] in ("zitdesk", "a1111", "none")


def test_params_json(tmp_path):
    path = write_png(_image(), tmp_path / "z.png", _meta())
    text = params_json(path)
    data = json.loads(text)
    assert data["source"] == "zitdesk" and data["prompt"] == UNICODE_PROMPT
    assert "夕暮れ" in text  # readable, not \u-escaped


def test_module_imports_no_torch_or_qt():
    code = (
        "import sys, zitdesk.imagemeta\n"
        "bad = [m for m in ('torch', 'PySide6', 'shiboken6', 'diffusers', 'PIL') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ------------------------------------------------------------------------------------------
# The typed result and the form values
# ------------------------------------------------------------------------------------------


def test_read_result_is_typed_and_frozen(tmp_path):
    import dataclasses

    from zitdesk.imagemeta import ImageParameters, LoraRef

    r = read_parameters(write_png(_image(), tmp_path / "t.png", _meta()))
    assert isinstance(r, ImageParameters) and r.found
    assert (r.source, r.steps, r.guidance, r.a1111_cfg_scale) == ("zitdesk", 9, 2.5, 3.5)
    assert r.loras[0] == LoraRef("film grain", 0.75, SHA_A, "film grain.safetensors")
    assert isinstance(r.unmapped, tuple) and isinstance(r.warnings, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.prompt = "changed"  # type: ignore[misc]
    assert "cfg_scale" not in r.to_dict()  # one name per quantity


def test_zitdesk_chunk_says_guidance_and_old_cfg_scale_chunks_still_read(tmp_path):
    path = write_png(_image(), tmp_path / "new.png", _meta())
    with Image.open(path) as im:
        meta = json.loads(im.text["zitdesk"])["meta"]
    assert meta["guidance"] == 2.5 and "cfg_scale" not in meta
    old = {"version": 1, "meta": {"prompt": "old", "cfg_scale": 1.5, "seed": 4}}
    r = read_parameters(_write_text_png(tmp_path / "old.png", {"zitdesk": json.dumps(old)}))
    assert (r.prompt, r.guidance, r.a1111_cfg_scale, r.seed) == ("old", 1.5, 2.5, 4)


def test_request_values_of_a_zitdesk_image_rebuild_the_request(tmp_path):
    r = read_parameters(write_png(_image(), tmp_path / "z.png", _meta()))
    values = r.request_values()
    rebuilt = GenerateRequest.from_dict(values)
    original = _request()
    for name in (
        "prompt",
        "negative_prompt",
        "width",
        "height",
        "steps",
        "guidance",
        "shift",
        "seed",
        "memory_mode",
    ):
        assert getattr(rebuilt, name) == getattr(original, name), name
    assert [(lo["path"], lo["enabled"], lo["sha256"]) for lo in values["loras"]] == [
        ("film grain.safetensors", True, SHA_A),
        ("detail_slider.safetensors", True, SHA_B),
        ("off.safetensors", False, ""),
    ]  # the request keeps the disabled one; it has no hash


def test_request_values_of_an_a1111_image(tmp_path):
    text = (
        "a <lora:grain:0.6> cat\nNegative prompt: dull\n"
        "Steps: 20, Sampler: Euler, CFG scale: 4.5, Seed: 7, Size: 512x768, "
        'Lora hashes: "grain: 0123456789, other: abcdef0123"'
    )
    r = read_parameters(_write_text_png(tmp_path / "a.png", {"parameters": text}))
    assert r.source == "a1111" and (r.guidance, r.a1111_cfg_scale) == (3.5, 4.5)
    values = r.request_values()
    assert {k: values[k] for k in ("steps", "seed", "width", "height", "guidance")} == {
        "steps": 20,
        "seed": 7,
        "width": 512,
        "height": 768,
        "guidance": 3.5,
    }
    assert values["negative_prompt"] == "dull"
    assert values["loras"] == [
        {"path": "grain", "weight": 0.6, "enabled": True, "sha256": "0123456789"},
        {"path": "other", "weight": None, "enabled": True, "sha256": "abcdef0123"},
    ]
    assert "count" not in values and "memory_mode" not in values  # only what the image says


def test_request_values_of_an_image_without_parameters(tmp_path):
    r = read_parameters(_write_text_png(tmp_path / "n.png", {"Software": "paint"}))
    assert not r.found and r.request_values() == {"loras": []}
