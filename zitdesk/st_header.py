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

from zitdesk.errors import FileFormatError

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors reference implementation's own limit

DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "U16": 2, "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1,
    "F4": 0.5, "F6_E2M3": 0.75, "F6_E3M2": 0.75,
}

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


def read_header(path: str | os.PathLike[str], check_size: bool = True) -> SafetensorsHeader:
    """Parse and validate the header of ``path``.

    Raises :class:`FileFormatError` for pickles, non-safetensors files, hostile headers (huge or
    negative lengths, invalid JSON, offsets outside the file) and truncated files (when
    ``check_size``: the tensor data must end exactly where the file ends).
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
                raise FileFormatError(f"{name} is too small to be a safetensors file (is the download complete?).")
            if _looks_like_pickle(head):
                raise FileFormatError(
                    f"{name} is a pickle/PyTorch checkpoint renamed to .safetensors; zitdesk does not open "
                    "pickles. Get the real .safetensors file."
                )
            (n,) = struct.unpack("<Q", head[:8])
            if n == 0 or n > MAX_HEADER_BYTES:
                raise FileFormatError(
                    f"{name} is not a valid safetensors file (declared header size {n} bytes)."
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
        raise FileFormatError(f"Cannot read {name}: {exc.strerror or exc}.") from exc
    try:
        doc = json.loads(raw.decode("utf-8").rstrip(" \x00"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"{name} is not a valid safetensors file (its header is not JSON).") from exc
    if not isinstance(doc, dict):
        raise FileFormatError(f"{name} is not a valid safetensors file (header is not a JSON object).")
    raw_meta = doc.pop("__metadata__", None) or {}
    metadata: dict[str, str] = {}
    if isinstance(raw_meta, dict):
        for k, v in raw_meta.items():
            # The format says strings only; some tools write numbers or objects. Keep them as text.
            metadata[str(k)] = v if isinstance(v, str) else json.dumps(v)
    data_len = size - 8 - n
    tensors: dict[str, TensorInfo] = {}
    max_end = 0
    for key, info in doc.items():
        try:
            dtype = str(info["dtype"])
            shape = tuple(int(s) for s in info["shape"])
            start, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FileFormatError(f"{name} has a malformed entry for tensor {key!r}.") from exc
        if start < 0 or end < start or any(s < 0 for s in shape):
            raise FileFormatError(f"{name} has invalid offsets for tensor {key!r}.")
        nbytes = DTYPE_BYTES.get(dtype)
        if nbytes is not None:
            numel = 1
            for s in shape:
                numel *= s
            if int(numel * nbytes) != end - start and dtype not in ("F4", "F6_E2M3", "F6_E3M2"):
                raise FileFormatError(f"{name} has a size mismatch for tensor {key!r}.")
        tensors[str(key)] = TensorInfo(dtype, shape, start, end)
        max_end = max(max_end, end)
    if check_size and max_end > data_len:
        missing = max_end - data_len
        raise FileFormatError(
            f"{name} is truncated ({missing:,} bytes of tensor data are missing). Download it again."
        )
    return SafetensorsHeader(p, tensors, metadata, size, 8 + n)
