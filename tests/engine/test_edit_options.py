"""The edit modes' torch-free parts: mode and step counting, checks with one sentence, tiles,
canny, masks and outpaint canvas, ControlNet header checks (zitdesk.engine.edit)."""

import numpy as np
import pytest
from PIL import Image

from tests.support.samples import write_safetensors
from zitdesk.engine.edit import images
from zitdesk.engine.edit.controlnet import check_controlnet, infer_config
from zitdesk.engine.edit.options import mode_of, tile_starts, total_steps
from zitdesk.engine.requests import GenerateRequest
from zitdesk.errors import ModelError, RequestError
from zitdesk.st_header import read_header


@pytest.fixture
def pic(tmp_path):
    path = tmp_path / "p.png"
    Image.new("RGB", (64, 64), (10, 20, 30)).save(path)
    return str(path)


def test_modes_and_steps(pic):
    r = GenerateRequest(prompt="x", steps=8)
    assert mode_of(r) == "txt2img" and total_steps(r) == 8
    r = GenerateRequest(prompt="x", steps=8, init_image=pic, strength=0.5)
    assert mode_of(r) == "img2img" and total_steps(r) == 4
    assert mode_of(r.with_changes(mask_image=pic)) == "inpaint"
    assert mode_of(r.with_changes(outpaint=(0, 0, 64, 0))) == "inpaint"
    cn = r.with_changes(init_image="", controlnet_path=pic, control_image=pic)
    assert mode_of(cn) == "controlnet" and total_steps(cn) == 8
    assert mode_of(cn.with_changes(init_image=pic, mask_image=pic)) == "controlnet_inpaint"
    up = r.with_changes(upscale=2.0, width=2048, height=2048, strength=0.3)
    assert mode_of(up) == "upscale" and total_steps(up) == 3 * 9  # 3×3 tiles of 1024, 3 of 8 steps


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"strength": 1.5}, "Denoise strength must be between 0 and 1"),
        ({"mask_image": "PIC"}, "needs an init image"),
        ({"upscale": 2.0}, "Upscaling needs an init image"),
        ({"controlnet_path": "PIC"}, "needs a control image"),
        ({"control_image": "PIC"}, "needs a ControlNet file"),
        (
            {
                "controlnet_path": "PIC",
                "control_image": "PIC",
                "control_start": 0.8,
                "control_end": 0.2,
            },
            "start must come before",
        ),
        ({"control_type": "hed"}, "Control type 'hed' is not known"),
        ({"outpaint": (0, -5, 0, 0)}, "Outpaint takes four whole numbers"),
        ({"init_image": "/nope/x.png"}, "x.png was not found"),
        ({"init_image": "PIC", "upscale": 9.0}, "between 1 and 4"),
        ({"init_image": "PIC", "upscale_tile": 1000}, "multiple of 16"),
        ({"init_image": "PIC", "upscale_overlap": 600}, "less than half"),
        (
            {"init_image": "PIC", "controlnet_path": "PIC", "control_image": "PIC"},
            "clear the init image",
        ),
    ],
)
def test_bad_edit_fields_get_one_sentence(pic, changes, words):
    changes = {k: (pic if v == "PIC" else v) for k, v in changes.items()}
    with pytest.raises(RequestError) as err:
        GenerateRequest(prompt="x", **changes).validate()
    assert words in str(err.value) and "\n" not in str(err.value)


def test_from_dict_is_tolerant_of_edit_fields(pic):
    r = GenerateRequest.from_dict({"prompt": "x", "outpaint": [1, 2, 3, 4], "strength": 0.3})
    assert r.outpaint == (1, 2, 3, 4) and r.strength == 0.3
    assert GenerateRequest.from_dict({"prompt": "x", "outpaint": "left"}).outpaint == (0, 0, 0, 0)


def test_tiles_cover_the_picture_with_the_overlap():
    for size, tile, overlap in ((2048, 1024, 128), (1536, 1024, 64), (1000 // 16 * 16, 512, 96)):
        starts = tile_starts(size, tile, overlap)
        assert starts[0] == 0 and starts[-1] == size - tile
        assert all(s % 16 == 0 for s in starts)
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:], strict=False))
    assert tile_starts(512, 1024, 128) == [0]


def test_canny_finds_the_edges_of_a_square():
    im = Image.new("RGB", (64, 64), (0, 0, 0))
    im.paste((255, 255, 255), (16, 16, 48, 48))
    edges = np.asarray(images.canny(im))[..., 0] > 0
    assert edges[16:48, 14:19].any(axis=1).all()  # the left side, every row
    assert not edges[24:40, 24:40].any() and not edges[:8, :8].any()  # nothing inside or outside
    assert (
        images.control_map(im, "none") is not im and images.control_map(im, "none").size == im.size
    )


def test_outpaint_canvas_and_paste_back():
    im = Image.new("RGB", (32, 32), (200, 10, 10))
    grown, mask = images.extend_canvas(im, None, (0, 0, 16, 8), blur=4)
    assert grown.size == (48, 40) and np.asarray(grown)[0, 47].tolist() == [200, 10, 10]
    m = np.asarray(mask)
    assert m[:, 36:].min() == 255 and m[35:, :].min() == 255  # new area + 4 px into the old
    assert m[:20, :20].max() == 0
    result = Image.new("RGB", (48, 40), (0, 0, 255))
    out = np.asarray(images.paste_back(grown, result, mask, 4)).astype(int)
    assert out[5, 5].tolist() == [200, 10, 10] and out[5, 45].tolist() == [0, 0, 255]


