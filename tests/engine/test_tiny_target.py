"""make-tiny-model never empties or overwrites a user's folder (it used to rmtree it)."""

from __future__ import annotations

import pytest

from zitdesk.errors import RequestError
from zitdesk.models.tiny import TINY_MARKER, save_tiny_model


@pytest.mark.parametrize("layout", ["diffusers", "comfy"])
def test_refuses_a_folder_with_other_files(tmp_path, tiny_components, layout):
    target = tmp_path / "models"
    target.mkdir()
    precious = target / "z_image_turbo_bf16.safetensors"  # a real model file of the same name
    precious.write_bytes(b"twelve gigabytes of weights")
    with pytest.raises(RequestError, match="not empty"):
        save_tiny_model(target, layout, components=tiny_components)
    assert precious.read_bytes() == b"twelve gigabytes of weights"
    assert sorted(p.name for p in target.iterdir()) == [precious.name]


@pytest.mark.parametrize("layout", ["diffusers", "comfy"])
def test_replaces_an_earlier_tiny_model(tmp_path, tiny_components, layout):
    target = save_tiny_model(tmp_path / "tiny", layout, components=tiny_components)
    assert (target / TINY_MARKER).is_file()
    again = save_tiny_model(target, layout, components=tiny_components)
    assert again == target and (target / TINY_MARKER).is_file()
