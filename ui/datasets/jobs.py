"""Pool-side jobs of the :class:`~ui.datasets.session.DatasetSession` (no Qt): open a folder,
flush (journal, captions, index), count caption tokens, run the check. Each runs on the
session's :class:`ui.tasks.TaskRunner`; the results come back to the GUI thread as plain objects.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from zitdesk.dataset.check import CheckOptions, analyse_missing, caption_token_counts, check_items
from zitdesk.dataset.fsnames import os_error_sentence
from zitdesk.dataset.history import History, Replayed
from zitdesk.dataset.store import Dataset, FlushReport
from zitdesk.train.dataset import DatasetItem, apply_trigger


def default_tokenizer_loader() -> Any:
    """The bundled Qwen3 tokenizer via ``tokenizers`` only (no transformers/torch import, whose
    C initialisation would hold the GIL and freeze the GUI for most of a second)."""
    from zitdesk.dataset.check import fast_tokenizer

    return fast_tokenizer()


_TOK_LOCK = threading.Lock()


def load_tokenizer(loader, tok) -> Any:
    """The loaded tokenizer, loading it once; two jobs importing transformers at the same time
    can see a half-initialised module (seen: "cannot import name 'AutoTokenizer'")."""
    if tok is not None:
        return tok
    with _TOK_LOCK:
        return loader()


def open_job(folder: str) -> tuple[Dataset, Replayed]:
    ds = Dataset.open(folder)
    return ds, History(ds.meta_dir).load()


def flush_job(ds: Dataset, hist: History) -> FlushReport:
    """Write the journal, the captions and the index. A journal that cannot be written never
    holds the captions back: they are written anyway (the journal keeps its lines queued for
    the next flush) and the report carries the journal's sentence."""
    journal_error: str | None = None
    try:
        hist.flush()
    except OSError as exc:
        journal_error = str(exc)  # SaveFailed: one sentence
    rep = ds.flush()
    if journal_error is not None:
        rep.errors.insert(0, journal_error)
    try:
        ds.save_index()
    except OSError as exc:
        rep.errors.append(os_error_sentence(exc, "the dataset index"))
    return rep


def count_job(
    tok_loader, tok, pairs: list[tuple[str, str]], gate=None
) -> tuple[Any, dict[str, int], int]:
    tok = load_tokenizer(tok_loader, tok)
    counts, template = caption_token_counts(
        [c for _, c in pairs], tok, gate.wait if gate is not None else None
    )
    return tok, {n: c for (n, _), c in zip(pairs, counts, strict=True)}, template


def check_job(
    folder: str, rows, names, cached, opts: CheckOptions, tok_loader, tok, progress, gate=None
):
    root = Path(folder)
    items = [
        DatasetItem(root / n, cap, root / cn if has else None, w, h)
        for n, cap, cn, has, w, h in rows
    ]
    # one hashing thread: the check is background work, the GUI thread must keep the GIL close
    got = analyse_missing(
        root, names, cached, progress, workers=1, between=gate.wait if gate is not None else None
    )
    if gate is not None:
        gate.wait()
    sha = [got.get(n, (None, None))[0] for n in names]
    ph = [got.get(n, (None, None))[1] for n in names]
    counts = None
    if tok_loader is not None or tok is not None:
        tok = load_tokenizer(tok_loader, tok)
        counts = caption_token_counts(
            [apply_trigger(it.caption, opts.trigger) for it in items],
            tok,
            gate.wait if gate is not None else None,
        )
    rep = check_items(folder, items, opts, sha=sha, phash=ph, token_counts=counts)
    return rep, got, tok