def test_rgba_mask_file_means_repaint_where_transparent(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[:, :4, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "erased.png")
    m = np.asarray(images.open_mask(str(tmp_path / "erased.png")))
    assert m[:, :4].min() == 255 and m[:, 4:].max() == 0
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(RequestError, match="not a picture"):
        images.open_image(str(tmp_path / "bad.png"))


def _videox_fun_header(tmp_path, n_layers=15, dim=3840, before=True):
    t = {"control_all_x_embedder.2-1.weight": ((dim, 132),)}
    for i in range(n_layers):
        t[f"control_layers.{i}.after_proj.weight"] = ((dim, dim),)
    t["control_layers.0.before_proj.weight"] = ((dim, dim),)
    for i in range(2):
        t[f"control_noise_refiner.{i}.after_proj.weight"] = ((dim, dim),)
    if before:
        t["control_noise_refiner.0.before_proj.weight"] = ((dim, dim),)
    return write_safetensors(tmp_path / "Z-Image-Turbo-Fun-Controlnet-Union-2.1.safetensors", t)


def test_videox_fun_config_from_the_header(tmp_path):
    path = _videox_fun_header(tmp_path)
    cfg = infer_config(read_header(path), {"n_layers": 30, "n_refiner_layers": 2, "n_heads": 30})
    assert cfg["control_layers_places"] == list(range(0, 30, 2))
    assert (
        cfg["control_in_dim"] == 33 and cfg["add_control_noise_refiner"] == "control_noise_refiner"
    )
    info = check_controlnet(path, {"n_layers": 30, "dim": 3840})
    assert info.version == "2.1" and "15 control layers" in info.label
    with pytest.raises(ModelError, match="width 3840, but the loaded model has width 32"):
        check_controlnet(path, {"dim": 32})


@pytest.mark.parametrize(
    "keys, words",
    [
        (
            {"controlnet_cond_embedding.conv_in.weight": ((16, 3, 3, 3),)},
            "Stable Diffusion / SDXL ControlNet",
        ),
        (
            {
                "controlnet_x_embedder.weight": ((3072, 64),),
                "controlnet_blocks.0.weight": ((8, 8),),
            },
            "Flux or SD3 ControlNet",
        ),
        ({"diffusion_model.layers.0.attention.to_q.lora_A.weight": ((4, 32),)}, "is a LoRA"),
        (
            {
                "layers.0.adaLN_modulation.0.weight": ((256, 32),),
                "cap_embedder.1.weight": ((32, 16),),
            },
            "base model (DiT)",
        ),
        ({"something.else": ((4,),)}, "no ControlNet layout"),
    ],
)
def test_foreign_files_are_refused_with_a_sentence(tmp_path, keys, words):
    path = write_safetensors(tmp_path / "other.safetensors", keys)
    with pytest.raises(ModelError) as err:
        check_controlnet(path)
    assert words in str(err.value) and "other.safetensors" in str(err.value)
    with pytest.raises(ModelError, match="not a .safetensors file"):
        check_controlnet(tmp_path / "cn.ckpt")
    with pytest.raises(ModelError, match="is not a ControlNet"):
        check_controlnet(tmp_path)


def test_memory_estimate_follows_the_edit_mode(pic, tmp_path):
    from zitdesk.memory_predict import MemoryPredictor

    p = MemoryPredictor()
    tile = GenerateRequest(prompt="x", width=1024, height=1024)
    up = GenerateRequest(prompt="x", width=2048, height=2048, init_image=pic, upscale=2.0)
    assert p.predict(up, "").peak_bytes == p.predict(tile, "").peak_bytes  # one tile at a time
    net = _videox_fun_header(tmp_path, n_layers=2, dim=64)
    cn = GenerateRequest(prompt="x", controlnet_path=str(net), control_image=pic)
    extra = p.predict(cn, "").peak_bytes - p.predict(tile, "").peak_bytes
    assert extra == net.stat().st_size
    p.record(up, 9 * 2**30, "")  # a measured upscale is not taken for a plain 2048² image
    big = GenerateRequest(prompt="x", width=2048, height=2048)
    assert p.predict(big, "").basis == "estimate"


def test_init_image_follows_its_exif_orientation(tmp_path):
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° on the camera: shown 20 wide, 40 tall
    im.save(tmp_path / "phone.jpg", exif=exif)
    assert images.open_image(str(tmp_path / "phone.jpg")).size == (20, 40)


def test_union_2_0_file_with_zero_refiner_loads_as_control_layers(tmp_path):
    torch = pytest.importorskip("torch")
    from tests.support.controlnet import make_tiny_controlnet
    from zitdesk.engine.edit.controlnet import load_controlnet
    from zitdesk.io import atomic_save_tensors
    from zitdesk.models.tiny import TINY_TRANSFORMER

    path = make_tiny_controlnet(tmp_path / "Union-2.0.safetensors", layout="file")
    from safetensors.torch import load_file

    state = load_file(str(path))
    state["control_noise_refiner.0.before_proj.weight"].zero_()  # as the 2.0 release ships it
    atomic_save_tensors(path, state)
    info = check_controlnet(path, TINY_TRANSFORMER)
    model = load_controlnet(info, None, "cpu")
    assert model.config.add_control_noise_refiner == "control_layers"
    assert not any(k.startswith("control_noise_refiner.") for k in model.state_dict())
    assert model.dtype == torch.bfloat16
