"""Latent / caption caches: encoded once, reused, invalidated by content (not by names or times)."""

from __future__ import annotations

import os

import torch
from PIL import Image
from trainhelp import make_dataset

from zitdesk.train.cache import build_caches
from zitdesk.train.dataset import apply_trigger, plan_entries, scan_folder


def _build(pipe, root, data, prompts=("a [trigger] sample",)):
    scan = scan_folder(data)
    entries = plan_entries(scan.items, [64])
    caps = [apply_trigger(it.caption, "zxq") for it in scan.items]
    return (
        build_caches(
            pipe, root, scan.items, entries, caps, [apply_trigger(p, "zxq") for p in prompts], "cpu"
        ),
        scan,
        entries,
    )


def test_cache_reuse_and_invalidation(tiny_pipe, tmp_path):
    data = make_dataset(tmp_path / "data", n=3)
    for i, color in enumerate([(200, 0, 0), (0, 0, 200), (90, 90, 90)]):
        Image.new("RGB", (64, 64), color).save(data / f"img{i}.png")
    (data / "img1.txt").write_text("a different caption")
    root = tmp_path / "cache"
    idx, _scan, _entries = _build(tiny_pipe, root, data)
    # identical images would share one latent (content keys); these three differ.
    # 3 latents; captions: "zxq, ..."×2 distinct + empty + 1 prompt = 4 texts
    assert (idx.stats.latents_new, idx.stats.texts_new) == (3, 4)

    again, _, _ = _build(tiny_pipe, root, data)
    assert (again.stats.latents_new, again.stats.texts_new) == (0, 0)
    assert again.latent_keys == idx.latent_keys and again.caption_keys == idx.caption_keys

    # touching a file (new mtime, same bytes) re-hashes but re-encodes nothing
    os.utime(data / "img0.png", (1, 1))
    touched, _, _ = _build(tiny_pipe, root, data)
    assert (touched.stats.latents_new, touched.stats.texts_new) == (0, 0)

    # one caption edited → exactly that caption re-encoded
    (data / "img2.txt").write_text("a photo of [trigger], edited")
    edited, _, _ = _build(tiny_pipe, root, data)
    assert (edited.stats.latents_new, edited.stats.texts_new) == (0, 1)
    assert edited.caption_keys[2] != idx.caption_keys[2]
    assert edited.caption_keys[:2] == idx.caption_keys[:2]

    # one image replaced → exactly that latent re-encoded
    Image.new("RGB", (64, 64), (10, 200, 10)).save(data / "img0.png")
    swapped, _, _ = _build(tiny_pipe, root, data)
    assert (swapped.stats.latents_new, swapped.stats.texts_new) == (1, 0)
    assert swapped.latent_keys[1:] == idx.latent_keys[1:]


def test_cached_tensors_match_the_formulas(tiny_pipe, tmp_path):
    data = make_dataset(tmp_path / "data", n=1)
    idx, scan, _entries = _build(tiny_pipe, tmp_path / "cache", data)
    from zitdesk.train.cache import image_tensor

    vae = tiny_pipe.vae
    with torch.no_grad():
        z = vae.encode(image_tensor(scan.items[0].image, (64, 64))).latent_dist.mode()
    expected = (z - vae.config.shift_factor) * vae.config.scaling_factor
    lat = idx.latent(0)
    assert lat.shape == (16, 8, 8) and lat.dtype == torch.float32
    assert torch.allclose(lat, expected[0], atol=1e-6)
    with torch.no_grad():
        pos, _ = tiny_pipe.encode_prompt(
            "a photo of zxq",
            device="cpu",
            do_classifier_free_guidance=False,
            max_sequence_length=512,
        )
    assert torch.equal(idx.text(idx.caption_keys[0]), pos[0])
    empty = idx.text(idx.empty_key)
    assert empty.ndim == 2 and empty.shape[1] == tiny_pipe.text_encoder.config.hidden_size
