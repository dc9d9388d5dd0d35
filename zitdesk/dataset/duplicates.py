"""Exact and near duplicate images of a dataset: SHA-256 groups and 64-bit pHash pairs.

:func:`near_duplicate_pairs` compares hashes in blocks (numpy popcount); :func:`duplicate_groups`
returns (exact groups, near groups) of names, near groups leaving out exact copies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _union_groups(pairs: list[tuple[int, int]], n: int) -> list[list[int]]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for i in {i for p in pairs for i in p}:
        groups.setdefault(find(i), []).append(i)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


def near_duplicate_pairs(
    hashes: Sequence[int], max_distance: int, chunk: int = 512
) -> list[tuple[int, int]]:
    """Index pairs ``(i < j)`` whose 64-bit hashes differ in at most ``max_distance`` bits."""
    n = len(hashes)
    if n < 2:
        return []
    a = np.array([h & 0xFFFFFFFFFFFFFFFF for h in hashes], dtype=np.uint64)
    out: list[tuple[int, int]] = []
    for s in range(0, n, chunk):
        block = a[s : s + chunk]
        dist = np.bitwise_count(block[:, None] ^ a[None, :])
        ii, jj = np.nonzero(dist <= max_distance)
        gi = ii + s
        keep = jj > gi
        out.extend(zip(gi[keep].tolist(), jj[keep].tolist(), strict=True))
    return out


def duplicate_groups(
    names: Sequence[str], sha: Sequence[str | None], phash: Sequence[int | None], max_distance: int
) -> tuple[list[list[str]], list[list[str]]]:
    """(exact groups, near groups) of names; near groups leave out pairs that are exact copies."""
    by_sha: dict[str, list[int]] = {}
    for i, s in enumerate(sha):
        if s:
            by_sha.setdefault(s, []).append(i)
    exact = [[names[i] for i in g] for g in by_sha.values() if len(g) > 1]
    idx = [i for i, h in enumerate(phash) if h is not None]
    known: list[int] = [h for h in phash if h is not None]
    pairs = [(idx[x], idx[y]) for x, y in near_duplicate_pairs(known, max_distance)]
    pairs = [(x, y) for x, y in pairs if not (sha[x] and sha[x] == sha[y])]
    near = [[names[i] for i in g] for g in _union_groups(pairs, len(names))]
    return exact, near
