"""Cheap latent-to-RGB previews.

Instead of a hard-coded table, the projection is fitted once per VAE: a few synthetic colour
images are encoded, and a least-squares linear map from the 16 normalised latent channels (plus a
bias) to the 8×8-averaged RGB is solved. It works for any VAE (the real Flux VAE, the tiny test
one) and costs one small encode when a model loads. A preview is then one matrix product.
"""

from __future__ import annotations

import numpy as np


def _synthetic_images(n: int = 12, size: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    imgs = np.empty((n, size, size, 3), dtype=np.float32)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    for i in range(n):
        a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        t = (xx if i % 2 else yy)[..., None]
        img = a * (1 - t) + b * t
        # blocks of flat colour so the fit sees saturated, uniform regions too
        for _ in range(3):
            x0, y0 = rng.integers(0, size - 16, 2)
            img[y0 : y0 + 16, x0 : x0 + 16] = rng.uniform(0, 1, 3)
        imgs[i] = img
    return imgs


def fit_latent_rgb(vae, device: str = "cpu") -> np.ndarray:
    """Return a (17, 3) matrix mapping normalised latents [c0..c15, 1] to RGB in [0, 1]."""
    import torch

    imgs = _synthetic_images()
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2) * 2 - 1
    dtype = next(vae.parameters()).dtype
    with torch.no_grad():
        z = vae.encode(x.to(device=device, dtype=dtype)).latent_dist.mode().float().cpu()
    scale = float(getattr(vae.config, "scaling_factor", 1.0) or 1.0)
    shift = float(getattr(vae.config, "shift_factor", 0.0) or 0.0)
    z = (z - shift) * scale
    b, c, h, w = z.shape
    f = imgs.shape[1] // h
    target = imgs.reshape(b, h, f, w, f, 3).mean(axis=(2, 4))  # (B, h, w, 3)
    feats = z.permute(0, 2, 3, 1).reshape(-1, c).numpy()
    feats = np.concatenate([feats, np.ones((feats.shape[0], 1), np.float32)], axis=1)
    coef, *_ = np.linalg.lstsq(feats, target.reshape(-1, 3), rcond=None)
    return coef.astype(np.float32)


def latents_to_rgb(latents, coef: np.ndarray) -> np.ndarray:
    """(1, 16, h, w) or (16, h, w) normalised latents → uint8 (h, w, 3) preview."""

    z = latents.detach().float().cpu()
    if z.ndim == 5:  # (B, C, F, H, W)
        z = z[:, :, 0]
    if z.ndim == 4:
        z = z[0]
    c, h, w = z.shape
    feats = z.permute(1, 2, 0).reshape(-1, c).numpy()
    rgb = feats @ coef[:c] + coef[c]
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8).reshape(h, w, 3)


def preview_quality(coef: np.ndarray, vae, device: str = "cpu") -> tuple[float, float]:
    """(projection error, error of predicting the mean colour) on fresh synthetic images, 0–1 MAE."""
    import torch

    imgs = _synthetic_images(4, seed=1)
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2) * 2 - 1
    with torch.no_grad():
        z = (
            vae.encode(x.to(device=device, dtype=next(vae.parameters()).dtype))
            .latent_dist.mode()
            .float()
            .cpu()
        )
    z = (z - vae.config.shift_factor) * vae.config.scaling_factor
    err, base = [], []
    for i in range(len(imgs)):
        pred = latents_to_rgb(z[i : i + 1], coef).astype(np.float32) / 255
        h = pred.shape[0]
        f = imgs.shape[1] // h
        tgt = imgs[i].reshape(h, f, h, f, 3).mean(axis=(1, 3))
        err.append(np.abs(pred - tgt).mean())
        base.append(np.abs(tgt - tgt.mean(axis=(0, 1))).mean())
    return float(np.mean(err)), float(np.mean(base))
