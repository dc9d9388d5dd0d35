"""One hashing module (zitdesk.hashing) and one HashCache object per cache file (issue 13)."""

from __future__ import annotations

import hashlib
import os

from zitdesk import hashing
from zitdesk.library.index import LibraryIndex


def test_sha256_file_and_short_hashes(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(os.urandom(3 * hashing.CHUNK + 17))
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    assert hashing.sha256_file(p) == digest == hashing.hash_file(p).sha256
    assert hashing.autov2(digest) == digest[:10] == hashing.hash_file(p).autov2


def test_library_and_generation_share_one_cache_object(tmp_path, monkeypatch):
    monkeypatch.setenv("ZITDESK_HOME", str(tmp_path / "home"))
    from zitdesk.engine import output

    lora = tmp_path / "a.safetensors"
    lora.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + b"w" * 100)
    idx = LibraryIndex(cache_path=tmp_path / "index.json")
    assert (
        idx.hashes is hashing.shared_cache() is hashing.shared_cache(hashing.default_cache_path())
    )
    sha = output._file_sha256(str(lora))
    assert output._HASHES is idx.hashes  # generation wrote into the library's object
    st = lora.stat()
    assert idx.hashes.get(str(lora), st.st_size, st.st_mtime_ns).sha256 == sha
    assert hashing.shared_cache(tmp_path / "other.json") is not idx.hashes


def test_paths_with_finds_unchanged_files_by_hash_or_prefix(tmp_path):
    cache = hashing.HashCache(None)
    a, b, c = (tmp_path / n for n in ("a.safetensors", "b.safetensors", "c.safetensors"))
    a.write_bytes(b"same weights")
    b.write_bytes(b"same weights")
    c.write_bytes(b"other")
    for p in (a, b, c):
        st = p.stat()
        cache.compute(str(p), st.st_size, st.st_mtime_ns)
    sha = hashlib.sha256(b"same weights").hexdigest()
    assert cache.paths_with(sha) == [str(a), str(b)]
    assert cache.paths_with(sha[:10].upper()) == [str(a), str(b)]  # AutoV2, any case
    assert cache.paths_with("") == []
    b.write_bytes(b"edited since")  # changed on disk: its cached hash no longer counts
    c.unlink()
    assert cache.paths_with(sha) == [str(a)]
    assert cache.paths_with(hashlib.sha256(b"other").hexdigest()) == []


def test_model_hash_is_kept_in_the_shared_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZITDESK_HOME", str(tmp_path / "home"))
    from types import SimpleNamespace

    from zitdesk.engine import generate
    from zitdesk.models.validate import DIT

    dit = tmp_path / "dit.safetensors"
    dit.write_bytes(b"dit weights")
    source = SimpleNamespace(files={DIT: str(dit)}, root=str(tmp_path))
    sha = hashlib.sha256(b"dit weights").hexdigest()
    assert generate.model_hash(source, wait=True) == sha[:10]
    st = dit.stat()
    assert hashing.shared_cache().get(str(dit), st.st_size, st.st_mtime_ns).sha256 == sha
    from zitdesk.engine import output

    assert not hasattr(generate, "_MODEL_HASHES") and not hasattr(
        output, "_MODEL_HASHES"
    )  # no second store of model hashes
    assert generate.model_hash(source) == sha[:10]  # from the cache at once, no thread
