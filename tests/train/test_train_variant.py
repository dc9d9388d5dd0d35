"""Training on Base: `variant = "base"` samples with Base sampling and is written into the LoRA."""

from __future__ import annotations

from zitdesk.models.variants import DEFAULTS, lora_variant
from zitdesk.train.config import TrainConfig
from zitdesk.train.lora_io import build_metadata


def test_base_run_samples_with_base_sampling():
    cfg = TrainConfig.from_toml('[model]\nvariant = "base"\n')
    base = DEFAULTS["base"]
    assert (cfg.sample.steps, cfg.sample.guidance, cfg.sample.shift) == (
        base.steps,
        base.guidance,
        base.shift,
    )
    # what the file sets wins
    cfg = TrainConfig.from_toml('[model]\nvariant = "base"\n[sample]\nsteps = 12\n')
    assert cfg.sample.steps == 12 and cfg.sample.shift == base.shift
    turbo = TrainConfig.from_toml("[model]\n")
    assert (turbo.sample.steps, turbo.sample.guidance, turbo.sample.shift) == (8, 0.0, 3.0)
    # a round trip through the TOML keeps it
    again = TrainConfig.from_toml(TrainConfig.from_toml('[model]\nvariant = "base"\n').to_toml())
    assert again.sample.steps == base.steps


def test_lora_metadata_names_the_variant():
    cfg = TrainConfig.from_toml('[model]\nvariant = "base"\n')
    meta = build_metadata(
        cfg,
        step=10,
        epoch=1,
        base_precision="bf16",
        resolution=(512, 512),
        tag_freq={},
        dataset_name="faces",
    )
    assert meta["zitdesk_base_variant"] == "base"
    got = lora_variant(meta)
    assert (got.variant, got.detail) == ("base", "zitdesk_base_variant")
