"""zitdesk.train.estimate: the measured rows come back at 1024², and the scaling rules hold."""

from __future__ import annotations

import pytest

from zitdesk.gpu import GpuReading, MemorySnapshot
from zitdesk.train.config import TrainConfig
from zitdesk.train.estimate import (
    GpuSpec,
    card_speed,
    estimate_run,
    estimate_tiers,
    format_duration,
    gpu_spec,
)
from zitdesk.train.presets import apply_preset

H100 = GpuSpec("NVIDIA H100 80GB HBM3", 79.6)


def cfg_for(preset: str, **sections) -> TrainConfig:
    return apply_preset(TrainConfig(), preset).with_changes(**sections)


BENCH_LORA = {"rank": 32, "targets": ("attention", "feed_forward"), "include_refiners": True}


def test_measured_rows_at_1024():
    """One 1024² bucket on the calibration card: the measured rows of docs/benchmarks.md where
    the preset does what was measured, the planner's prediction where it plans (#15)."""
    at_1024 = {"resolutions": (1024,)}
    e = estimate_run(cfg_for("24gb", data=at_1024, lora=BENCH_LORA), H100, buckets=[(1024, 1024)])
    assert e.step_s == pytest.approx(0.281, abs=1e-3)  # nothing to checkpoint on 80 GB
    assert e.peak_gib == pytest.approx(31.45, rel=0.015)  # the planner's memory model
    capped = estimate_run(
        cfg_for("24gb", data=at_1024, lora=BENCH_LORA),
        GpuSpec("NVIDIA H100", 24.5),
        buckets=[(1024, 1024)],
    )
    assert capped.step_s < 0.368 * 0.9  # measured with the old planner's 19 checkpointed blocks
    assert 20.97 < capped.peak_gib <= 24.0 and capped.fits
    for name, (old_s, budget) in {"16gb": (0.426, 16.0), "12gb": (0.446, 12.0)}.items():
        e = estimate_run(cfg_for(name, data=at_1024, lora=BENCH_LORA), H100, [(1024, 1024)])
        assert e.step_s < 0.95 * old_s, name  # fewer blocks checkpointed than every one
        assert e.peak_gib <= budget and e.fits is True, name
        full = cfg_for(name, data=at_1024, memory={"gradient_checkpointing": "full"})
        assert estimate_run(full, H100, [(1024, 1024)]).step_s == pytest.approx(old_s, abs=1e-3)
    e = estimate_run(cfg_for("8gb", data=at_1024), H100, buckets=[(1024, 1024)])
    assert e.step_s == pytest.approx(0.733, abs=1e-3)
    assert e.peak_gib == pytest.approx(5.93, abs=1e-2)
    assert e.fits is True


#: Measured on an NVIDIA H200 for this module (see its docstring): (preset, size) → (s, GiB).
H200_MEASURED = {
    ("16gb", 512): (0.266, 7.79),
    ("16gb", 768): (0.251, 8.36),
    ("16gb", 1024): (0.3845, 9.17),
    ("24gb", 768): (0.1464, 23.43),
    ("24gb", 1024): (0.2624, 31.44),
}


@pytest.mark.parametrize(("preset", "size"), sorted(H200_MEASURED))
def test_smaller_buckets_match_the_h200_measurements(preset, size):
    s, gib = H200_MEASURED[(preset, size)]
    cfg = cfg_for(preset, data={"resolutions": (size,)}, lora=BENCH_LORA)
    if preset == "16gb":  # measured when the tier checkpointed every block
        cfg = cfg.with_changes(memory={"gradient_checkpointing": "full"})
    e = estimate_run(cfg, GpuSpec("NVIDIA H200", 139.8), buckets=[(size, size)])
    assert e.step_s == pytest.approx(s, rel=0.07)
    assert e.peak_gib == pytest.approx(gib, rel=0.015)


