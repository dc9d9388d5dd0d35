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
    from zitdesk.engine import generate

    lora = tmp_path / "a.safetensors"
    lora.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + b"w" * 100)
    idx = LibraryIndex(cache_path=tmp_path / "index.json")
    assert (
        idx.hashes is hashing.shared_cache() is hashing.shared_cache(hashing.default_cache_path())
    )
    sha = generate._file_sha256(str(lora))
    assert generate._HASHES is idx.hashes  # generation wrote into the library's object
    st = lora.stat()
    assert idx.hashes.get(str(lora), st.st_size, st.st_mtime_ns).sha256 == sha
    assert hashing.shared_cache(tmp_path / "other.json") is not idx.hashes
