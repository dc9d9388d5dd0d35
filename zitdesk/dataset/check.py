"""The pre-flight check: what training on this folder will actually do, and what is wrong.

It runs on the trainer's own view of the folder — :func:`zitdesk.train.dataset.scan_folder`
(same files, captions as the trainer reads them), :func:`~zitdesk.train.dataset.plan_entries`
(the same aspect buckets, never upscaling, one entry per distinct bucket),
:func:`~zitdesk.train.dataset.apply_trigger` (the text the text encoder will see) and
:func:`~zitdesk.train.dataset.tag_frequency` — so the numbers here are the training run's.

Findings, each with the files concerned:

* missing / empty captions; captions over the Qwen3 token budget (512 with the chat template,
  counted on the caption *with* the trigger word applied);
* images below the training resolution (fewer than ``low_res_fraction`` × R² pixels for the
  largest resolution R: the trainer never upscales, so they train smaller) and images too small
  for any bucket (not trained at all);
* exact duplicates (SHA-256 of the file) and near duplicates (64-bit pHash within
  ``near_dup_distance`` bits, exact duplicates excluded);
* two images sharing one caption file (``cat.png`` + ``cat.jpg``);
* the trigger word: captions that already contain it get it **twice**, because the trainer
  prepends it to every caption without the ``[trigger]`` placeholder;
* bucket counts per resolution, a resolution histogram and tag frequencies.

Verdict: ``blocked`` (nothing to train), ``warnings`` or ``ready``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zitdesk.dataset.bulk import has_trigger
from zitdesk.dataset.duplicates import duplicate_groups, near_duplicate_pairs
from zitdesk.dataset.tokens import (
    QWEN3_EMPTY_PROMPT,
    FastCaptionTokenizer,
    caption_token_counts,
    fast_tokenizer,
)
from zitdesk.engine.requests import TOKEN_BUDGET  # the one prompt-token budget
from zitdesk.train.dataset import (
    TRIGGER_PLACEHOLDER,
    DatasetItem,
    apply_trigger,
    bucket_for,
    plan_entries,
    scan_folder,
    tag_frequency,
)

__all__ = [
    "QWEN3_EMPTY_PROMPT",
    "CheckOptions",
    "CheckReport",
    "FastCaptionTokenizer",
    "Issue",
    "analyse_missing",
    "caption_token_counts",
    "check_folder",
    "check_items",
    "duplicate_groups",
    "fast_tokenizer",
    "image_flag_counts",
    "near_duplicate_pairs",
]

DEFAULT_RESOLUTIONS = (512, 768, 1024)
MP_BINS = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class CheckOptions:
    resolutions: tuple[int, ...] = DEFAULT_RESOLUTIONS
    preset: str | None = None
    trigger: str = ""
    token_budget: int = TOKEN_BUDGET
    low_res_fraction: float = 0.75
    near_dup_distance: int = 6

    @classmethod
    def for_preset(cls, preset: str, **kw: Any) -> CheckOptions:
        """Options with the resolutions of a VRAM preset from :mod:`zitdesk.train.presets`."""
        from zitdesk.train.presets import PRESETS

        if preset not in PRESETS:
            from zitdesk.errors import RequestError

            raise RequestError(f"Unknown preset {preset!r}; use one of {', '.join(PRESETS)}.")
        res = tuple(PRESETS[preset].changes["data"]["resolutions"])
        return cls(resolutions=res, preset=preset, **kw)


@dataclass
class Issue:
    severity: str  # "error" | "warning" | "info"
    code: str
    message: str
    files: list[str] = field(default_factory=list)


@dataclass
class CheckReport:
    folder: str
    options: CheckOptions
    images: int = 0
    entries: int = 0
    verdict: str = "ready"
    summary: str = ""
    issues: list[Issue] = field(default_factory=list)
    flags: dict[str, set[str]] = field(default_factory=dict)
    buckets: dict[int, dict[str, int]] = field(default_factory=dict)
    image_buckets: dict[str, dict[int, str]] = field(default_factory=dict)
    downscaled: dict[int, int] = field(default_factory=dict)
    histogram: list[tuple[str, int]] = field(default_factory=list)
    tags: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    token_available: bool = False
    exact_duplicates: list[list[str]] = field(default_factory=list)
    near_duplicates: list[list[str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def files_with(self, code: str) -> list[str]:
        return sorted(n for n, f in self.flags.items() if code in f)

    def to_json(self, top_tags: int = 100) -> dict:
        o = self.options
        return {
            "folder": self.folder,
            "preset": o.preset,
            "resolutions": list(o.resolutions),
            "trigger": o.trigger,
            "images": self.images,
            "training_entries": self.entries,
            "verdict": self.verdict,
            "summary": self.summary,
            "issues": [
                {
                    "severity": i.severity,
                    "code": i.code,
                    "message": i.message,
                    "count": len(i.files),
                    "files": i.files,
                }
                for i in self.issues
            ],
            "buckets": {str(r): b for r, b in self.buckets.items()},
            "downscaled_entries": {str(r): n for r, n in self.downscaled.items()},
            "resolution_histogram": [{"range": k, "count": v} for k, v in self.histogram],
            "tag_frequency": dict(list(self.tags.items())[:top_tags]),
            "tokens": self.tokens if self.token_available else None,
            "exact_duplicates": self.exact_duplicates,
            "near_duplicates": self.near_duplicates,
            "unreadable": self.problems,
            "flags": {n: sorted(f) for n, f in sorted(self.flags.items()) if f},
        }


# --- the check -----------------------------------------------------------------------------------


def _n(count: int, singular: str, plural: str) -> str:
    return f"{count:,} {singular if count == 1 else plural}"


def _histogram(items: Sequence[DatasetItem]) -> list[tuple[str, int]]:
    edges = (0.0, *MP_BINS, float("inf"))
    labels = (
        [f"< {MP_BINS[0]:g} MP"]
        + [f"{edges[i]:g}–{edges[i + 1]:g} MP" for i in range(1, len(MP_BINS))]
        + [f"≥ {MP_BINS[-1]:g} MP"]
    )
    counts = [0] * len(labels)
    for it in items:
        mp = it.width * it.height / 1e6
        for b in range(len(labels)):
            if edges[b] <= mp < edges[b + 1]:
                counts[b] += 1
                break
    return list(zip(labels, counts, strict=True))


def check_items(
    folder: str,
    items: Sequence[DatasetItem],
    opts: CheckOptions,
    *,
    sha: Sequence[str | None] | None = None,
    phash: Sequence[int | None] | None = None,
    token_counts: tuple[list[int], int] | None = None,
    problems: Sequence[str] = (),
) -> CheckReport:
    """Check trainer items (``scan_folder`` output, or :meth:`Dataset.train_items`).

    ``token_counts`` is :func:`caption_token_counts` of ``apply_trigger(caption, trigger)`` for
    each item (None: token check skipped); ``sha``/``phash`` per item (None: no duplicate check).
    """
    rep = CheckReport(folder, opts, images=len(items), problems=list(problems))
    names = [it.image.name for it in items]
    rep.flags = {n: set() for n in names}
    pos = {n: i for i, n in enumerate(names)}

    def flag(i: int, code: str) -> None:
        rep.flags[names[i]].add(code)

    def issue(sev: str, code: str, msg: str, idx: list[int]) -> None:
        files = [names[i] for i in idx]
        for i in idx:
            flag(i, code)
        rep.issues.append(Issue(sev, code, msg, files))

    res = tuple(sorted(set(opts.resolutions)))
    top = max(res)
    entries = plan_entries(items, res)
    rep.entries = len(entries)
    for r in res:
        rep.buckets[r] = {}
        rep.downscaled[r] = 0
    for e in entries:
        key = f"{e.bucket[0]}x{e.bucket[1]}"
        b = rep.buckets[e.resolution]
        b[key] = b.get(key, 0) + 1
        it = items[e.item]
        if e.bucket[0] * e.bucket[1] < it.width * it.height:
            rep.downscaled[e.resolution] += 1
        rep.image_buckets.setdefault(names[e.item], {})[e.resolution] = key
    for r in res:
        rep.buckets[r] = dict(sorted(rep.buckets[r].items(), key=lambda kv: (-kv[1], kv[0])))

    missing = [i for i, it in enumerate(items) if it.caption_path is None]
    empty = [i for i, it in enumerate(items) if it.caption_path is not None and not it.caption]
    if missing:
        issue(
            "warning",
            "missing_caption",
            f"{_n(len(missing), 'image has', 'images have')} no caption file; training sees "
            "only the trigger word (or nothing).",
            missing,
        )
    if empty:
        issue(
            "warning",
            "empty_caption",
            f"{_n(len(empty), 'caption file is', 'caption files are')} empty.",
            empty,
        )

    too_small = [
        i
        for i, it in enumerate(items)
        if all(bucket_for(it.width, it.height, r) is None for r in res)
    ]
    if too_small:
        issue(
            "warning",
            "too_small",
            f"{_n(len(too_small), 'image is', 'images are')} too small for any bucket and "
            "will not be trained.",
            too_small,
        )
    limit = opts.low_res_fraction * top * top
    small = set(too_small)
    # far below: under a quarter of the smallest training resolution's pixels (32×32 for a
    # 512 run): it trains as a blur, unlike a 640×640 image that is merely below 1024 px
    least = min(res)
    tiny = [
        i
        for i, it in enumerate(items)
        if it.width * it.height < least * least / 4 and i not in small
    ]
    if tiny:
        issue(
            "warning",
            "very_low_res",
            f"{_n(len(tiny), 'image is', 'images are')} far below the training size (under "
            f"{least // 2}×{least // 2} pixels): {'it trains' if len(tiny) == 1 else 'they train'}"
            " as a blur; replace or exclude "
            f"{'it' if len(tiny) == 1 else 'them'}.",
            tiny,
        )
    small |= set(tiny)
    low = [i for i, it in enumerate(items) if it.width * it.height < limit and i not in small]
    if low:
        issue(
            "warning",
            "low_res",
            f"{_n(len(low), 'image has', 'images have')} fewer than "
            f"{opts.low_res_fraction:.0%} of {top}×{top} pixels; the trainer never upscales, "
            f"so {'it trains' if len(low) == 1 else 'they train'} below {top} px.",
            low,
        )

    captions = [apply_trigger(it.caption, opts.trigger) for it in items]
    if token_counts is not None:
        counts, template = token_counts
        rep.token_available = True
        totals = [c + template for c in counts]
        over = [i for i, t in enumerate(totals) if t > opts.token_budget]
        if over:
            issue(
                "warning",
                "over_token_budget",
                f"{_n(len(over), 'caption is', 'captions are')} longer than the "
                f"{opts.token_budget - template} tokens the text encoder reads; the end is cut "
                "off in training.",
                over,
            )
        if totals:
            rep.tokens = {
                "max": max(counts),
                "mean": round(sum(counts) / len(counts)),
                "budget": opts.token_budget - template,
            }

    trig = opts.trigger.strip()
    if trig:
        doubled = [
            i
            for i, it in enumerate(items)
            if TRIGGER_PLACEHOLDER not in it.caption and has_trigger(it.caption, trig)
        ]
        placeholder = [i for i, it in enumerate(items) if TRIGGER_PLACEHOLDER in it.caption]
        if doubled:
            issue(
                "warning",
                "trigger_doubled",
                f"{_n(len(doubled), 'caption already contains', 'captions already contain')}"
                f" “{trig}”; training prepends it "
                f"again (“{trig}, {trig}, …”). Use [trigger] in those captions or leave the "
                "training trigger empty.",
                doubled,
            )
        added = len(items) - len(doubled) - len(placeholder)
        if added:
            rep.issues.append(
                Issue(
                    "info",
                    "trigger_added",
                    f"Training prepends “{trig}” to "
                    f"{_n(added, 'caption', 'captions')}; [trigger] "
                    "placeholders are replaced by it.",
                )
            )
    else:
        with_ph = [i for i, it in enumerate(items) if TRIGGER_PLACEHOLDER in it.caption]
        if with_ph:
            issue(
                "warning",
                "placeholder_without_trigger",
                f"{_n(len(with_ph), 'caption uses', 'captions use')} [trigger] but no "
                "trigger word is set; the placeholder will be removed.",
                with_ph,
            )

    by_caption: dict[Path, list[int]] = {}
    for i, it in enumerate(items):
        if it.caption_path is not None:
            by_caption.setdefault(it.caption_path, []).append(i)
    shared = sorted(i for g in by_caption.values() if len(g) > 1 for i in g)
    if shared:
        issue(
            "warning",
            "shared_caption",
            f"{len(shared)} images share a caption file with an image of the same name "
            "(e.g. cat.png and cat.jpg both read cat.txt).",
            shared,
        )

    if sha is not None and phash is not None:
        exact, near = duplicate_groups(names, sha, phash, opts.near_dup_distance)
        rep.exact_duplicates, rep.near_duplicates = exact, near
        if exact:
            idx = [pos[n] for g in exact for n in g]
            issue(
                "warning",
                "duplicate",
                f"{_n(len(exact), 'group', 'groups')} of identical images ({len(idx)} files).",
                idx,
            )
        if near:
            idx = [pos[n] for g in near for n in g]
            issue(
                "warning",
                "near_duplicate",
                f"{_n(len(near), 'group', 'groups')} of near-identical images ({len(idx)} files).",
                idx,
            )

    if problems:
        rep.issues.append(
            Issue(
                "warning",
                "unreadable",
                f"{_n(len(problems), 'file cannot', 'files cannot')} be read and will be skipped.",
                list(problems),
            )
        )
    rep.histogram = _histogram(items)
    rep.tags = tag_frequency(captions)

    if not items or not entries:
        rep.verdict = "blocked"
        rep.issues.insert(
            0, Issue("error", "nothing_to_train", "No image in this folder can be trained.")
        )
    elif any(i.severity == "warning" for i in rep.issues):
        rep.verdict = "warnings"
    else:
        rep.verdict = "ready"
    n_warn = sum(1 for i in rep.issues if i.severity == "warning")
    res_txt = "/".join(str(r) for r in res)
    rep.summary = {
        "blocked": "Blocked: no image in this folder can be trained.",
        "warnings": f"{len(items)} images → {rep.entries} training entries at {res_txt} px; "
        f"{_n(n_warn, 'finding', 'findings')} to look at.",
        "ready": f"Ready: {len(items)} images → {rep.entries} training entries at {res_txt} px.",
    }[rep.verdict]
    return rep


def analyse_missing(
    folder: Path,
    names: Sequence[str],
    cached: dict[str, tuple[str, int]],
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    between: Callable[[], None] | None = None,
    memory_budget: int | None = None,
) -> dict[str, tuple[str, int]]:
    """(sha256, phash) for every name, computing (and thumbnailing) those not in ``cached``.

    ``between()`` is called before each image (a GUI passes a gate that pauses the work while
    the user scrolls). The workers together hold at most ``memory_budget`` bytes of files and
    pixels (one file beyond it when a single file is larger), whatever their number."""
    from zitdesk.dataset.budget import DEFAULT_MEMORY_BUDGET, ByteBudget
    from zitdesk.dataset.collect import DEFAULT_MAX_FILE_BYTES
    from zitdesk.dataset.images import DEFAULT_MAX_PIXELS, ImageRejected, analyse_file, store_thumb

    out = dict(cached)
    todo = [n for n in names if n not in out]
    budget = ByteBudget(memory_budget or DEFAULT_MEMORY_BUDGET)

    def one(name: str):
        if between is not None:
            between()
        try:
            size = os.stat(folder / name).st_size
            if size > DEFAULT_MAX_FILE_BYTES:
                return name, None
            # the file and (roughly) its decoded pixels: JPEGs decode at reduced scale here
            need = size + min(size * 8, DEFAULT_MAX_PIXELS * 4, 128 * 2**20)
            budget.take(None, need)
            try:
                an, thumb = analyse_file(folder / name)
            finally:
                budget.give(need)
        except (ImageRejected, OSError):
            return name, None
        try:
            store_thumb(an.sha256, thumb)
        except OSError:
            pass
        return name, (an.sha256, an.phash)

    if todo:
        with ThreadPoolExecutor(max_workers=workers or max(2, os.cpu_count() or 2)) as pool:
            for k, (name, res) in enumerate(pool.map(one, todo), 1):
                if res is not None:
                    out[name] = res
                if progress and (k % 32 == 0 or k == len(todo)):
                    progress(k, len(todo))
    return out


def check_folder(
    folder: str | os.PathLike[str],
    opts: CheckOptions,
    *,
    tokenizer: Any = "default",
    duplicates: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Scan ``folder`` as the trainer does and check it. ``tokenizer``: "default" (the bundled
    Qwen3 tokenizer, :func:`fast_tokenizer`), a loaded tokenizer, or None to skip tokens.

    Content hashes come from the dataset index when fresh; missing ones are computed (and saved
    back when the folder is already a managed dataset, i.e. has ``.zitdesk/``).
    """
    from zitdesk.dataset.store import Dataset

    root = Path(folder)
    scan = scan_folder(root, ".txt")
    items = list(scan.items)
    sha = phash = None
    if duplicates and items:
        ds = Dataset.open(root)
        cached = {
            it.name: (it.sha256, it.phash) for it in ds.items if it.sha256 and it.phash is not None
        }
        names = [it.image.name for it in items]
        got = analyse_missing(root, names, cached, progress)
        sha = [got.get(n, (None, None))[0] for n in names]
        phash = [got.get(n, (None, None))[1] for n in names]
        if ds.meta_dir.is_dir():
            for it in ds.items:
                if it.name in got and it.name not in cached:
                    ds.record_analysis(it, *got[it.name])
            try:
                ds.save_index()
            except OSError:  # a cache; a full or read-only disk does not stop the check
                pass
    counts = None
    if tokenizer is not None and items:
        tok = tokenizer
        if isinstance(tokenizer, str):
            try:
                tok = fast_tokenizer()
            except Exception:  # noqa: BLE001 - no tokenizer: the check runs without tokens
                tok = None
        if tok is not None:
            counts = caption_token_counts(
                [apply_trigger(it.caption, opts.trigger) for it in items], tok
            )
    return check_items(
        str(root), items, opts, sha=sha, phash=phash, token_counts=counts, problems=scan.problems
    )


def image_flag_counts(rep: CheckReport) -> Counter[str]:
    return Counter(code for f in rep.flags.values() for code in f)
