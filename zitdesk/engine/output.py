"""Where generated images go and what they are stamped with: file names, the PNG writer call,
and the hashes A1111 readers show (the DiT's "Model hash", each LoRA's sha256), all through the
one on-disk hash cache (:func:`zitdesk.hashing.shared_cache`).

Used by generation (:mod:`zitdesk.engine.generate`) and by training samples
(:mod:`zitdesk.train.render`); no torch here.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path

from zitdesk import __version__
from zitdesk.engine.requests import GenerateRequest
from zitdesk.io import default_output_dir


def output_name(out_dir: Path, seed: int, index: int) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"zit-{stamp}-{seed}-{index}.png"
    n = 1
    while path.exists():  # never overwrite an earlier image
        path = out_dir / f"zit-{stamp}-{seed}-{index}-{n}.png"
        n += 1
    return path


def save_image(
    image,
    request: GenerateRequest,
    seed: int,
    index: int,
    model_label: str,
    model_hash: str = "",
    extra: dict | None = None,
) -> Path:
    """Write one generated image with its parameters (A1111 text + zitdesk JSON) → its path.

    What goes into the file names files and hashes only (``ImageMeta.from_request``); with
    ``request.write_metadata`` off the PNG carries no parameters at all."""
    from zitdesk.imagemeta import ImageMeta, write_png

    out_dir = Path(request.output_dir) if request.output_dir else default_output_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = output_name(out_dir, seed, index)
    meta = None
    if request.write_metadata:
        meta = ImageMeta.from_request(
            request,
            seed=seed,
            model_name=model_label,
            model_hash=model_hash,
            lora_hashes={lo.path: _file_sha256(lo.path) for lo in request.loras if lo.enabled},
            version=f"zitdesk {__version__}",
            extra=extra,
        )
    return write_png(image, path, meta)


def dit_file(source) -> Path | None:
    """The one file holding the DiT weights (ComfyUI single file, or an unsharded diffusers
    ``transformer/``); None for sharded folders, which have no single-file hash to show."""
    if source is None:
        return None
    from zitdesk.models.validate import DIT

    if getattr(source, "files", None) and source.files.get(DIT):
        return Path(source.files[DIT])
    single = Path(source.root) / "transformer" / "diffusion_pytorch_model.safetensors"
    return single if single.is_file() else None


_MODEL_HASHING: set[tuple[str, int, int]] = set()  # DiT files being hashed in the background
_MODEL_HASH_LOCK = threading.Lock()


def model_hash(source, wait: bool = False) -> str:
    """A1111's "Model hash" (AutoV2: the first 10 hex digits of the DiT file's SHA-256).

    The hash comes from the one on-disk hash cache (:func:`zitdesk.hashing.shared_cache`), so a
    file is hashed once, ever; the first time it runs on a background thread (a 12 GB file takes
    a while) and images saved before it is done carry no model hash. ``wait=True`` computes it
    now (tests, CLI)."""
    from zitdesk.hashing import shared_cache

    path = dit_file(source)
    if path is None:
        return ""
    try:
        st = path.stat()
    except OSError:
        return ""
    key = (str(path), st.st_size, st.st_mtime_ns)
    cached = shared_cache().get(*key)
    if cached is not None:
        return cached.sha256[:10]
    if wait:
        return _file_sha256(str(path))[:10]
    with _MODEL_HASH_LOCK:
        if key in _MODEL_HASHING:
            return ""
        _MODEL_HASHING.add(key)

    def work() -> None:
        try:
            _file_sha256(str(path))
        finally:
            with _MODEL_HASH_LOCK:
                _MODEL_HASHING.discard(key)

    threading.Thread(target=work, name="zitdesk-model-hash", daemon=True).start()
    return ""


_HASHES = None


def _file_sha256(path: str) -> str:
    """sha256 of a LoRA file for the PNG's "Lora hashes", through the library's hash cache
    (:func:`zitdesk.hashing.shared_cache`: the same object the library uses, keyed by path +
    size + mtime and kept on disk, so a stack is hashed once, ever)."""
    global _HASHES
    from zitdesk.hashing import shared_cache

    try:
        st = os.stat(path)
        _HASHES = shared_cache()  # kept for tests that look up the cache file's path
        sha = _HASHES.compute(str(path), st.st_size, st.st_mtime_ns).sha256
        _HASHES.save()
        return sha
    except OSError:
        return ""
