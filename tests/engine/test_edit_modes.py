"""Image-to-image, inpaint, outpaint, ControlNet and tiled upscale through the real engine with
the tiny model (tests/support/controlnet.py: a tiny random ZImageControlNetModel on disk)."""

import numpy as np
import pytest
from PIL import Image

from tests.support.controlnet import make_tiny_controlnet
from zitdesk.engine.cancel import CancelToken
from zitdesk.engine.events import ImageReady, JobFailed, JobFinished, JobStarted, StepProgress
from zitdesk.engine.generate import GenerationEngine
from zitdesk.engine.requests import GenerateRequest
from zitdesk.imagemeta import read_parameters


@pytest.fixture(scope="module")
def engine(tiny_diffusers):
    eng = GenerationEngine(model_path=str(tiny_diffusers), device="cpu")
    yield eng
    eng.shutdown()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    d = tmp_path_factory.mktemp("pictures")
    rng = np.random.default_rng(3)
    init = d / "init.png"
    yy, xx = np.mgrid[0:64, 0:64]
    base = np.stack([xx * 4, yy * 4, (xx + yy) * 2], -1) + rng.integers(0, 30, (64, 64, 3))
    Image.fromarray(np.clip(base, 0, 255).astype(np.uint8)).save(init)
    mask = d / "mask.png"
    m = np.zeros((64, 64), np.uint8)
    m[16:48, 16:48] = 255
    Image.fromarray(m).save(mask)
    control = d / "control.png"
    c = np.zeros((64, 64, 3), np.uint8)
    c[20:44, 8:56] = 255  # a white bar: strong canny edges
    Image.fromarray(c).save(control)
    return {"init": init, "mask": mask, "control": control}


def _run(engine, tmp_path, **kw):
    base = dict(prompt="a red fox", width=64, height=64, steps=4, seed=5, output_dir=str(tmp_path))
    base.update(kw)
    req = GenerateRequest(**base)
    events: list = []
    engine.run(req, events.append, CancelToken())
    return req, events


def _image(events) -> np.ndarray:
    end = events[-1]
    assert isinstance(end, JobFinished), getattr(end, "message", end)
    path = [e.path for e in events if isinstance(e, ImageReady)][0]
    return np.asarray(Image.open(path).convert("RGB")).astype(np.int16)


def test_img2img_change_grows_with_strength_and_steps_follow_it(engine, tmp_path, pictures):
    outs = {}
    for s in (0.125, 0.25, 0.5, 1.0):
        req, events = _run(engine, tmp_path, init_image=str(pictures["init"]), strength=s, steps=8)
        outs[s] = _image(events)
        steps = [e.step for e in events if isinstance(e, StepProgress)]
        assert steps == list(range(1, int(8 * s) + 1))  # strength 0.25 of 8 steps denoises 2
        assert isinstance(events[0], JobStarted) and events[0].total_steps == int(8 * s)
    # the lowest strength is one step away from the picture; the change grows with strength
    change = [np.abs(outs[s] - outs[0.125]).mean() for s in (0.25, 0.5, 1.0)]
    assert 0 < change[0] < change[1] < change[2], change
    # same request, same picture
    _, again = _run(engine, tmp_path, init_image=str(pictures["init"]), strength=0.5, steps=8)
    assert np.array_equal(_image(again), outs[0.5])


def test_img2img_png_records_strength_and_source_hash_and_replays(engine, tmp_path, pictures):
    from zitdesk.hashing import sha256_file

    req, events = _run(engine, tmp_path, init_image=str(pictures["init"]), strength=0.5)
    path = [e.path for e in events if isinstance(e, ImageReady)][0]
    params = read_parameters(path)
    text = params.raw["parameters"]
    assert "Denoising strength: 0.5" in text and "Init image hash: " in text
    assert params.settings.get("Denoising strength") == "0.5"  # A1111 readers parse it
    values = params.request_values()
    assert values["strength"] == 0.5 and values["init_image"] == "init.png"  # a name, not a folder
    assert str(pictures["init"].parent) not in str(params.raw)
    assert values["init_image_sha256"] == sha256_file(pictures["init"])
    replay = GenerateRequest.from_dict({**values, "init_image": str(pictures["init"])})
    assert replay.strength == 0.5 and replay.init_image == str(pictures["init"])


def test_inpaint_keeps_unmasked_pixels(engine, tmp_path, pictures):
    init = np.asarray(Image.open(pictures["init"])).astype(np.int16)
    _, events = _run(
        engine,
        tmp_path,
        init_image=str(pictures["init"]),
        mask_image=str(pictures["mask"]),
        strength=1.0,
        mask_blur=4,
    )
    out = _image(events)
    diff = np.abs(out - init).max(-1)
    outside = np.ones((64, 64), bool)
    outside[12:52, 12:52] = False  # the mask (16:48) plus the feather
    assert diff[outside].max() <= 2  # unmasked pixels come back (within rounding)
    assert diff[20:44, 20:44].mean() > 10  # the masked square was repainted
    text = read_parameters([e.path for e in events if isinstance(e, ImageReady)][0]).raw
    assert "Mask blur: 4" in text["parameters"] and "Mask hash: " in text["parameters"]


