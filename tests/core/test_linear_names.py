"""The torch-free module-name list used for coverage equals the real transformer's Linear names."""

import pytest
import torch
from diffusers import ZImageTransformer2DModel

from zitdesk.lora.apply import transformer_linear_names
from zitdesk.models.tiny import TINY_TRANSFORMER
from zitdesk.models.zimage_tree import full_size_linear_shapes


@pytest.mark.parametrize("layers,refiners", [(2, 1), (3, 2)])
def test_names_match_the_module_tree(layers, refiners):
    cfg = dict(TINY_TRANSFORMER, n_layers=layers, n_refiner_layers=refiners)
    with torch.device("meta"):
        tr = ZImageTransformer2DModel(**cfg)
    assert transformer_linear_names(tr) == set(full_size_linear_shapes(layers, refiners))


def test_full_size_shapes_match_the_real_architecture():
    import json

    from zitdesk.paths import skeleton_dir

    cfg = json.loads((skeleton_dir() / "transformer" / "config.json").read_text())
    with torch.device("meta"):
        tr = ZImageTransformer2DModel(**{k: v for k, v in cfg.items() if not k.startswith("_")})
    real = {
        n: tuple(m.weight.shape) for n, m in tr.named_modules() if isinstance(m, torch.nn.Linear)
    }
    assert real == full_size_linear_shapes()
