"""A bounded look at a LoRA's tensor values: does it hold NaN or infinite weights?

A damaged or diverged training can leave a file whose header is fine but whose weights are all
NaN; generation skips such modules and refuses a file where every module is non-finite
(:mod:`zitdesk.lora.convert`). :func:`nonfinite_modules` lets ``zitdesk lora inspect`` and the
library say so too, from a sample: at most three runs of :data:`SAMPLE_RUN` values per tensor
(the start, the middle and the end), read with a few seeks, never the whole file. Torch-free.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from zitdesk.st_header import SafetensorsHeader

SAMPLE_RUN = 32  # values per run; three runs per tensor
MAX_SAMPLED_TENSORS = 4096
#: dtype → (struct code, bytes per value); BF16 is the high half of an F32.
_FORMATS = {"F32": ("f", 4), "F64": ("d", 8), "F16": ("e", 2), "BF16": ("f", 2)}


@dataclass(frozen=True)
class ValueCheck:
    modules: int  # modules whose float tensors were sampled
    nonfinite: tuple[str, ...]  # modules with a NaN or infinite sampled value

    @property
    def all_nonfinite(self) -> bool:
        return self.modules > 0 and len(self.nonfinite) == self.modules


def module_of(key: str) -> str:
    """The module a LoRA tensor belongs to: ``x.lora_A.weight`` / ``x.lora_down.weight`` /
    ``x.hada_w1_a`` → ``x`` (both halves of a pair give the same name)."""
    parts = key.split(".")
    if parts[-1] == "weight" and len(parts) > 2:
        return ".".join(parts[:-2])
    return ".".join(parts[:-1]) or key


def _runs(n: int) -> list[tuple[int, int]]:
    """(first index, count) of the sampled runs of a tensor of ``n`` values."""
    if n <= 3 * SAMPLE_RUN:
        return [(0, n)]
    mid = n // 2 - SAMPLE_RUN // 2
    return [(0, SAMPLE_RUN), (mid, SAMPLE_RUN), (n - SAMPLE_RUN, SAMPLE_RUN)]


def _finite(raw: bytes, dtype: str) -> bool:
    code, size = _FORMATS[dtype]
    count = len(raw) // size
    raw = raw[: count * size]
    if dtype == "BF16":
        raw = b"".join(b"\x00\x00" + raw[i : i + 2] for i in range(0, len(raw), 2))
    return all(math.isfinite(v) for v in struct.unpack(f"<{count}{code}", raw))


def nonfinite_modules(header: SafetensorsHeader) -> ValueCheck:
    """Sample every float tensor with more than one value (alphas are scalars) and name the
    modules where a sampled value is NaN or infinite. An unreadable file samples nothing."""
    reads: list[tuple[int, int, str, str]] = []  # (file offset, bytes, dtype, module)
    modules: set[str] = set()
    sampled = 0
    for key, t in header.tensors.items():
        if t.dtype not in _FORMATS or sampled >= MAX_SAMPLED_TENSORS:
            continue
        n = 1
        for s in t.shape:
            n *= s
        size = _FORMATS[t.dtype][1]
        if n <= 1 or t.end - t.start != n * size:
            continue
        sampled += 1
        module = module_of(key)
        modules.add(module)
        for first, count in _runs(n):
            reads.append(
                (header.data_offset + t.start + first * size, count * size, t.dtype, module)
            )
    bad: set[str] = set()
    reads.sort()
    try:
        with open(header.path, "rb") as fh:
            for offset, nbytes, dtype, module in reads:
                if module in bad:
                    continue
                fh.seek(offset)
                raw = fh.read(nbytes)
                if len(raw) == nbytes and not _finite(raw, dtype):
                    bad.add(module)
    except OSError:
        return ValueCheck(0, ())
    return ValueCheck(len(modules), tuple(sorted(bad)))


def damaged_message(name: str) -> str:
    """The sentence generation gives for a file whose every module is non-finite."""
    return f"{name} holds NaN or infinite values; the file is damaged."
