"""Variety for Turbo: seeded noise on the prompt embedding.

Turbo's distillation makes different seeds of one prompt look alike. Adding a little noise to
the prompt's embedding, drawn from the image's own seed, moves each seed to a slightly different
reading of the prompt (InvokeAI and SwarmUI offer the same idea as a "seed variance" control).

The noise for token ``i`` is ``strength · σ_i · n_i`` where ``σ_i`` is a robust spread of that
token's embedding (1.4826 × the median absolute deviation: Qwen3's hidden states have a few
channels with huge values, which would make a plain standard deviation swamp the rest) and ``n_i ~ N(0, I)`` comes from a CPU generator seeded by the image seed
(mixed with a constant, so it is not the same stream as the starting latents). Only the positive
prompt is changed; with the seed and the strength from a PNG the image is made again exactly.
"""

from __future__ import annotations

from typing import Any

_MIX = 0x5EED_A11E  # separates the variety stream from the latent noise of the same seed


def variety_seed(seed: int) -> int:
    """The generator seed of the variety noise for image seed ``seed``."""
    return (int(seed) ^ _MIX) % (2**63)


def vary_embeddings(embeds: Any, strength: float, seed: int) -> Any:
    """``embeds`` (a tensor ``(L, D)`` / ``(B, L, D)`` or a list of ``(L_i, D)`` tensors, as
    ``ZImagePipeline.encode_prompt`` returns) with seeded noise of relative ``strength``.
    ``strength <= 0`` returns ``embeds`` itself. Shapes, dtypes and devices are kept."""
    if not strength or strength <= 0:
        return embeds
    import torch

    gen = torch.Generator("cpu").manual_seed(variety_seed(seed))

    def one(t: Any) -> Any:
        base = t.detach().float().cpu()
        sigma = _robust_scale(base)
        noise = torch.randn(base.shape, generator=gen, dtype=torch.float32)
        return (base + float(strength) * sigma * noise).to(device=t.device, dtype=t.dtype)

    if isinstance(embeds, (list, tuple)):
        return type(embeds)(one(t) for t in embeds)
    return one(embeds)


def _robust_scale(x: Any) -> Any:
    """Per-token spread ``(…, L, 1)``: 1.4826 · MAD over the channels (= σ for Gaussian values),
    never 0."""
    if x.shape[-1] < 2:
        return x.abs() + 1.0
    med = x.median(dim=-1, keepdim=True).values
    mad = (x - med).abs().median(dim=-1, keepdim=True).values
    return (1.4826 * mad).clamp_min(1e-6)