def test_smaller_buckets_are_faster_and_lighter_on_a_slower_card():
    card = GpuSpec("NVIDIA GeForce RTX 4070", 12.0)  # GPU-bound: above the host's step floor
    big = estimate_run(cfg_for("12gb"), card, buckets=[(1024, 1024)])
    small = estimate_run(cfg_for("12gb"), card, buckets=[(768, 768)])
    tiny = estimate_run(cfg_for("12gb"), card, buckets=[(512, 512)])
    assert tiny.step_s < small.step_s < big.step_s
    # the planner fills the card at every size (fewer blocks checkpointed when smaller)
    assert max(tiny.peak_gib, small.peak_gib, big.peak_gib) <= 12.0
    # attention is quadratic; the 1024² step also checkpoints more blocks
    assert 0.15 < tiny.step_s / big.step_s < 0.35
    full = {"gradient_checkpointing": "full"}
    big_full = estimate_run(cfg_for("12gb", memory=full), card, buckets=[(1024, 1024)])
    tiny_full = estimate_run(cfg_for("12gb", memory=full), card, buckets=[(512, 512)])
    assert tiny_full.peak_gib < big_full.peak_gib
    assert 0.25 < tiny_full.step_s / big_full.step_s < 0.35
    # on a fast card the fp8 step bottoms out at the host's floor
    fast = estimate_run(cfg_for("12gb"), H100, buckets=[(512, 512)])
    assert fast.step_s == 0.25


def test_batch_accumulation_and_eager_scale_the_step():
    base = estimate_run(cfg_for("16gb"), H100, buckets=[(1024, 1024)])  # above the step floor
    accum = estimate_run(cfg_for("16gb", optim={"grad_accum": 4}), H100, buckets=[(1024, 1024)])
    assert accum.step_s == pytest.approx(4 * base.step_s)
    assert accum.peak_gib == pytest.approx(base.peak_gib)
    batch = estimate_run(cfg_for("16gb", optim={"batch_size": 2}), H100, buckets=[(1024, 1024)])
    assert batch.step_s > 2 * base.step_s  # twice the work, and more checkpointing to fit
    assert batch.peak_gib <= 16.0
    full = {"gradient_checkpointing": "full"}
    one = estimate_run(cfg_for("16gb", memory=full), H100, buckets=[(1024, 1024)])
    two = estimate_run(
        cfg_for("16gb", memory=full, optim={"batch_size": 2}), H100, buckets=[(1024, 1024)]
    )
    assert two.peak_gib > one.peak_gib
    eager = estimate_run(cfg_for("16gb", memory={"compile": False}), H100, buckets=[(1024, 1024)])
    assert eager.step_s == pytest.approx(base.step_s * 0.728 / 0.420)


def test_24gb_preset_follows_the_card_memory():
    cfg = cfg_for("24gb")
    peaks = [estimate_run(cfg, GpuSpec("NVIDIA H100", v)).peak_gib for v in (16, 24, 32, 80)]
    steps = [estimate_run(cfg, GpuSpec("NVIDIA H100", v)).step_s for v in (16, 24, 32, 80)]
    assert peaks == sorted(peaks) and steps == sorted(steps, reverse=True)
    whole = estimate_run(cfg.with_changes(lora=BENCH_LORA), GpuSpec("NVIDIA H100", 80))
    assert whole.peak_gib == pytest.approx(31.45, rel=0.015)
    # the bf16 tier uses fp8 to go faster where bf16 fits, not to squeeze onto a 12 GB card
    assert estimate_run(cfg, GpuSpec("Some 12 GB card", 11.9)).fits is False
    assert estimate_run(cfg_for("12gb"), GpuSpec("Some 12 GB card", 11.9)).fits is True
    assert estimate_run(cfg_for("8gb"), GpuSpec("Some 12 GB card", 11.9)).fits is True


