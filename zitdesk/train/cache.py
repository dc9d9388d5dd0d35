"""Latent and text-embedding caches for training, keyed by content hashes.

Layout under the cache root (safetensors files written atomically; any file that exists is whole)::

    latents/<k[:2]>/<k>.safetensors   "latent" (16, H/8, W/8) fp32 = 0.3611 · (z − 0.1159)
    text/<k[:2]>/<k>.safetensors      "embeds" (L, hidden) in the text encoder's dtype
    hashes.json                       image sha256 by (path, size, mtime) so images hash once

* A **latent key** hashes the image *bytes*, the bucket, the latent mode and a fingerprint of the
  VAE (config + a few weight tensors), so replacing an image or the VAE re-encodes, renaming or
  touching a file does not.
* A **text key** hashes the final caption text (trigger applied), the token budget and a
  fingerprint of the text encoder and tokenizer, so editing one caption re-encodes that caption
  only. The empty caption (caption dropout) and the sample prompts are cached the same way.

Encoding uses the pipeline's own ``encode_prompt`` (engine notes §4, identical to generation)
and ``vae.encode(...).latent_dist.mode()`` (or ``.sample`` with a key-derived seed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zitdesk.engine.requests import TOKEN_BUDGET  # the one prompt-token budget
from zitdesk.hashing import sha256_file as sha256_file  # the one file hasher
from zitdesk.io import atomic_save_tensors, atomic_write
from zitdesk.train.dataset import DatasetItem, Entry, derive_seed, load_bucket_image

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def module_fingerprint(module: Any, names: Iterable[str], extra: object = None) -> str:
    """sha256 of a module's config and a few named tensors (cheap, content-based identity)."""
    h = hashlib.sha256()
    cfg = getattr(module, "config", None)
    try:
        cfg_d = dict(cfg) if cfg is not None and not hasattr(cfg, "to_dict") else cfg.to_dict()
    except Exception:  # noqa: BLE001 - an odd config only weakens the key a little
        cfg_d = {}
    cfg_d = {
        k: v
        for k, v in (cfg_d or {}).items()
        if not str(k).startswith("_") and k not in ("torch_dtype", "dtype", "transformers_version")
    }
    h.update(json.dumps(cfg_d, sort_keys=True, default=str).encode())
    h.update(repr(extra).encode())
    state = dict(module.named_parameters())
    for name in names:
        t = state.get(name)
        if t is None:
            continue
        flat = t.detach().reshape(-1)[:65536].float().cpu().contiguous()
        h.update(name.encode())
        h.update(flat.numpy().tobytes())
    return h.hexdigest()


def vae_fingerprint(vae: Any) -> str:
    return module_fingerprint(
        vae,
        (
            "encoder.conv_in.weight",
            "encoder.conv_out.weight",
            "encoder.mid_block.attentions.0.to_q.weight",
        ),
    )


def text_fingerprint(text_encoder: Any, tokenizer: Any) -> str:
    names = [n for n, _ in text_encoder.named_parameters()]
    picks = [n for n in names if n.endswith("embed_tokens.weight")] + names[-6:]
    template = getattr(tokenizer, "chat_template", "") or ""
    return module_fingerprint(text_encoder, picks, extra=(len(tokenizer), template))


@dataclass
class CacheStats:
    latents_hit: int = 0
    latents_new: int = 0
    texts_hit: int = 0
    texts_new: int = 0


@dataclass
class CacheIndex:
    """Keys of one run's cached tensors: per entry, per item caption, empty caption, samples."""

    root: Path
    latent_keys: list[str]
    caption_keys: list[str]  # per dataset item (trigger applied)
    empty_key: str
    prompt_keys: dict[str, str] = field(default_factory=dict)  # sample prompt → key
    stats: CacheStats = field(default_factory=CacheStats)

    def latent(self, entry_index: int):
        return load_tensor(latent_path(self.root, self.latent_keys[entry_index]), "latent")

    def text(self, key: str):
        return load_tensor(text_path(self.root, key), "embeds")


def latent_path(root: Path, key: str) -> Path:
    return root / "latents" / key[:2] / f"{key}.safetensors"


def text_path(root: Path, key: str) -> Path:
    return root / "text" / key[:2] / f"{key}.safetensors"


def load_tensor(path: Path, name: str):
    from safetensors.torch import load_file

    return load_file(str(path))[name]


def _valid(path: Path, name: str) -> bool:
    if not path.is_file():
        return False
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            return name in fh.keys()  # noqa: SIM118 - safe_open has no __contains__
    except Exception:  # noqa: BLE001 - damaged by something else: re-encode
        log.warning("cache file %s is unreadable; re-encoding", path)
        return False


def _save_tensor(path: Path, name: str, tensor: Any, meta: dict[str, str]) -> None:
    data = {name: tensor.detach().cpu().contiguous()}
    atomic_save_tensors(path, data, metadata=meta)


class ImageHashes:
    """sha256 of image files, remembered by (path, size, mtime_ns) in ``hashes.json``."""

    def __init__(self, root: Path) -> None:
        self.path = root / "hashes.json"
        try:
            self._data: dict[str, list] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self._data = {}
        self._dirty = False

    def get(self, image: Path) -> str:
        st = image.stat()
        key = str(image.resolve())
        rec = self._data.get(key)
        if rec and rec[0] == st.st_size and rec[1] == st.st_mtime_ns:
            return str(rec[2])
        digest = sha256_file(image)
        self._data[key] = [st.st_size, st.st_mtime_ns, digest]
        self._dirty = True
        return digest

    def flush(self) -> None:
        if self._dirty:
            atomic_write(self.path, json.dumps(self._data))
            self._dirty = False


