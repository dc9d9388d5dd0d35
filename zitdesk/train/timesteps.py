"""Noise-level (σ) sampling for flow-matching training, and the loss weight of each draw.

σ ∈ (0, 1] is the noise fraction: ``x_σ = (1 − σ)·x0 + σ·ε``; the transformer is given
``t = 1 − σ`` (engine notes §5). Modes (engine notes §13 C):

* ``weighted`` — ai-toolkit's Z-Image Turbo default: σ uniform over the 1000-step table
  ``linspace(1000, 1, 1000) / 1000`` (no shift), loss weighted by a smooth bell that favours
  high noise (our own curve of the documented shape: ≈0.45 at σ→0, 0.72 at 0.25, 0.93 at 0.5, a
  1.5 peak near 0.875, 0.9 at 1; normalised to mean 1 over the table).
* ``shift`` — σ = sigmoid(N(0, 1)) then σ ← sσ / (1 + (s − 1)σ); weight 1 (musubi s = 2,
  SimpleTuner s = 3).
* ``logit_normal`` — σ = sigmoid(N(0, 1)); weight 1 (OneTrainer, diffusion-pipe).
* ``uniform_shift`` — uniform over the shift-s 1000-step table (diffusers' example); weight 1.
* ``turbo_anchors`` — σ from the Turbo sampler's N-step shift-s ladder, stratified (every block
  of N draws visits each rung once, in a seeded order), ± jitter; weight 1.

Every draw is a pure function of ``(seed, index)`` (the global sample counter), so resumed runs
draw exactly what the uninterrupted run would have. Torch-free.
"""

from __future__ import annotations

import math
import random
from functools import lru_cache

from zitdesk.train.dataset import derive_seed

TABLE_SIZE = 1000
SIGMA_MIN = 1e-3

# Control points of the "weighted" curve (σ, weight before normalisation).
_WEIGHT_POINTS = ((0.0, 0.45), (0.25, 0.72), (0.5, 0.93), (0.7, 1.25), (0.875, 1.5), (1.0, 0.9))


def shift_sigma(sigma: float, shift: float) -> float:
    return shift * sigma / (1.0 + (shift - 1.0) * sigma)


def turbo_ladder(steps: int = 8, shift: float = 3.0) -> tuple[float, ...]:
    """The N noise levels the Turbo sampler visits (σ > 0): ``linspace(1, 1/N, N)`` shifted."""
    return tuple(
        shift_sigma(1.0 - i * (1.0 - 1.0 / steps) / max(steps - 1, 1), shift) for i in range(steps)
    )


def _pchip(xs: tuple[float, ...], ys: tuple[float, ...], x: float) -> float:
    """Monotone cubic (Fritsch–Carlson) interpolation: smooth, no overshoot between points."""
    n = len(xs)
    h = [xs[i + 1] - xs[i] for i in range(n - 1)]
    d = [(ys[i + 1] - ys[i]) / h[i] for i in range(n - 1)]
    m = [0.0] * n
    m[0], m[-1] = d[0], d[-1]
    for i in range(1, n - 1):
        if d[i - 1] * d[i] <= 0:
            m[i] = 0.0
        else:
            w1, w2 = 2 * h[i] + h[i - 1], h[i] + 2 * h[i - 1]
            m[i] = (w1 + w2) / (w1 / d[i - 1] + w2 / d[i])
    i = min(max(0, next((k for k in range(n - 1) if x <= xs[k + 1]), n - 2)), n - 2)
    t = (x - xs[i]) / h[i]
    h00, h10 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t
    h01, h11 = -2 * t**3 + 3 * t**2, t**3 - t**2
    return h00 * ys[i] + h10 * h[i] * m[i] + h01 * ys[i + 1] + h11 * h[i] * m[i + 1]


@lru_cache(maxsize=1)
def weighted_table() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(sigmas, weights)`` of the ``weighted`` mode: 1000 levels, weights with mean 1."""
    xs = tuple(p[0] for p in _WEIGHT_POINTS)
    ys = tuple(p[1] for p in _WEIGHT_POINTS)
    sigmas = tuple((TABLE_SIZE - i) / TABLE_SIZE for i in range(TABLE_SIZE))  # 1.0 … 0.001
    raw = [_pchip(xs, ys, s) for s in sigmas]
    mean = sum(raw) / len(raw)
    return sigmas, tuple(w / mean for w in raw)


def weight_at(sigma: float) -> float:
    """The ``weighted`` mode's loss weight at ``sigma`` (normalised like the table)."""
    _sigmas, weights = weighted_table()
    i = min(TABLE_SIZE - 1, max(0, round((1.0 - sigma) * TABLE_SIZE)))
    return weights[i]


def sample_sigmas(
    mode: str,
    n: int,
    seed: int,
    index: int,
    shift: float = 3.0,
    anchor_steps: int = 8,
    jitter: float = 0.02,
) -> tuple[list[float], list[float]]:
    """``n`` noise levels and loss weights for the draws ``index·n … index·n + n − 1``."""
    rng = random.Random(derive_seed("sigma", seed, index))
    sig: list[float] = []
    wts: list[float] = []
    for b in range(n):
        if mode == "weighted":
            table, weights = weighted_table()
            i = rng.randrange(TABLE_SIZE)
            s, w = table[i], weights[i]
        elif mode in ("shift", "logit_normal"):
            z = rng.gauss(0.0, 1.0)
            s = 1.0 / (1.0 + math.exp(-z))
            if mode == "shift":
                s = shift_sigma(s, shift)
            w = 1.0
        elif mode == "uniform_shift":
            i = rng.randrange(TABLE_SIZE)
            s, w = shift_sigma((TABLE_SIZE - i) / TABLE_SIZE, shift), 1.0
        elif mode == "turbo_anchors":
            ladder = turbo_ladder(anchor_steps, shift)
            k = index * n + b
            block, pos = divmod(k, len(ladder))
            perm = list(range(len(ladder)))
            random.Random(derive_seed("anchors", seed, block)).shuffle(perm)
            s = ladder[perm[pos]] + rng.uniform(-jitter, jitter)
            w = 1.0
        else:
            raise ValueError(f"unknown timestep mode {mode!r}")
        sig.append(min(1.0, max(SIGMA_MIN, s)))
        wts.append(w)
    return sig, wts
