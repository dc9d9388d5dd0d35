"""Every numeric field of GenerateRequest and TrainConfig refuses NaN, infinities, negative,
huge and wrong-type values with one sentence (issue 12, point 11), table-driven from the
dataclass fields themselves so a new field is covered (or this test fails) automatically."""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest

from zitdesk.engine.requests import GenerateRequest, LoraSpec, MemoryMode, check_device
from zitdesk.errors import RequestError
from zitdesk.train.config import TrainConfig

NAN, INF = math.nan, math.inf

# -- GenerateRequest ---------------------------------------------------------------------------

GOOD = GenerateRequest(prompt="a cat", width=512, height=512, steps=8, seed=1)
_NUMERIC = [
    f.name
    for f in dataclasses.fields(GenerateRequest)
    if typing.get_type_hints(GenerateRequest)[f.name] in (int, float)
]
#: Values that must be refused for every numeric field; "huge" is beyond every sensible range.
BAD_NUMBERS = [NAN, INF, -INF, -1, -1e9, 10**30, 1e30, "8", None, True, [8], 2.5e300]
#: 0 is legitimate for guidance/preview_every/seed; fields where a fraction is fine accept 2.5.
#: Edit-mode and variety fields (#16) use 0 as "off"/"none": variety off, strength 0 keeps the
#: init image, a ControlNet at scale 0 / from step 0, no mask feather, tiles without overlap.
_OK_ZERO = {
    "guidance",
    "preview_every",
    "seed",
    "variety",
    "strength",
    "mask_blur",
    "control_scale",
    "control_start",
    "upscale_overlap",
}


def test_every_numeric_field_is_covered():
    assert set(_NUMERIC) == {
        "width",
        "height",
        "steps",
        "guidance",
        "shift",
        "seed",
        "count",
        "preview_every",
        "variety",
        "strength",
        "mask_blur",
        "control_scale",
        "control_start",
        "control_end",
        "upscale",
        "upscale_tile",
        "upscale_overlap",
    }


@pytest.mark.parametrize("name", _NUMERIC)
@pytest.mark.parametrize("value", BAD_NUMBERS, ids=repr)
def test_generate_request_refuses(name, value):
    req = dataclasses.replace(GOOD, **{name: value})
    with pytest.raises(RequestError) as err:
        req.validate()
    msg = str(err.value)
    assert "\n" not in msg and msg.endswith(".") and "Traceback" not in msg


@pytest.mark.parametrize("name", sorted(set(_NUMERIC) - _OK_ZERO))
def test_generate_request_zero_refused_where_meaningless(name):
    with pytest.raises(RequestError):
        dataclasses.replace(GOOD, **{name: 0}).validate()


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"guidance": NAN}, "Guidance must be a finite number"),
        ({"shift": INF}, "Shift must be a finite number"),
        ({"shift": 0.0}, "Shift must be above 0"),
        ({"guidance": 101.0}, "between 0 and 100"),
        ({"steps": 10**30}, "Steps must be between 1 and 200"),
        ({"width": 10**30}, "between 64 and 2048"),
        ({"width": 1000}, "992 or 1008"),
        ({"prompt": 5}, "prompt must be text"),
        ({"prompt": "  "}, "prompt is empty"),
        ({"memory_mode": "warp"}, "Memory mode"),
        ({"loras": (LoraSpec("/x/a.safetensors", 1e6),)}, "between -100 and 100"),
        ({"loras": (LoraSpec("/x/a.safetensors", NAN),)}, "finite number"),
        ({"loras": (LoraSpec("/x/a.safetensors", "1"),)}, "finite number"),
        ({"loras": (LoraSpec("", 1.0),)}, "no file path"),
        ({"loras": ("a.safetensors",)}, "LoRA stack"),
        ({"vae_tiling": "yes"}, "true or false"),
    ],
)
def test_generate_request_sentences(changes, words):
    with pytest.raises(RequestError, match=words):
        dataclasses.replace(GOOD, **changes).validate()


def test_sensible_values_pass():
    GOOD.validate()
    dataclasses.replace(
        GOOD,
        guidance=0.0,
        shift=100.0,
        seed=2**63 - 1,
        preview_every=0,
        loras=(
            LoraSpec("/x/a.safetensors", -100.0),
            LoraSpec("/x/b.safetensors", 100),
            LoraSpec("/x/c.safetensors", 0.8),
        ),
        memory_mode=MemoryMode.FP8,
    ).validate()


