"""Fixtures for the trainer tests: a tiny model sized for learning, solid-colour datasets.

The shared tiny model (width 32) projects a 32-wide residual stream onto 64 output values per
patch, so with its final layer frozen a LoRA cannot fit the flow target well (loss floor ≈ 0.9).
The trainer tests use the same recipe at width 64 (still ~0.6 M parameters, CPU-fast).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from trainhelp import make_dataset

from zitdesk.offline import enforce_offline

enforce_offline()


@pytest.fixture(scope="session")
def train_model(tmp_path_factory) -> Path:
    import torch
    from diffusers import ZImageTransformer2DModel

    from zitdesk.models.tiny import TINY_TRANSFORMER, make_tiny_components, save_tiny_model

    comps = make_tiny_components(seed=0)
    torch.manual_seed(5)
    tr = ZImageTransformer2DModel(**{**TINY_TRANSFORMER, "dim": 64, "axes_dims": [8, 12, 12]})
    with torch.no_grad():
        tr.x_pad_token.normal_(0.0, 0.5)
        tr.cap_pad_token.normal_(0.0, 0.5)
    comps["transformer"] = tr
    return save_tiny_model(
        tmp_path_factory.mktemp("train-model") / "tiny64", "diffusers", components=comps
    )


@pytest.fixture
def dataset(tmp_path) -> Path:
    return make_dataset(tmp_path / "data")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny matmuls on a shared 2-core box run ~20× faster on one thread (no OpenMP spinning)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def varied(tmp_path):
    """Five solid-colour 64² images, each with its own caption (a dataset a LoRA can tell apart)."""
    from PIL import Image

    data = make_dataset(tmp_path / "data", n=5)
    for i, c in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200), (90, 90, 90), (250, 250, 0)]):
        Image.new("RGB", (64, 64), c).save(data / f"img{i}.png")
        (data / f"img{i}.txt").write_text(f"[trigger] number {i}")
    return data