def test_card_speeds_and_how_it_was_made():
    assert card_speed(GpuSpec("NVIDIA GeForce RTX 4070 Ti SUPER", 16))[0] == 0.2
    assert card_speed(GpuSpec("NVIDIA GeForce RTX 4070", 12))[0] == 0.15
    assert card_speed(GpuSpec("NVIDIA H100 PCIe", 80))[0] == 0.75
    cfg = cfg_for("16gb")
    h100 = estimate_run(cfg, H100, buckets=[(1024, 1024)])
    r4090 = estimate_run(cfg, GpuSpec("NVIDIA GeForce RTX 4090", 24), buckets=[(1024, 1024)])
    assert r4090.step_s == pytest.approx(h100.step_s / 0.35)
    assert r4090.peak_gib == pytest.approx(h100.peak_gib)
    assert r4090.known_card and "RTX 4090" in r4090.how and "0.35" in r4090.how
    odd = estimate_run(cfg, GpuSpec("Frobnitz X9", 12))
    assert not odd.known_card
    assert "not in zitdesk's list" in odd.how and "12 GB" in odd.how
    none = estimate_run(cfg, None, buckets=[(1024, 1024)])
    assert none.fits is None and "No NVIDIA GPU" in none.how
    assert none.step_s == pytest.approx(h100.step_s)


def test_total_counts_startup_caching_samples_and_saving():
    cfg = cfg_for(
        "16gb",
        optim={"steps": 1000},
        save={"every": 250},
        sample={"every": 250, "prompts": ("a", "b")},
    )
    e = estimate_run(cfg, H100, images=20)
    p = e.parts
    assert p["training"] == pytest.approx(1000 * e.step_s)
    assert p["startup"] > 0 and p["caching"] > 0
    assert e.total_s == pytest.approx(sum(p.values()))
    # 4 rounds (250, 500, 750, end) × 2 prompts; 4 saves
    one_round = estimate_run(cfg.with_changes(sample={"every": 1000}), H100, images=20)
    assert p["sampling"] == pytest.approx(4 * one_round.parts["sampling"])
    none = estimate_run(
        cfg.with_changes(sample={"prompts": ()}, save={"every": 0}), H100, images=20
    )
    assert none.parts["sampling"] == 0 and none.parts["saving"] < p["saving"] / 3
    assert estimate_run(cfg, H100, images=20, cached=True).parts["caching"] == 0
    assert "training" in e.breakdown() and "samples" in e.breakdown()
    # a compiled run compiles once more when it sees a second bucket shape
    one_shape = estimate_run(cfg, H100, buckets=[(1024, 1024)], images=20)
    two_shapes = estimate_run(cfg, H100, buckets=[(1024, 1024), (832, 1216)], images=20)
    assert two_shapes.parts["startup"] == one_shape.parts["startup"] + 8.0
    eager = cfg.with_changes(memory={"compile": False})
    assert (
        estimate_run(eager, H100, buckets=[(1024, 1024), (832, 1216)]).parts["startup"]
        == estimate_run(eager, H100, buckets=[(1024, 1024)]).parts["startup"]
    )


def test_estimate_tiers_lists_every_preset_and_reads_gpu_objects():
    snap = MemorySnapshot(gpus=(GpuReading(0, "NVIDIA GeForce RTX 4090", 0, 24 * 2**30),))
    assert gpu_spec(snap) == GpuSpec("NVIDIA GeForce RTX 4090", 24.0)
    assert gpu_spec(MemorySnapshot()) is None
    assert gpu_spec(("X", 8)) == GpuSpec("X", 8.0)
    tiers = estimate_tiers(TrainConfig(), snap)
    assert list(tiers) == ["24gb", "16gb", "12gb", "8gb"]
    assert all(e.preset == name for name, e in tiers.items())
    assert tiers["8gb"].peak_gib < tiers["16gb"].peak_gib < tiers["24gb"].peak_gib


def test_format_duration():
    assert format_duration(0.2) == "1 s"
    assert format_duration(45) == "45 s"
    assert format_duration(12 * 60 + 10) == "12 min"
    assert format_duration(3600 + 5 * 60) == "1 h 05 min"