def test_output_dir_that_is_a_file(tmp_path):
    f = tmp_path / "f.png"
    f.write_bytes(b"x")
    with pytest.raises(RequestError, match="is a file"):
        dataclasses.replace(GOOD, output_dir=str(f)).validate()


@pytest.mark.parametrize("text", ["auto", "cpu", "cuda", "cuda:0", "CUDA:12", "mps", None, ""])
def test_devices_accepted(text):
    assert check_device(text) in ("auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps")


@pytest.mark.parametrize(
    "text", ["tpu9", "gpu", "cuda:x", "cuda:", "cuda:-1", "cpu1", "xla", "cuda:0;rm", 5]
)
def test_devices_refused(text):
    with pytest.raises(RequestError, match="auto, cpu, cuda"):
        check_device(text)


# -- TrainConfig -------------------------------------------------------------------------------

BASE = TrainConfig().with_changes(
    model={"path": "/m"}, data={"folder": "/d"}, save={"output_dir": "/o"}
)


def _numeric_fields() -> list[tuple[str, str, typing.Any]]:
    out = []
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.name == "version":
            continue
        sec_hints = typing.get_type_hints(hints[f.name])
        for sf in dataclasses.fields(hints[f.name]):
            t = sec_hints[sf.name]
            if t in (int, float) or (
                typing.get_origin(t) is tuple and typing.get_args(t)[0] in (int, float)
            ):
                out.append((f.name, sf.name, t))
    return out


NUMERIC_TRAIN = _numeric_fields()
# Values valid for no numeric training field (each field's own range refuses "huge").
BAD_TRAIN = [NAN, INF, -INF, -1, 10**30, 1e30, "3", None, True]


def _set(cfg: TrainConfig, sec: str, name: str, value, typ) -> TrainConfig:
    if typing.get_origin(typ) is tuple:
        n = len(getattr(getattr(cfg, sec), name)) or 1
        value = (value,) * n
    return dataclasses.replace(
        cfg, **{sec: dataclasses.replace(getattr(cfg, sec), **{name: value})}
    )


def test_train_numeric_fields_found():
    names = {f"{s}.{n}" for s, n, _ in NUMERIC_TRAIN}
    assert {
        "optim.steps",
        "optim.learning_rate",
        "data.resolutions",
        "optim.betas",
        "sample.seeds",
        "timesteps.shift",
        "memory.vram_budget_gb",
    } <= names


@pytest.mark.parametrize(
    ("sec", "name", "typ"), NUMERIC_TRAIN, ids=[f"{s}.{n}" for s, n, _ in NUMERIC_TRAIN]
)
@pytest.mark.parametrize("value", BAD_TRAIN, ids=repr)
def test_train_config_refuses(sec, name, typ, value):
    cfg = _set(BASE, sec, name, value, typ)
    with pytest.raises(RequestError) as err:
        cfg.validate()
    msg = str(err.value)
    assert "\n" not in msg and "Traceback" not in msg


def test_train_defaults_and_presets_pass():
    from zitdesk.train.presets import PRESETS, apply_preset

    BASE.validate()
    for name in PRESETS:
        apply_preset(BASE, name).validate()


@pytest.mark.parametrize(
    ("toml", "words"),
    [
        ('[data]\nresolutions = "512"\n', "list of whole numbers like [512, 768]"),
        ("[optim]\nsteps = 1e30\n", "optim.steps"),
        ("[optim]\ngrad_clip = nan\n", "finite"),
        ('[model]\ndevice = "tpu9"\n', "tpu9"),
    ],
)
def test_train_toml_sentences(toml, words):
    with pytest.raises(RequestError, match=words.replace("[", r"\[").replace("]", r"\]")):
        TrainConfig.from_toml(toml).with_changes(
            model={"path": "/m"}, data={"folder": "/d"}, save={"output_dir": "/o"}
        ).validate()


def test_train_config_file_forms(tmp_path):
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf[optim]\nsteps = 5\n")
    assert TrainConfig.load(bom).optim.steps == 5
    binary = tmp_path / "bin.toml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(RequestError, match="not a text file"):
        TrainConfig.load(binary)
    with pytest.raises(RequestError, match="is a folder"):
        TrainConfig.load(tmp_path)
