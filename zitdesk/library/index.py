"""The LoRA library index: scan folders, read headers and sidecars, cache by path+size+mtime.

:class:`LibraryIndex` walks folders recursively and turns every LoRA-looking file into a
:class:`LoraEntry`: architecture, dialect, rank, alpha, targets and coverage from the safetensors
header (:mod:`zitdesk.lora.inspect`, header only plus the few bytes of scalar ``.alpha`` tensors),
metadata from every dialect (kohya ``ss_*``, ``modelspec.*``, ai-toolkit/zitdesk keys), every
sidecar (:mod:`zitdesk.library.sidecars`), a preview (:mod:`zitdesk.library.previews`) and,
once computed in the background, hashes (:mod:`zitdesk.hashing`).

* Pickle-based files (``.ckpt``, ``.pt``, ``.pth``, ``.pkl``) are listed as *unsupported* and
  never opened. GGUF files too.
* A file that cannot be read (truncated, hostile header, invalid JSON, wrong offsets) becomes an
  entry with ``status == "error"`` and a plain message; the scan goes on.
* Files of other architectures are entries with ``compatible == False`` and the reason: the UI
  greys them out, it never hides them.

Rescans are incremental: an entry is reused while the file's size and mtime *and* the names,
sizes and mtimes of its sidecars/previews are unchanged, and while coverage is measured against
the same module set. The cache is one JSON file in the user cache folder, written atomically.
A file that disappears while another with the same size, mtime and suffix appears is reported
as *moved*, so favourites and hashes follow renames.

Thread-safety: one scan at a time (a lock); :attr:`LibraryIndex.entries` returns a snapshot.
Entries are replaced, never mutated, so a snapshot handed to the UI stays consistent.
Cancel: ``cancel()`` is polled between files; a cancelled scan keeps what it had and does not
drop entries it did not reach.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from zitdesk.errors import LoraError
from zitdesk.hashing import FileHashes, HashCache, autov2, autov3, shared_cache
from zitdesk.io import atomic_write, user_dirs
from zitdesk.library import previews, sidecars
from zitdesk.library.roots import Root
from zitdesk.library.sidecars import Sidecar

log = logging.getLogger(__name__)

INDEX_VERSION = 1
LORA_EXTS = (".safetensors", ".sft")
UNSAFE_EXTS = (".ckpt", ".pt", ".pth", ".pkl")
OTHER_EXTS = (".gguf",)
SCAN_EXTS = LORA_EXTS + UNSAFE_EXTS + OTHER_EXTS
MAX_DEPTH = 16
META_VALUE_LIMIT = 1000  # metadata values kept in the index (the details pane re-reads)
TOP_TAGS = 20

#: Companion suffixes whose name/size/mtime are part of an entry's cache key.
COMPANION_SUFFIXES = tuple(sidecars.SIDECAR_SUFFIXES) + previews.PREVIEW_SUFFIXES

#: ``ss_*`` and other training keys shown as "training" facts, with labels.
TRAINING_KEYS = {
    "ss_output_name": "output name",
    "ss_network_module": "network module",
    "ss_network_dim": "network dim",
    "ss_network_alpha": "network alpha",
    "ss_base_model_version": "base model version",
    "ss_sd_model_name": "base model file",
    "ss_resolution": "resolution",
    "ss_num_train_images": "train images",
    "ss_num_epochs": "epochs",
    "ss_epoch": "epoch",
    "ss_steps": "steps",
    "ss_max_train_steps": "max steps",
    "ss_learning_rate": "learning rate",
    "ss_unet_lr": "unet lr",
    "ss_optimizer": "optimizer",
    "ss_timestep_sampling": "timestep sampling",
    "ss_discrete_flow_shift": "flow shift",
    "ss_training_started_at": "started at",
    "ss_training_finished_at": "finished at",
    "modelspec.date": "date",
    "modelspec.resolution": "resolution (modelspec)",
    "modelspec.implementation": "implementation",
    "zitdesk_version": "zitdesk version",
    "zitdesk_base_variant": "base variant",
    "zitdesk_base_precision": "base precision",
}

# Source names of trigger words, strongest first (what wins when two sources disagree).
SOURCE_ORDER = (
    "a1111",
    "header",
    "swarm",
    "civitai",
    "cm-info",
    "lora-manager",
    "training-config",
    "ss_tag_frequency",
)


@dataclass(frozen=True)
class TriggerWord:
    """A trigger word, the source that won, and every source that states it."""

    word: str
    source: str  # e.g. "modelspec.trigger_phrase", "A1111/Forge .json"
    sources: tuple[str, ...] = ()
    from_tags: bool = False  # only from the top of ss_tag_frequency (a guess, not declared)

    def to_dict(self) -> dict[str, Any]:
        return {
            "word": self.word,
            "source": self.source,
            "sources": list(self.sources),
            "from_tags": self.from_tags,
        }


@dataclass(frozen=True)
class LoraEntry:
    """One file of the library, as the UI and ``zitdesk lora scan --json`` see it."""

    path: str
    root: str = ""
    size: int = 0
    mtime_ns: int = 0
    status: str = "ok"  # ok | error (unreadable) | unsupported (unsafe/other format)
    error: str = ""
    arch: str = "unknown"
    arch_label: str = "unknown"
    dialect: str = "unknown"
    rank: int | None = None
    alpha: float | None = None
    n_tensors: int = 0
    target_count: int = 0
    fused_qkv: bool = False
    coverage_matched: int = 0
    coverage_total: int = 0
    coverage_percent: float = 0.0
    model_targets: int = 0
    compatible: bool = False
    reason: str = ""  # one plain sentence: why (in)compatible
    unknown_key_count: int = 0
    unsupported_key_count: int = 0
    base_model_version: str = (
        ""  # what the metadata claims (ss_base_model_version, modelspec.architecture)
    )
    title: str = ""
    author: str = ""
    description: str = ""
    preferred_weight: float | None = None
    trigger_words: tuple[TriggerWord, ...] = ()
    tags: tuple[str, ...] = ()
    top_tags: tuple[tuple[str, int], ...] = ()
    training: dict[str, str] = field(default_factory=dict)
    has_metadata: bool = False
    metadata: dict[str, str] = field(default_factory=dict)  # values cut at META_VALUE_LIMIT
    sidecars: tuple[Sidecar, ...] = ()
    preview: str = ""
    preview_source: str = ""
    sha256: str = ""
    addnet: str = ""
    hash_error: str = ""

    # -- derived -------------------------------------------------------------------------------
    @property
    def file_name(self) -> str:
        return os.path.basename(self.path)

    @property
    def stem(self) -> str:
        name = self.file_name
        dot = name.rfind(".")
        return name[:dot] if dot > 0 else name

    @property
    def display_name(self) -> str:
        return self.title or self.stem

    @property
    def folder(self) -> str:
        return os.path.dirname(self.path)

    @property
    def coverage_badge(self) -> str:
        return f"{self.coverage_matched}/{self.coverage_total}" if self.coverage_total else ""

    @property
    def autov2(self) -> str:
        return autov2(self.sha256)

    @property
    def autov3(self) -> str:
        return autov3(self.addnet)

    @property
    def declared_triggers(self) -> list[str]:
        return [t.word for t in self.trigger_words if not t.from_tags]

    @property
    def default_insert_triggers(self) -> list[str]:
        """What "insert trigger words" adds by default: the declared ones, else the top tag."""
        declared = self.declared_triggers
        if declared:
            return declared
        return [self.trigger_words[0].word] if self.trigger_words else []

    # -- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["trigger_words"] = [t.to_dict() for t in self.trigger_words]
        d["sidecars"] = [s.to_dict() for s in self.sidecars]
        d["tags"] = list(self.tags)
        d["top_tags"] = [list(t) for t in self.top_tags]
        d["file_name"] = self.file_name
        d["name"] = self.display_name
        d["folder"] = self.folder
        d["coverage_badge"] = self.coverage_badge
        d["autov2"] = self.autov2
        d["autov3"] = self.autov3
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoraEntry:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["trigger_words"] = tuple(
            TriggerWord(
                t["word"],
                t.get("source", ""),
                tuple(t.get("sources", ())),
                bool(t.get("from_tags")),
            )
            for t in d.get("trigger_words", ())
            if isinstance(t, dict) and isinstance(t.get("word"), str)
        )
        kw["sidecars"] = tuple(
            Sidecar.from_dict(s) for s in d.get("sidecars", ()) if isinstance(s, dict)
        )
        kw["tags"] = tuple(str(t) for t in d.get("tags", ()))
        kw["top_tags"] = tuple((str(t[0]), int(t[1])) for t in d.get("top_tags", ()) if len(t) == 2)
        return cls(**kw)


@dataclass
class ScanResult:
    """What one :meth:`LibraryIndex.scan` found."""

    entries: list[LoraEntry]
    roots: list[Root]
    missing_roots: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    moved: list[tuple[str, str]] = field(default_factory=list)
    inspected: int = 0
    reused: int = 0
    elapsed_s: float = 0.0
    cancelled: bool = False

    @property
    def errors(self) -> int:
        return sum(1 for e in self.entries if e.status != "ok")


# ----------------------------------------------------------------------------------------------
# Walking
# ----------------------------------------------------------------------------------------------


@dataclass
class _Found:
    path: str
    root: str
    size: int
    mtime_ns: int
    names: dict[str, str]  # the folder's lower-case file names → real names
    companions: tuple[tuple[str, int, int], ...]

    @property
    def key(self) -> list[Any]:
        return [self.size, self.mtime_ns, [list(c) for c in self.companions]]


def _stem(name: str) -> str:
    dot = name.rfind(".")
    return name[:dot] if dot > 0 else name


# Titles that name no LoRA: zitdesk's default save name ("lora") and the like.
GENERIC_TITLES = frozenset({"lora", "model", "output", "untitled", "last", "final", "my_lora"})
_STEP_RX = re.compile(r"^(.*?)[_-](\d{3,})$")


def choose_title(meta: Mapping[str, str], path: str) -> str:
    """The title shown for a LoRA file ("" = its file name).

    ``modelspec.title`` unless it is generic; a zitdesk-trained file (``zitdesk_*`` keys) with a
    generic title is named after its run folder (``runs/my_cat/lora.safetensors`` → "my_cat",
    a checkpoint ``lora_000000500`` → "my_cat (step 500)"), or after its file name once renamed;
    a checkpoint of a run with a real title gets the step too ("Mochi (step 500)").
    """
    title = str(meta.get("modelspec.title", "")).strip()
    zitdesk = any(k.startswith("zitdesk_") for k in meta)
    if not zitdesk:
        return title
    stem = _stem(os.path.basename(path))
    m = _STEP_RX.match(stem)
    base, step = (m.group(1), int(m.group(2))) if m else (stem, None)
    saved_as = str(meta.get("ss_output_name", "")).strip().lower()
    if title and title.lower() not in GENERIC_TITLES:
        # a checkpoint written during the run: "<save name>_<step>" → "<title> (step N)"
        if step is not None and base.lower() == (saved_as or title.lower()):
            return f"{title} (step {step:,})"
        return title
    if base.lower() not in GENERIC_TITLES and base.lower() != title.lower():
        return ""  # renamed by the user: the file name says it
    run = os.path.basename(os.path.dirname(os.path.abspath(path)))
    if not run or run.lower() in GENERIC_TITLES | {"loras", "lora", "checkpoints"}:
        return ""
    return f"{run} (step {step:,})" if step is not None else run


def walk(root: str, cancel: Callable[[], bool] | None = None) -> list[_Found]:
    """Every LoRA-looking file under ``root`` (recursive, symlink loops and dot-folders skipped)."""
    out: list[_Found] = []
    seen_dirs: set[tuple[int, int]] = set()
    stack: list[tuple[str, int]] = [(root, 0)]
    while stack:
        if cancel is not None and cancel():
            break
        folder, depth = stack.pop()
        try:
            st = os.stat(folder)
        except OSError:
            continue
        ident = (st.st_dev, st.st_ino)
        if ident in seen_dirs:
            continue
        seen_dirs.add(ident)
        try:
            with os.scandir(folder) as it:
                listing = list(it)
        except OSError:
            continue
        names: dict[str, str] = {}
        candidates = []
        subdirs = []
        # A training run's checkpoints hold raw optimizer-side tensors, not LoRAs to use.
        run_folder = any(de.name == "run.json" for de in listing)
        for de in listing:
            name = de.name
            try:
                is_dir = de.is_dir()
            except OSError:
                continue
            if is_dir:
                if run_folder and name == "checkpoints":
                    continue
                if not name.startswith(".") and depth < MAX_DEPTH:
                    subdirs.append(de.path)
                continue
            low = name.lower()
            names[low] = name
            if low.endswith(SCAN_EXTS) and not name.startswith("."):
                candidates.append(de)
        for de in candidates:
            try:
                st = de.stat()
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            stem_low = _stem(de.name).lower()
            comps = []
            for suffix in COMPANION_SUFFIXES:
                real = names.get(stem_low + suffix)
                if real is None:
                    continue
                try:
                    cst = os.stat(os.path.join(folder, real))
                except OSError:
                    continue
                comps.append((real, cst.st_size, cst.st_mtime_ns))
            out.append(_Found(de.path, root, st.st_size, st.st_mtime_ns, names, tuple(comps)))
        stack.extend((d, depth + 1) for d in sorted(subdirs, reverse=True))
    return out


# ----------------------------------------------------------------------------------------------
# Inspecting one file
# ----------------------------------------------------------------------------------------------


def _cut(v: str, limit: int = META_VALUE_LIMIT) -> str:
    return v if len(v) <= limit else v[:limit] + f"… ({len(v):,} characters)"


def _index_metadata(meta: dict[str, str]) -> dict[str, str]:
    out = {}
    for k, v in list(meta.items())[:500]:
        if k.endswith("thumbnail") and v.startswith("data:"):
            out[k] = f"<embedded image, {len(v):,} characters>"
        else:
            out[_cut(k, 200)] = _cut(v)
    return out


def _top_tags(meta: dict[str, str], n: int = TOP_TAGS) -> tuple[tuple[str, int], ...]:
    raw = meta.get("ss_tag_frequency", "")
    if not raw or raw[:1] != "{" or len(raw) > 20_000_000:
        return ()
    try:
        freq = json.loads(raw)
    except (ValueError, RecursionError):
        return ()
    counts: dict[str, int] = {}
    if isinstance(freq, dict):
        for tags in freq.values():
            if isinstance(tags, dict):
                for tag, c in tags.items():
                    if (
                        isinstance(tag, str)
                        and isinstance(c, (int, float))
                        and not isinstance(c, bool)
                    ):
                        t = tag.strip()
                        if t:
                            counts[t] = counts.get(t, 0) + int(c)
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n])


def _foreign_rank(header: Any) -> int | None:
    """Most common LoRA rank from ``lora_down``/``lora_A`` shapes (keys.py skips foreign files)."""
    counts: dict[int, int] = {}
    for k, t in header.tensors.items():
        if (
            k.endswith((".lora_down.weight", ".lora_A.weight", ".lora.down.weight"))
            and len(t.shape) >= 2
        ):
            counts[int(t.shape[0])] = counts.get(int(t.shape[0]), 0) + 1
    return max(counts, key=lambda r: counts[r]) if counts else None


def merge_trigger_words(
    header_words: list[tuple[str, str]], cars: Iterable[Sidecar]
) -> tuple[TriggerWord, ...]:
    """Merge trigger words from the header (``extract_trigger_words`` output) and sidecars.

    Order = which source wins: A1111 ``activation text`` (the user's own choice in A1111/Forge),
    explicit header keys (``modelspec.trigger_phrase``, ``trigger_word`` …), SwarmUI, Civitai
    ``trainedWords`` (.civitai.info, .cm-info.json, .metadata.json), trigger words inside a
    training config, then the top ``ss_tag_frequency`` tags. Duplicates (case-insensitive) keep
    the first spelling and list every source.
    """
    ranked: list[tuple[int, str, str, bool]] = []
    for word, source in header_words:
        if source == "ss_tag_frequency":
            rank, tags = SOURCE_ORDER.index("ss_tag_frequency"), True
        elif source.endswith(":trigger_word"):
            rank, tags = SOURCE_ORDER.index("training-config"), False
        else:
            rank, tags = SOURCE_ORDER.index("header"), False
        ranked.append((rank, word, source, tags))
    for sc in cars:
        if sc.error:
            continue
        rank = SOURCE_ORDER.index(sc.kind) if sc.kind in SOURCE_ORDER else len(SOURCE_ORDER)
        for w in sc.trigger_words:
            ranked.append((rank, w, sc.label, False))
    ranked.sort(key=lambda r: r[0])  # stable: keeps each source's own order
    merged: dict[str, TriggerWord] = {}
    for _rank, word, source, tags in ranked:
        key = word.strip().lower()
        if not key:
            continue
        if key in merged:
            tw = merged[key]
            if source not in tw.sources:
                merged[key] = replace(
                    tw, sources=tw.sources + (source,), from_tags=tw.from_tags and tags
                )
        else:
            merged[key] = TriggerWord(word.strip(), source, (source,), tags)
    return tuple(merged.values())


def _unsupported_entry(found: _Found) -> LoraEntry:
    ext = os.path.splitext(found.path)[1].lower()
    name = os.path.basename(found.path)
    if ext in UNSAFE_EXTS:
        reason = (
            f"Not supported: unsafe format. {name} is a pickle-based checkpoint ({ext}); zitdesk "
            "never opens those because they can run code. Use a .safetensors version."
        )
    else:
        reason = f"Not supported: {name} is a GGUF file; LoRAs must be .safetensors files."
    return LoraEntry(
        path=found.path,
        root=found.root,
        size=found.size,
        mtime_ns=found.mtime_ns,
        status="unsupported",
        error=reason,
        reason=reason,
        arch_label="not supported",
    )


def inspect_file(
    found: _Found,
    module_names: set[str],
    thumbs: Path | None = None,
    model_shapes: Mapping[str, tuple[int, int]] | None = None,
) -> LoraEntry:
    """Build the entry of one file; never raises (problems become ``status``/``error``).

    ``model_shapes``: the active model's Linear shapes; a LoRA whose layers have other sizes is
    not compatible (the same check as Generate's "Add", :func:`zitdesk.lora.fit.check_fit`).
    """
    from zitdesk.lora.inspect import (
        compatibility,
        coverage,
        extract_trigger_words,
        inspect_header,
        read_lora_header,
    )

    if found.path.lower().endswith(UNSAFE_EXTS + OTHER_EXTS):
        base = _unsupported_entry(found)
        cars = sidecars.read_sidecars(found.path, found.names)
        return _with_sidecars(base, cars, {}, found, thumbs)
    entry = LoraEntry(path=found.path, root=found.root, size=found.size, mtime_ns=found.mtime_ns)
    meta: dict[str, str] = {}
    try:
        header = read_lora_header(found.path)
        info = inspect_header(header)
        cov = coverage(info, module_names)
        ok, message = compatibility(info, cov)
        if ok and model_shapes:
            from zitdesk.lora.fit import check_fit

            fit = check_fit(header, model_shapes, info=info)
            if not fit.ok:
                ok, message = False, fit.message
        meta = info.metadata
        entry = replace(
            entry,
            arch=info.arch,
            arch_label=info.label,
            dialect=info.dialect,
            rank=info.rank if info.rank is not None else _foreign_rank(header),
            alpha=info.alpha,
            n_tensors=info.n_tensors,
            target_count=len(info.target_modules),
            fused_qkv=info.fused_qkv,
            coverage_matched=cov.matched,
            coverage_total=cov.total_in_file,
            coverage_percent=cov.percent,
            model_targets=cov.model_targets,
            compatible=ok,
            reason=message,
            unknown_key_count=len(info.unknown_keys),
            unsupported_key_count=len(info.unsupported_keys),
            base_model_version=str(info.base_model_version or ""),
            has_metadata=bool(meta),
            metadata=_index_metadata(meta),
            top_tags=_top_tags(meta),
            training={
                label: _cut(meta[k], 200) for k, label in TRAINING_KEYS.items() if meta.get(k)
            },
            title=_cut(choose_title(meta, found.path), 300),
            author=_cut(meta.get("modelspec.author", "").strip(), 300),
            description=sidecars.html_to_text(_cut(meta.get("modelspec.description", ""), 20_000)),
        )
        header_words = extract_trigger_words(meta)
    except LoraError as exc:
        entry = replace(
            entry, status="error", error=str(exc), reason=str(exc), arch_label="unreadable"
        )
        header_words = []
    except Exception as exc:
        log.debug("unexpected error inspecting %s", found.path, exc_info=True)
        from zitdesk.errors import user_message

        msg = f"Cannot read {os.path.basename(found.path)}: {user_message(exc, found.path)}"
        entry = replace(entry, status="error", error=msg, reason=msg, arch_label="unreadable")
        header_words = []
    cars = sidecars.read_sidecars(found.path, found.names)
    entry = replace(entry, trigger_words=merge_trigger_words(header_words, cars))
    return _with_sidecars(entry, cars, meta, found, thumbs)


def _with_sidecars(
    entry: LoraEntry, cars: list[Sidecar], meta: dict[str, str], found: _Found, thumbs: Path | None
) -> LoraEntry:
    ok_cars = [c for c in cars if not c.error]
    by_kind = {c.kind: c for c in ok_cars}

    def pick(attr: str, order: tuple[str, ...]) -> Any:
        for kind in order:
            c = by_kind.get(kind)
            v = getattr(c, attr) if c is not None else None
            if v not in (None, "", [], ()):
                return v
        return None

    title = entry.title or pick("title", ("swarm", "cm-info", "lora-manager", "civitai")) or ""
    author = entry.author or pick("author", ("swarm", "civitai", "cm-info")) or ""
    desc = (
        entry.description
        or pick("description", ("a1111", "swarm", "lora-manager", "cm-info", "civitai"))
        or ""
    )
    weight = pick("preferred_weight", ("a1111", "lora-manager", "swarm"))
    tags: list[str] = []
    for c in ok_cars:
        for t in c.tags:
            if t.lower() not in {x.lower() for x in tags}:
                tags.append(t)
    if not entry.base_model_version:
        bm = pick("base_model", ("swarm", "cm-info", "civitai", "lora-manager", "a1111"))
        if bm:
            entry = replace(entry, base_model_version=str(bm))
    preview, source = "", ""
    pf = previews.find_preview_file(found.path, found.names)
    if pf is not None:
        preview, source = str(pf), pf.name
    elif meta.get("modelspec.thumbnail", "").startswith("data:"):
        got = previews.extract_embedded(
            found.path, found.mtime_ns, meta["modelspec.thumbnail"], "header", thumbs
        )
        if got is not None:
            preview, source = str(got), "modelspec.thumbnail (header)"
    if not preview and "swarm" in by_kind and by_kind["swarm"].thumbnail:
        got = previews.extract_embedded(
            found.path, found.mtime_ns, by_kind["swarm"].thumbnail, "swarm", thumbs
        )
        if got is not None:
            preview, source = str(got), "modelspec.thumbnail (.swarm.json)"
    slim = tuple(replace(c, thumbnail="", description=_cut(c.description, 4000)) for c in cars)
    return replace(
        entry,
        title=title,
        author=author,
        description=_cut(desc, 20_000),
        preferred_weight=weight,
        tags=tuple(tags[:50]),
        sidecars=slim,
        preview=preview,
        preview_source=source,
    )


# ----------------------------------------------------------------------------------------------
# The index
# ----------------------------------------------------------------------------------------------


def default_cache_path() -> Path:
    return user_dirs()["cache"] / "library" / "index.json"


def coverage_key(
    module_names: Iterable[str], shapes: Mapping[str, tuple[int, int]] | None = None
) -> str:
    if shapes:
        text = "\n".join(f"{m}={tuple(shapes[m])}" for m in sorted(shapes))
    else:
        text = "\n".join(sorted(module_names))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


_DEFAULT = object()


class LibraryIndex:
    """Incremental, cached index of LoRA files (see the module docstring).

    ``cache_path``: the JSON index cache (default: user cache folder; None: memory only).
    ``module_names``: the configured model's Linear module names for coverage, or its
    ``{module: (out, in)}`` shapes (:func:`zitdesk.lora.fit.model_linear_shapes`), which also
    makes a LoRA with other layer sizes incompatible (default: the real
    Z-Image Turbo set, :func:`zitdesk.models.zimage_tree.full_size_linear_names`).
    ``hash_cache``: a :class:`HashCache` (default: beside the index cache; None: memory only).
    """

    def __init__(
        self,
        cache_path: Any = _DEFAULT,
        module_names: Iterable[str] | None = None,
        hash_cache: Any = _DEFAULT,
        thumbs_dir: Path | None = None,
    ) -> None:
        from zitdesk.models.zimage_tree import full_size_linear_names

        self.cache_path: Path | None = (
            default_cache_path()
            if cache_path is _DEFAULT
            else (Path(cache_path) if cache_path is not None else None)
        )
        if hash_cache is _DEFAULT:
            # the one cache object for the user's hash file, shared with generation
            hash_cache = shared_cache() if self.cache_path is not None else HashCache(None)
        self.hashes: HashCache = hash_cache if hash_cache is not None else HashCache(None)
        self.thumbs_dir = thumbs_dir
        self._module_shapes: dict[str, tuple[int, int]] | None = (
            dict(module_names) if isinstance(module_names, Mapping) else None
        )
        self._module_names = (
            set(module_names) if module_names is not None else full_size_linear_names()
        )
        self._cov_key = coverage_key(self._module_names, self._module_shapes)
        self._lock = threading.RLock()
        self._entries: dict[str, LoraEntry] = {}
        self._keys: dict[str, list[Any]] = {}
        self._loaded = False
        self._dirty = False

    # -- configuration -------------------------------------------------------------------------
    @property
    def module_names(self) -> set[str]:
        return set(self._module_names)

    @property
    def module_shapes(self) -> dict[str, tuple[int, int]] | None:
        return dict(self._module_shapes) if self._module_shapes is not None else None

    def set_module_names(self, names: Iterable[str] | Mapping[str, tuple[int, int]] | None) -> bool:
        """Measure coverage against another model (its module names, or its ``{module: (out, in)}``
        shapes to check sizes too); the next scan re-reads every header."""
        from zitdesk.models.zimage_tree import full_size_linear_names

        shapes = dict(names) if isinstance(names, Mapping) else None
        new = set(names) if names is not None else full_size_linear_names()
        key = coverage_key(new, shapes)
        with self._lock:
            if key == self._cov_key:
                return False
            self._module_names, self._module_shapes, self._cov_key = new, shapes, key
            self._keys.clear()  # every entry is stale; keep them until rescanned
            self._dirty = True
        return True

    # -- access --------------------------------------------------------------------------------
    @property
    def entries(self) -> list[LoraEntry]:
        with self._lock:
            return list(self._entries.values())

    def get(self, path: str) -> LoraEntry | None:
        with self._lock:
            return self._entries.get(path)

    # -- cache ---------------------------------------------------------------------------------
    def _load_cache(self) -> None:
        self._loaded = True
        if self.cache_path is None or not self.cache_path.is_file():
            return
        try:
            doc = json.loads(self.cache_path.read_text(encoding="utf-8"))
            if doc.get("version") != INDEX_VERSION:
                return
            same_cov = doc.get("coverage_key") == self._cov_key
            for item in doc.get("entries", []):
                entry = LoraEntry.from_dict(item["entry"])
                self._entries[entry.path] = entry
                if same_cov:
                    self._keys[entry.path] = item["key"]
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("ignoring unreadable library cache %s: %s", self.cache_path, exc)
            self._entries.clear()
            self._keys.clear()

    def save(self) -> None:
        """Write the index cache (atomically) and the hash cache, if anything changed."""
        self.hashes.save()
        if self.cache_path is None:
            return
        with self._lock:
            if not self._dirty:
                return
            items = []
            for path, entry in self._entries.items():
                d = asdict(entry)
                d.pop("sha256", None)
                d.pop("addnet", None)
                d.pop("hash_error", None)
                items.append({"key": self._keys.get(path), "entry": d})
            doc = {"version": INDEX_VERSION, "coverage_key": self._cov_key, "entries": items}
            self._dirty = False
        try:
            atomic_write(
                self.cache_path, json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
            )
        except OSError as exc:
            log.warning("cannot save the library cache %s: %s", self.cache_path, exc)

    # -- scanning ------------------------------------------------------------------------------
    def scan(
        self,
        roots: Iterable[str | os.PathLike[str] | Root],
        *,
        cancel: Callable[[], bool] | None = None,
        progress: Callable[[int, int], None] | None = None,
        on_batch: Callable[[list[LoraEntry]], None] | None = None,
        save: bool = True,
    ) -> ScanResult:
        """Scan ``roots`` recursively and return every entry under them.

        ``progress(done, total)`` is called while files are read (from this thread);
        ``on_batch(entries)`` receives freshly read entries about 4 times a second during a cold
        scan, so a UI can show them before the scan ends. Entries of folders that are no longer
        scanned are dropped from the index.
        """
        t0 = time.perf_counter()
        root_objs = [r if isinstance(r, Root) else Root(str(r), "user") for r in roots]
        with self._lock:
            if not self._loaded:
                self._load_cache()
            found: list[_Found] = []
            missing: list[str] = []
            seen_paths: set[str] = set()
            for r in root_objs:
                if not os.path.isdir(r.path):
                    missing.append(r.path)
                    continue
                for f in walk(r.path, cancel):
                    if f.path not in seen_paths:
                        seen_paths.add(f.path)
                        found.append(f)
            result = ScanResult(entries=[], roots=root_objs, missing_roots=missing)
            old_paths = set(self._entries)
            new_entries: dict[str, LoraEntry] = {}
            new_keys: dict[str, list[Any]] = {}
            batch: list[LoraEntry] = []
            last_emit = last_progress = time.perf_counter()
            total = len(found)
            for i, f in enumerate(found):
                if cancel is not None and cancel():
                    result.cancelled = True
                    break
                key = f.key
                cached = self._entries.get(f.path)
                if cached is not None and self._keys.get(f.path) == key and _preview_ok(cached):
                    entry = cached
                    if entry.root != f.root:
                        entry = replace(entry, root=f.root)
                    result.reused += 1
                else:
                    entry = inspect_file(
                        f, self._module_names, self.thumbs_dir, self._module_shapes
                    )
                    result.inspected += 1
                    (result.changed if f.path in old_paths else result.added).append(f.path)
                    batch.append(entry)
                    self._dirty = True
                entry = self._with_hashes(entry)
                new_entries[f.path] = entry
                new_keys[f.path] = key
                now = time.perf_counter()
                if progress is not None and (now - last_progress > 0.1 or i + 1 == total):
                    progress(i + 1, total)
                    last_progress = now
                if on_batch is not None and batch and now - last_emit > 0.25:
                    on_batch(batch)
                    batch = []
                    last_emit = now
            if on_batch is not None and batch:
                on_batch(batch)
            if result.cancelled:
                # Keep what was not reached, so a cancelled scan loses nothing.
                for p, e in self._entries.items():
                    if p not in new_entries:
                        new_entries[p] = e
                        if p in self._keys:
                            new_keys[p] = self._keys[p]
            else:
                removed = sorted(old_paths - set(new_entries))
                result.removed = removed
                result.moved = self._detect_moves(removed, result.added, new_entries)
                if removed:
                    self._dirty = True
                self.hashes.prune(set(new_entries))
            self._entries, self._keys = new_entries, new_keys
            result.entries = list(new_entries.values())
        if save and not result.cancelled:
            self.save()
        result.elapsed_s = time.perf_counter() - t0
        return result

    def _detect_moves(
        self, removed: list[str], added: list[str], new: dict[str, LoraEntry]
    ) -> list[tuple[str, str]]:
        old_by_sig: dict[tuple[int, int, str], list[str]] = {}
        for p in removed:
            e = self._entries[p]
            old_by_sig.setdefault((e.size, e.mtime_ns, os.path.splitext(p)[1].lower()), []).append(
                p
            )
        moves = []
        for p in added:
            e = new[p]
            cands = old_by_sig.get((e.size, e.mtime_ns, os.path.splitext(p)[1].lower()), [])
            if len(cands) == 1:
                old = cands.pop()
                moves.append((old, p))
                self.hashes.move(old, p)
                new[p] = self._with_hashes(e)
        return moves

    def _with_hashes(self, entry: LoraEntry) -> LoraEntry:
        h = self.hashes.get(entry.path, entry.size, entry.mtime_ns)
        if h is None:
            if entry.sha256:
                return replace(entry, sha256="", addnet="")
            return entry
        if entry.sha256 == h.sha256 and entry.addnet == h.addnet:
            return entry
        return replace(entry, sha256=h.sha256, addnet=h.addnet, hash_error="")

    # -- hashes --------------------------------------------------------------------------------
    def hash_pending(self) -> list[LoraEntry]:
        """Entries whose hashes are not known yet (compatible ones first, then by name)."""
        with self._lock:
            pending = [e for e in self._entries.values() if not e.sha256 and not e.hash_error]
        pending.sort(key=lambda e: (not e.compatible, e.file_name.lower()))
        return pending

    def compute_hashes(
        self, path: str, cancelled: Callable[[], bool] | None = None
    ) -> LoraEntry | None:
        """Hash one file now (or take the cached hashes); returns the updated entry.

        Raises :class:`zitdesk.hashing.HashCancelled` when ``cancelled()`` turns true.
        A file that cannot be read gets ``hash_error`` instead of an exception.
        """
        with self._lock:
            entry = self._entries.get(path)
        if entry is None:
            return None
        try:
            h: FileHashes = self.hashes.compute(path, entry.size, entry.mtime_ns, cancelled)
            updated = replace(entry, sha256=h.sha256, addnet=h.addnet, hash_error="")
        except OSError as exc:
            updated = replace(
                entry, hash_error=f"Cannot hash {entry.file_name}: {exc.strerror or exc}."
            )
        with self._lock:
            if self._entries.get(path) is entry:
                self._entries[path] = updated
        return updated

    def duplicates(self) -> list[list[str]]:
        """Groups of paths with the same sha256 (identical files), largest groups first."""
        return _groups(self.entries, "sha256")

    def same_weights(self) -> list[list[str]]:
        """Groups with the same tensor data but different files (metadata edited or re-saved)."""
        groups = _groups(self.entries, "addnet")
        dup = {p for g in self.duplicates() for p in g}
        return [g for g in groups if not set(g) <= dup]


def _preview_ok(entry: LoraEntry) -> bool:
    """A decoded embedded thumbnail lives in the cache folder, which may have been cleaned."""
    return (
        not entry.preview
        or not entry.preview_source.startswith("modelspec.thumbnail")
        or os.path.exists(entry.preview)
    )


def _groups(entries: list[LoraEntry], attr: str) -> list[list[str]]:
    by: dict[str, list[str]] = {}
    for e in entries:
        v = getattr(e, attr)
        if v:
            by.setdefault(v, []).append(e.path)
    groups = [sorted(g) for g in by.values() if len(g) > 1]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups


def index_document(result: ScanResult, index: LibraryIndex, store: Any = None) -> dict[str, Any]:
    """The JSON document printed by ``zitdesk lora scan --json``."""
    records = store.records() if store is not None else {}
    entries = []
    for e in sorted(result.entries, key=lambda e: e.path):
        d = e.to_dict()
        rec = records.get(e.path)
        if rec is not None and not rec.is_empty:
            d["user"] = {
                "favourite": rec.favourite,
                "rating": rec.rating,
                "notes": rec.notes,
                "preview": rec.preview,
            }
        entries.append(d)
    return {
        "version": INDEX_VERSION,
        "roots": [{"path": r.path, "origin": r.origin} for r in result.roots],
        "missing_roots": result.missing_roots,
        "count": len(result.entries),
        "compatible": sum(1 for e in result.entries if e.compatible),
        "errors": sum(1 for e in result.entries if e.status == "error"),
        "unsupported": sum(1 for e in result.entries if e.status == "unsupported"),
        "inspected": result.inspected,
        "reused": result.reused,
        "elapsed_s": round(result.elapsed_s, 3),
        "coverage_against": "model" if index.module_names != _full_names() else "z-image-turbo",
        "duplicates": index.duplicates(),
        "same_weights": index.same_weights(),
        "entries": entries,
    }


def _full_names() -> set[str]:
    from zitdesk.models.zimage_tree import full_size_linear_names

    return full_size_linear_names()
