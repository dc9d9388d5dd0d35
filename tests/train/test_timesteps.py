"""σ sampling modes and loss weights."""

from __future__ import annotations

import pytest

from zitdesk.train.timesteps import sample_sigmas, turbo_ladder, weight_at, weighted_table

MODES = ("weighted", "shift", "logit_normal", "uniform_shift", "turbo_anchors")


def test_weighted_curve_shape():
    sigmas, weights = weighted_table()
    assert len(sigmas) == 1000 and sigmas[0] == 1.0 and abs(sigmas[-1] - 0.001) < 1e-12
    assert abs(sum(weights) / len(weights) - 1.0) < 1e-9
    assert 0.35 < weight_at(0.001) < 0.55
    assert weight_at(0.25) < weight_at(0.5) < weight_at(0.875)
    assert 1.3 < max(weights) < 1.7
    peak = sigmas[max(range(1000), key=weights.__getitem__)]
    assert 0.8 < peak < 0.95
    assert weight_at(1.0) < weight_at(0.875)


def test_turbo_ladder_matches_the_sampler():
    assert [round(s, 4) for s in turbo_ladder(8, 3.0)] == [
        1.0,
        0.9545,
        0.9,
        0.8333,
        0.75,
        0.6429,
        0.5,
        0.3,
    ]


@pytest.mark.parametrize("mode", MODES)
def test_deterministic_and_in_range(mode):
    a = sample_sigmas(mode, 3, seed=5, index=11)
    assert a == sample_sigmas(mode, 3, seed=5, index=11)
    assert a != sample_sigmas(mode, 3, seed=5, index=12)
    for s in a[0]:
        assert 0.0 < s <= 1.0
    if mode != "weighted":
        assert a[1] == [1.0, 1.0, 1.0]


def test_shift_favours_high_noise():
    draws = [sample_sigmas("shift", 1, 0, i, shift=3.0)[0][0] for i in range(2000)]
    plain = [sample_sigmas("logit_normal", 1, 0, i)[0][0] for i in range(2000)]
    assert sum(draws) / len(draws) > sum(plain) / len(plain) + 0.1


def test_turbo_anchors_are_stratified():
    ladder = turbo_ladder(8, 3.0)
    draws = [sample_sigmas("turbo_anchors", 1, 9, i, jitter=0.0)[0][0] for i in range(16)]
    for block in (draws[:8], draws[8:]):
        assert sorted(round(d, 6) for d in block) == sorted(round(s, 6) for s in ladder)
    assert draws[:8] != draws[8:]
    jittered = [sample_sigmas("turbo_anchors", 1, 9, i, jitter=0.02)[0][0] for i in range(8)]
    assert all(abs(j - d) <= 0.02 + 1e-9 for j, d in zip(jittered, draws[:8], strict=True))