def image_tensor(path: Path, bucket: tuple[int, int]):
    """(1, 3, H, W) float32 in [-1, 1] from the bucketed image."""
    import numpy as np
    import torch

    img = load_bucket_image(path, bucket)
    arr = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def build_caches(
    pipe: Any,
    root: Path,
    items: Sequence[DatasetItem],
    entries: Sequence[Entry],
    captions: Sequence[str],
    prompts: Iterable[str],
    device: str,
    latent_mode: str = "mode",
    progress: Callable[[str, int, int], None] | None = None,
    check_cancel: Callable[[], None] | None = None,
) -> CacheIndex:
    """Make sure every latent and text embedding of the run is cached; encode only what is missing.

    ``captions`` are the final per-item captions (trigger applied). ``progress(what, done, total)``
    is called as work proceeds; ``check_cancel()`` may raise to stop between files.
    """
    import torch

    root.mkdir(parents=True, exist_ok=True)
    stats = CacheStats()
    hashes = ImageHashes(root)
    vae = pipe.vae
    vfp = vae_fingerprint(vae)
    latent_keys = []
    for e in entries:
        it = items[e.item]
        latent_keys.append(
            _digest("latent", CACHE_FORMAT, hashes.get(it.image), e.bucket, latent_mode, vfp)
        )
    hashes.flush()
    todo = [(i, k) for i, k in enumerate(latent_keys) if not _valid(latent_path(root, k), "latent")]
    stats.latents_hit = len(latent_keys) - len(todo)
    if todo:
        vae.to(device)
        scale = float(vae.config.scaling_factor)
        shift = float(vae.config.shift_factor or 0.0)
        done_keys: set[str] = set()
        for n, (i, key) in enumerate(todo):
            if check_cancel:
                check_cancel()
            if key in done_keys:
                continue
            e = entries[i]
            x = image_tensor(items[e.item].image, e.bucket).to(device=device, dtype=vae.dtype)
            with torch.no_grad():
                dist = vae.encode(x).latent_dist
                if latent_mode == "sample":
                    g = torch.Generator(device="cpu").manual_seed(derive_seed("latent", key))
                    noise = torch.randn(dist.mean.shape, generator=g, dtype=torch.float32)
                    z = dist.mean.float() + dist.std.float() * noise.to(dist.mean.device)
                else:
                    z = dist.mode().float()
            z = ((z - shift) * scale)[0]
            _save_tensor(
                latent_path(root, key),
                "latent",
                z,
                {
                    "format": "pt",
                    "kind": "zitdesk-latent",
                    "image": items[e.item].image.name,
                    "bucket": f"{e.bucket[0]}x{e.bucket[1]}",
                    "mode": latent_mode,
                },
            )
            done_keys.add(key)
            stats.latents_new += 1
            if progress:
                progress("latents", n + 1, len(todo))

    te, tok = pipe.text_encoder, pipe.tokenizer
    tfp = text_fingerprint(te, tok) if te is not None else ""

    def tkey(text: str) -> str:
        return _digest("text", CACHE_FORMAT, text, TOKEN_BUDGET, tfp)

    caption_keys = [tkey(c) for c in captions]
    empty_key = tkey("")
    prompt_keys = {p: tkey(p) for p in prompts}
    wanted: dict[str, str] = {}
    pairs = [*zip(captions, caption_keys, strict=True), ("", empty_key), *prompt_keys.items()]
    for text, key in pairs:
        wanted.setdefault(key, text)
    missing = {k: t for k, t in wanted.items() if not _valid(text_path(root, k), "embeds")}
    stats.texts_hit = len(wanted) - len(missing)
    if missing:
        if te is None:
            raise RuntimeError("text encoder already unloaded but captions are not cached")
        how = place_text_encoder(te, device)
        if progress:
            progress(f"captions (text encoder {how})", 0, len(missing))
        for n, (key, text) in enumerate(sorted(missing.items())):
            if check_cancel:
                check_cancel()
            with torch.no_grad():
                pos, _ = pipe.encode_prompt(
                    prompt=text,
                    device=device,
                    do_classifier_free_guidance=False,
                    max_sequence_length=TOKEN_BUDGET,
                )
            _save_tensor(
                text_path(root, key),
                "embeds",
                pos[0],
                {"format": "pt", "kind": "zitdesk-text", "text": text[:2000]},
            )
            stats.texts_new += 1
            if progress:
                progress("captions", n + 1, len(missing))
    log.info("cache: %s", stats)
    return CacheIndex(root, latent_keys, caption_keys, empty_key, prompt_keys, stats)


def place_text_encoder(te: Any, device: str) -> str:
    """Put the text encoder where it can run: the GPU if it fits (with 1 GiB to spare), else
    streamed block by block from RAM (8 GB Qwen3 on an 8–12 GB card). Returns how."""
    if not device.startswith("cuda"):
        te.to(device)
        return "on the CPU"
    import torch

    need = sum(p.numel() * p.element_size() for p in te.parameters())
    free, _ = torch.cuda.mem_get_info(torch.device(device))
    if free > need * 1.15 + (1 << 30):
        te.to(device)
        return "on the GPU"
    from diffusers.hooks import apply_group_offloading

    te.to("cpu")
    apply_group_offloading(
        te,
        onload_device=torch.device(device),
        offload_device=torch.device("cpu"),
        offload_type="block_level",
        num_blocks_per_group=4,
        use_stream=True,
    )
    return "streamed from RAM"


def cache_size_bytes(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(dirpath, f))
    return total