def test_outpaint_extends_the_canvas(engine, tmp_path, pictures):
    init = np.asarray(Image.open(pictures["init"])).astype(np.int16)
    _, events = _run(
        engine,
        tmp_path,
        init_image=str(pictures["init"]),
        outpaint=(32, 0, 0, 0),
        width=96,
        height=64,
        strength=1.0,
        mask_blur=4,
    )
    out = _image(events)
    assert out.shape == (64, 96, 3)
    assert np.abs(out[:, 32 + 8 :] - init[:, 8:]).max() <= 2  # the old picture, moved right
    assert np.abs(out[:, :24] - init[:, :1]).mean() > 5  # the new strip is painted, not edge-fill


def test_controlnet_changes_the_output_and_start_end_matter(engine, tmp_path, pictures):
    net = make_tiny_controlnet(tmp_path / "tiny-controlnet")
    _, plain = _run(engine, tmp_path)
    kw = dict(controlnet_path=str(net), control_image=str(pictures["control"]))
    _, ctrl = _run(engine, tmp_path, **kw, control_scale=1.0)
    _, off = _run(engine, tmp_path, **kw, control_scale=0.0)
    _, late = _run(engine, tmp_path, **kw, control_scale=1.0, control_start=0.5)
    a, b, c, d = _image(plain), _image(ctrl), _image(off), _image(late)
    assert np.abs(a - b).mean() > 1.0  # the ControlNet changes the image
    assert np.abs(a - c).max() <= 1  # at scale 0 it does nothing
    assert np.abs(d - b).mean() > 0.5 and np.abs(d - a).mean() > 0.5  # acting on half the steps
    text = read_parameters([e.path for e in ctrl if isinstance(e, ImageReady)][0]).raw
    assert "ControlNet 0: " in text["parameters"] and "Module: canny" in text["parameters"]


def test_controlnet_single_file_layout_and_inpaint(engine, tmp_path, pictures):
    net = make_tiny_controlnet(tmp_path / "Tiny-Controlnet-Union.safetensors", layout="file")
    init = np.asarray(Image.open(pictures["init"])).astype(np.int16)
    _, events = _run(
        engine,
        tmp_path,
        controlnet_path=str(net),
        control_image=str(pictures["control"]),
        init_image=str(pictures["init"]),
        mask_image=str(pictures["mask"]),
        mask_blur=2,
    )
    out = _image(events)
    outside = np.ones((64, 64), bool)
    outside[12:52, 12:52] = False
    assert np.abs(out - init).max(-1)[outside].max() <= 2


def test_foreign_controlnet_is_refused_with_a_sentence(engine, tmp_path, pictures):
    from zitdesk.io import atomic_save_tensors

    torch = pytest.importorskip("torch")
    sdxl = tmp_path / "controlnet-sdxl.safetensors"
    atomic_save_tensors(
        sdxl,
        {
            "controlnet_cond_embedding.conv_in.weight": torch.zeros(16, 3, 3, 3),
            "controlnet_down_blocks.0.weight": torch.zeros(4, 4, 1, 1),
        },
    )
    lora = tmp_path / "style.safetensors"
    atomic_save_tensors(
        lora, {"diffusion_model.layers.0.attention.to_q.lora_A.weight": torch.zeros(4, 32)}
    )
    for path, words in ((sdxl, "SDXL ControlNet"), (lora, "a LoRA")):
        _, events = _run(
            engine, tmp_path, controlnet_path=str(path), control_image=str(pictures["control"])
        )
        end = events[-1]
        assert isinstance(end, JobFailed) and end.kind == "model"
        assert words in end.message and "\n" not in end.message and path.name in end.message
    wide = make_tiny_controlnet(tmp_path / "wide", dim=64, n_heads=4, n_kv_heads=4)
    _, events = _run(
        engine, tmp_path, controlnet_path=str(wide), control_image=str(pictures["control"])
    )
    assert isinstance(events[-1], JobFailed) and "width 64" in events[-1].message


