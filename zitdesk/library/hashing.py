"""Moved to :mod:`zitdesk.hashing` (the one hashing module); re-exported for the library code
and the UI that import it from here."""

from zitdesk.hashing import (  # noqa: F401
    CACHE_VERSION,
    CHUNK,
    FileHashes,
    HashCache,
    HashCancelled,
    autov2,
    autov3,
    default_cache_path,
    hash_file,
    sha256_file,
    shared_cache,
)
