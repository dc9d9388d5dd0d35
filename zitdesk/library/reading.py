"""Reading one library file into its :class:`~zitdesk.library.entry.LoraEntry`.

:func:`inspect_file` reads the safetensors header (:mod:`zitdesk.lora.inspect`, header only plus
the few bytes of scalar ``.alpha`` tensors), metadata of every dialect (kohya ``ss_*``,
``modelspec.*``, ai-toolkit/zitdesk keys), every sidecar and a preview; it never raises (problems
become the entry's ``status``/``error``). Pickle-based and GGUF files are *unsupported* and never
opened. :func:`merge_trigger_words` ranks trigger words by source; :func:`choose_title` names
zitdesk-trained files after their run.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from zitdesk.errors import LoraError
from zitdesk.library import previews, sidecars
from zitdesk.library.entry import LoraEntry, TriggerWord
from zitdesk.library.sidecars import Sidecar
from zitdesk.library.walk import OTHER_EXTS, UNSAFE_EXTS, Found, file_stem

log = logging.getLogger(__name__)

META_VALUE_LIMIT = 1000  # metadata values kept in the index (the details pane re-reads)
TOP_TAGS = 20


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
    stem = file_stem(os.path.basename(path))
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


def _unsupported_entry(found: Found) -> LoraEntry:
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
    found: Found,
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
        value_verdict,
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
        if ok:
            ok, message = value_verdict(header, info, message)
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
    entry: LoraEntry, cars: list[Sidecar], meta: dict[str, str], found: Found, thumbs: Path | None
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