def test_tiled_upscale_has_no_seams(engine, tmp_path, monkeypatch):
    from zitdesk.engine.edit import upscale
    from zitdesk.engine.edit.options import tile_starts

    grey = tmp_path / "grey.png"
    Image.new("RGB", (64, 64), (128, 128, 128)).save(grey)
    seen = {}
    real_blend = upscale.blend

    def spy(size, boxes, parts, overlap):  # keeps the real tiles to build a hard-cut version
        seen.update(boxes=boxes, parts=parts)
        return real_blend(size, boxes, parts, overlap)

    monkeypatch.setattr(upscale, "blend", spy)
    req, events = _run(
        engine,
        tmp_path,
        init_image=str(grey),
        upscale=2.0,
        width=128,
        height=128,
        strength=0.5,
        upscale_tile=80,
        upscale_overlap=32,
        steps=2,
    )
    out = _image(events).astype(np.float64)
    assert out.shape == (128, 128, 3)
    assert tile_starts(128, 80, 32) == [0, 48]  # 2×2 tiles, 32 px overlap
    assert events[0].total_steps == 4  # one step per tile
    hard = np.zeros_like(out)
    for (x0, y0, x1, y1), part in zip(seen["boxes"], seen["parts"], strict=True):
        hard[y0:y1, x0:x1] = np.asarray(part)  # each tile pasted over the last: seams at 48
    # Mean step between neighbouring columns (rows): across the tile borders (44..84) the
    # blended picture stays within its own texture, where the hard cut jumps at the seam.
    for axis in (1, 0):
        step = np.abs(np.diff(out, axis=axis)).mean(axis=(1 - axis, 2))
        cut = np.abs(np.diff(hard, axis=axis)).mean(axis=(1 - axis, 2))
        assert step[44:84].max() <= 1.35 * np.median(step), (axis, step[44:84].max())
        assert cut[47] > 1.35 * np.median(cut), (axis, cut[47])  # the measure sees a seam


def test_blend_is_continuous_where_a_hard_cut_jumps():
    from zitdesk.engine.edit.upscale import blend, tiles

    boxes = tiles(128, 64, 80, 32)
    parts = [Image.new("RGB", (80, 64), (0, 0, 0)), Image.new("RGB", (80, 64), (200, 200, 200))]
    smooth = np.asarray(blend((128, 64), boxes, parts, 32)).astype(int)
    hard = np.asarray(blend((128, 64), boxes, parts, 0)).astype(int)
    assert np.abs(np.diff(smooth[0, :, 0])).max() <= 200 / 32 + 1
    assert np.abs(np.diff(hard[0, :, 0])).max() >= 100


@pytest.mark.slow
def test_upscale_works_with_a_lora_and_cancel_keeps_no_file(engine, tmp_path, pictures):
    import torch

    from zitdesk.engine.events import JobCancelled, LoraReport
    from zitdesk.engine.requests import LoraSpec
    from zitdesk.io import atomic_save_tensors

    g = torch.Generator().manual_seed(0)
    lora = tmp_path / "tiny_style.safetensors"
    sd = {}
    for m in ("layers.0.attention.to_q", "layers.1.attention.to_v"):  # the tiny DiT: dim 32
        sd[f"diffusion_model.{m}.lora_A.weight"] = torch.randn(4, 32, generator=g)
        sd[f"diffusion_model.{m}.lora_B.weight"] = torch.randn(32, 4, generator=g)
    atomic_save_tensors(lora, sd)
    wide = tmp_path / "wide.png"
    Image.open(pictures["init"]).crop((0, 0, 64, 32)).save(wide)
    kw = dict(
        init_image=str(wide),
        upscale=2.0,
        width=128,
        height=64,  # two tiles of 80×64
        strength=0.5,
        upscale_tile=80,
        upscale_overlap=32,
        steps=2,
    )
    _, plain = _run(engine, tmp_path / "a", **kw)
    _, styled = _run(engine, tmp_path / "b", **kw, loras=(LoraSpec(str(lora), 1.5),))
    reports = [e for e in styled if isinstance(e, LoraReport)]
    assert reports and reports[0].matched >= 1
    assert np.abs(_image(plain) - _image(styled)).mean() > 0.5  # the LoRA acts on every tile
    cancel = CancelToken()
    events: list = []

    def emit(e):
        events.append(e)
        if isinstance(e, StepProgress) and e.step == 2:  # the second tile's first step
            cancel.cancel()

    req = GenerateRequest(prompt="a red fox", seed=5, output_dir=str(tmp_path / "c"), **kw)
    engine.run(req, emit, cancel)
    assert isinstance(events[-1], JobCancelled) and events[-1].paths == ()
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").glob("*.png"))


def test_edit_pipelines_share_the_loaded_components(tiny_pipe):
    from diffusers import ZImageImg2ImgPipeline, ZImageInpaintPipeline

    from zitdesk.engine.edit.render import shared_pipeline

    dtype = tiny_pipe.transformer.dtype
    for cls in (ZImageImg2ImgPipeline, ZImageInpaintPipeline):
        edit = shared_pipeline(cls, tiny_pipe)
        for name in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"):
            assert getattr(edit, name) is getattr(tiny_pipe, name)  # the objects, no copy
    assert tiny_pipe.transformer.dtype == dtype  # nothing was cast
