"""Read safetensors headers without loading tensors (and without torch).

A safetensors file is ``u64 little-endian header length`` + ``JSON header`` + raw tensor bytes.
Files from the internet can be truncated, renamed pickles or hostile, so every check here turns a
bad file into a :class:`~zitdesk.errors.FileFormatError` with a plain message instead of an
exception from deep inside a library.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from zitdesk.errors import FileFormatError, describe_os_error

#: safetensors' own limit (``MAX_HEADER_SIZE`` = 100,000,000 bytes, not 100 MiB): a header
#: between the two would be listed here and refused by the loader.
MAX_HEADER_BYTES = 100_000_000

#: Bits per element of every dtype the safetensors loader (0.8) knows; any other name is refused
#: by it, so it is refused here with a sentence first.
DTYPE_BITS = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
DTYPE_BYTES = {k: v / 8 if v % 8 else v // 8 for k, v in DTYPE_BITS.items()}

#: Limits no real tensor comes near; beyond them PyTorch overflows (a C++ ``c10`` error) or a
#: reader wastes memory on a fabricated header.
MAX_DIM = 2**40
MAX_NDIM = 16
MAX_JSON_DEPTH = 8  # a real header is 3 deep (root → tensor → shape)
_USIZE_MAX = 2**64 - 1

PICKLE_SUFFIXES = {".ckpt", ".pt", ".pth", ".bin", ".pkl"}


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass
class SafetensorsHeader:
    """The parsed header of one safetensors file."""

    path: Path
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str] = field(default_factory=dict)
    file_size: int = 0
    data_offset: int = 0

    def keys(self) -> list[str]:
        return list(self.tensors)

    def dtypes(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for info in self.tensors.values():
            counts[info.dtype] = counts.get(info.dtype, 0) + 1
        return counts


def _looks_like_pickle(head: bytes) -> bool:
    """Zip-based torch checkpoints start with PK; raw pickles with the PROTO opcode 0x80.

    A real safetensors header length can also start with byte 0x80 (a length ending in 128), so
    a file only counts as a pickle when the JSON header does not follow (its first byte is ``{``).
    """
    if head[8:9] == b"{":
        return False
    return head[:2] == b"PK" or head[:1] == b"\x80"


class _Refused(Exception):  # noqa: N818 - internal: becomes a FileFormatError with the name
    pass


def _no_constant(name: str) -> float:
    raise _Refused(f"has the non-number {name} in its header")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in pairs:
        if k in out:
            raise _Refused(f"names the entry {k[:80]!r} twice in its header")
        out[k] = v
    return out


def _depth(obj: object, limit: int) -> int:
    """Nesting depth of ``obj`` (stops counting at ``limit + 1``)."""
    if limit < 0:
        return 1
    if isinstance(obj, dict):
        return 1 + max((_depth(v, limit - 1) for v in obj.values()), default=0)
    if isinstance(obj, list):
        return 1 + max((_depth(v, limit - 1) for v in obj), default=0)
    return 0


def _whole(v: object) -> bool:
    return type(v) is int and 0 <= v <= _USIZE_MAX


def parse_header_json(raw: bytes) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Validate the JSON part of a header exactly as strictly as the safetensors loader does.

    Returns ``(tensors, metadata)``; raises ``_Refused`` with the end of a sentence.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused("has a header that is not UTF-8 text") from None
    try:
        doc = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except _Refused:
        raise
    except RecursionError:
        raise _Refused("has a header nested too deeply to be real") from None
    except ValueError:  # JSONDecodeError, or an integer with thousands of digits
        raise _Refused("has a header that is not JSON") from None
    if not isinstance(doc, dict):
        raise _Refused("has a header that is not a JSON object")
    if _depth(doc, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise _Refused("has a header nested too deeply to be real")
    raw_meta = doc.pop("__metadata__", None)
    metadata: dict[str, str] = {}
    if raw_meta is not None:
        if not isinstance(raw_meta, dict):
            raise _Refused("has metadata that is not a table of texts")
        for k, v in raw_meta.items():
            if not isinstance(v, str):
                # The format allows text values only and the loader refuses anything else.
                raise _Refused(f"has a metadata value that is not text ({k[:80]!r})")
            metadata[k] = v
    tensors: dict[str, TensorInfo] = {}
    for key, info in doc.items():
        what = f"tensor {key[:80]!r}"
        if not isinstance(info, dict):
            raise _Refused(f"has a malformed entry for {what}")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
            shown = dtype[:20] if isinstance(dtype, str) else type(dtype).__name__
            raise _Refused(f"uses an unknown data type ({shown!r}) for {what}")
        if not isinstance(shape, list) or not all(_whole(d) for d in shape):
            raise _Refused(f"has an invalid shape for {what} (dimensions must be whole numbers)")
        if len(shape) > MAX_NDIM or any(d > MAX_DIM for d in shape):
            raise _Refused(f"has absurd dimensions for {what}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_whole(x) for x in offsets)
        ):
            raise _Refused(f"has invalid offsets for {what} (two whole numbers are needed)")
        start, end = offsets
        if end < start:
            raise _Refused(f"has invalid offsets for {what}")
        numel = 1
        for d in shape:
            numel *= d
        bits = numel * DTYPE_BITS[dtype]
        if bits % 8:
            raise _Refused(f"has a size mismatch for {what} (it does not end on a byte)")
        if bits // 8 != end - start:
            raise _Refused(f"has a size mismatch for {what}")
        tensors[key] = TensorInfo(dtype, tuple(shape), start, end)
    return tensors, metadata


def _check_packed(tensors: dict[str, TensorInfo]) -> None:
    """The loader's rule: in offset order, each tensor starts where the previous one ends."""
    pos = 0
    for key, t in sorted(tensors.items(), key=lambda kv: (kv[1].start, kv[1].end)):
        if t.start != pos:
            raise _Refused(f"has overlapping or out-of-order tensor offsets (at {key[:80]!r})")
        pos = t.end


def read_header(path: str | os.PathLike[str], check_size: bool = True) -> SafetensorsHeader:
    """Parse and validate the header of ``path``.

    The one validator of safetensors files: ``lora inspect``, the library scan, model discovery
    and generation's LoRA and model loading all call it before a file reaches safetensors or
    torch, and it refuses everything the safetensors loader would refuse (see
    :func:`parse_header_json`), so what is listed as usable also loads. Raises
    :class:`FileFormatError` with one sentence for pickles, non-safetensors files, hostile
    headers and truncated files (with ``check_size``, the default: the tensor data must end
    exactly where the file ends, as the loader demands; ``check_size=False`` reads only the
    header, e.g. for metadata of a file still being written).
    """
    p = Path(path)
    name = p.name
    if p.suffix.lower() in PICKLE_SUFFIXES:
        raise FileFormatError(
            f"{name} is a pickle-based checkpoint ({p.suffix}); zitdesk never opens those because "
            "they can run code. Use a .safetensors version of the file."
        )
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(9)
            if len(head) < 9:
                raise FileFormatError(
                    f"{name} is too small to be a safetensors file (is the download complete?)."
                )
            if _looks_like_pickle(head):
                raise FileFormatError(
                    f"{name} is a pickle/PyTorch checkpoint renamed to .safetensors; zitdesk does not open "
                    "pickles. Get the real .safetensors file."
                )
            (n,) = struct.unpack("<Q", head[:8])
            if n < 2 or n > MAX_HEADER_BYTES:
                raise FileFormatError(
                    f"{name} is not a usable safetensors file: its declared header size of {n:,} "
                    f"bytes is outside what safetensors allows (2 to {MAX_HEADER_BYTES:,})."
                )
            if 8 + n > size:
                raise FileFormatError(
                    f"{name} is truncated: its header says {n} bytes but the file ends early. "
                    "Download it again."
                )
            raw = head[8:] + fh.read(n - 1)
    except FileFormatError:
        raise
    except OSError as exc:
        raise FileFormatError(describe_os_error(exc, p)) from exc
    try:
        tensors, metadata = parse_header_json(raw)
    except _Refused as exc:
        raise FileFormatError(f"{name} is not a usable safetensors file: it {exc}.") from None
    data_len = size - 8 - n
    max_end = max((t.end for t in tensors.values()), default=0)
    if check_size and max_end > data_len:
        missing = max_end - data_len
        raise FileFormatError(
            f"{name} is truncated ({missing:,} bytes of tensor data are missing). Download it again."
        )
    try:
        _check_packed(tensors)
    except _Refused as exc:
        raise FileFormatError(f"{name} is not a usable safetensors file: it {exc}.") from None
    if check_size and max_end < data_len:
        raise FileFormatError(
            f"{name} is not a usable safetensors file: {data_len - max_end:,} bytes after its "
            "tensors belong to no tensor (a damaged or altered file). Download it again."
        )
    return SafetensorsHeader(p, tensors, metadata, size, 8 + n)
