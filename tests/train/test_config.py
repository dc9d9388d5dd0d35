"""Training config: TOML round trip, migrations, tolerant loading, validation, presets."""

from __future__ import annotations

import pytest

from zitdesk.errors import RequestError
from zitdesk.train.config import CONFIG_VERSION, TrainConfig, locked_differences
from zitdesk.train.presets import PRESETS, apply_preset, lower_preset, preset_for_vram


def _valid(**sections) -> TrainConfig:
    base = {"model": {"path": "/m"}, "data": {"folder": "/d"}, "save": {"output_dir": "/o"}}
    for k, v in sections.items():
        base[k] = {**base.get(k, {}), **v}
    return TrainConfig().with_changes(**base)


def test_toml_round_trip(tmp_path):
    cfg = _valid(
        lora={"rank": 16, "alpha": 8.0, "targets": ("attention",)},
        sample={"prompts": ("a [trigger] on a beach", "portrait"), "seeds": (1, 2)},
        optim={"betas": (0.9, 0.99)},
    )
    path = cfg.write(tmp_path / "c.toml")
    text = path.read_text()
    assert text.startswith(f"version = {CONFIG_VERSION}")
    back = TrainConfig.load(path)
    assert back == cfg
    assert back.optim.betas == (0.9, 0.99) and isinstance(back.lora.targets, tuple)


def test_partial_file_takes_defaults_and_warns_on_unknown_keys():
    warns: list[str] = []
    cfg = TrainConfig.from_toml("version = 1\nmystery = 3\n[optim]\nsteps = 12\nbogus = 1\n", warns)
    assert cfg.optim.steps == 12 and cfg.lora.rank == 32
    assert any("mystery" in w for w in warns) and any("optim.bogus" in w for w in warns)


def test_migration_from_unversioned_flat_file():
    warns: list[str] = []
    cfg = TrainConfig.from_toml(
        'lr = 2e-4\nnetwork_dim = 16\nrank = 16\ntrigger = "ohwx"\n'
        'steps = 300\n[save]\nname = "cat"\n',
        warns,
    )
    assert cfg.version == CONFIG_VERSION
    assert cfg.optim.learning_rate == 2e-4 and cfg.lora.rank == 16 and cfg.optim.steps == 300
    assert cfg.data.trigger == "ohwx" and cfg.save.name == "cat"


def test_newer_version_is_refused():
    with pytest.raises(RequestError, match="newer zitdesk"):
        TrainConfig.from_toml(f"version = {CONFIG_VERSION + 1}\n")


def test_wrong_types_are_plain_errors():
    with pytest.raises(RequestError, match="lora.rank should be a whole number"):
        TrainConfig.from_toml('[lora]\nrank = "big"\n')
    with pytest.raises(RequestError, match="not valid TOML"):
        TrainConfig.from_toml("[lora\n")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": {"base_precision": "fp16"}}, "fp16"),
        ({"data": {"resolutions": (1000,)}}, "multiples of 16"),
        ({"lora": {"targets": ("attention", "everything")}}, "lora.targets"),
        ({"timesteps": {"mode": "cosmic"}}, "timesteps.mode"),
        ({"optim": {"optimizer": "sgd"}}, "optim.optimizer"),
        ({"save": {"name": "a/b"}}, "plain file name"),
        ({"sample": {"width": 100}}, "multiple of 16"),
    ],
)
def test_validate(changes, message):
    with pytest.raises(RequestError, match=message):
        _valid(**changes).validate()


def test_validate_requires_paths():
    with pytest.raises(RequestError, match="base model"):
        TrainConfig().validate()
    _valid().validate()


def test_locked_differences():
    a = _valid()
    assert locked_differences(a, a.with_changes(optim={"steps": 99}, sample={"every": 3})) == []
    diffs = locked_differences(a, a.with_changes(lora={"rank": 4}))
    assert len(diffs) == 1 and "lora.rank" in diffs[0]


def test_presets():
    cfg = _valid(lora={"rank": 12})
    for name in PRESETS:
        p = apply_preset(cfg, name).validate()
        assert p.memory.preset == name and p.lora.rank == 12
        assert max(p.data.resolutions) <= 1024
    assert apply_preset(cfg, "8gb").model.base_precision == "nf4"
    assert apply_preset(cfg, "16gb").model.base_precision == "fp8"
    assert apply_preset(cfg, "24gb").memory.gradient_checkpointing == "auto"
    assert preset_for_vram(80) == "24gb" and preset_for_vram(16) == "16gb"
    assert preset_for_vram(12) == "12gb" and preset_for_vram(6) == "8gb"
    assert lower_preset(apply_preset(cfg, "24gb")) == "16gb"
    assert lower_preset(apply_preset(cfg, "8gb")) is None
    with pytest.raises(RequestError):
        apply_preset(cfg, "4gb")
