"""Import files, folders and ``.zip`` archives into a managed dataset folder.

Sources are only ever opened for reading. For each image the caption sidecar beside it comes
along (``name.txt``, else ``name.caption``; a ``.txt`` wins when both exist and the report says
so). Caption bytes are copied exactly when they are UTF-8 (BOM and CRLF kept); other encodings
are decoded as Windows-1252 and written as UTF-8 (reported). A ``.caption`` becomes ``.txt``.

Image rules (kept vs converted vs rejected) are in :mod:`zitdesk.dataset.images`. Names:

* Folders are walked recursively (hidden files and folders skipped) and flattened.
* A name that is taken in the target, by an image *or* a caption with the same stem (two images
  with one stem would share one caption), gets ``-2``, ``-3``… before the extension. Nothing in
  the target is ever overwritten: files are linked into place, which fails if the name exists.
* Characters Windows forbids (``<>:"/\\|?*`` and control characters) become ``_``; Unicode and
  spaces are kept.
* An image whose bytes and caption are both already in the dataset is skipped ("already in the
  dataset"), so running the same import twice adds nothing.

Archive entries whose path is absolute or contains ``..`` are rejected (never extracted anywhere:
entries are read into memory and named by their base name only); so are links, entries larger
than ``max_file_bytes`` and nested archives. A member that cannot be read (encrypted, bad CRC,
an unknown compression method, a corrupt stream, a size that lies) is skipped with its reason
like any bad file.

An import is all-or-report: every source ends up imported or in the report's ``skipped`` with a
reason, and the index is written for what was imported even when something fails on the way
(``errors`` says what could not be done). Running it again adds nothing: images already in the
folder are recognised by their content (from the index, else by hashing files of the same size,
e.g. after a killed import); a missing caption is added beside such an image.

Memory: files are read in chunks, and all workers together hold at most ``memory_budget`` bytes
of file data and decoded pixels (one file beyond it when a single file is larger: the one the
writer waits for). A file whose first bytes are no image format is rejected without being read.

Names: a name that would not fit the file system with ``-2`` or the caption's ``.txt`` is
shortened (reported as renamed).

Work is spread over a thread pool (Pillow and hashlib release the GIL); results are written in
source order, so names are deterministic. Thumbnails go to the shared thumbnail cache and the
hashes into ``.zitdesk/index.json``, so opening the dataset afterwards costs no decoding.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from zitdesk.dataset.budget import DEFAULT_MEMORY_BUDGET, ByteBudget, Held
from zitdesk.dataset.collect import (
    CAPTION_EXTS,
    DEFAULT_MAX_FILE_BYTES,
    MAX_CAPTION_BYTES,
    Candidate,
    collect,
    decode_estimate,
    read_caption,
    read_image,
)
from zitdesk.dataset.fsnames import os_error_sentence, shown
from zitdesk.dataset.images import DEFAULT_MAX_PIXELS, ImageRejected, Prepared, prepare
from zitdesk.dataset.import_report import Imported, ImportReport, Skipped
from zitdesk.dataset.placing import Names, caption_bytes, known_content, safe_stem, write_one
from zitdesk.dataset.store import merge_index_entries
from zitdesk.errors import RequestError
from zitdesk.io import create_temp, fsync_dir

__all__ = [
    "CAPTION_EXTS",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MEMORY_BUDGET",
    "MAX_CAPTION_BYTES",
    "ImportReport",
    "Imported",
    "Skipped",
    "collect",
    "import_sources",
    "safe_stem",
]

log = logging.getLogger(__name__)


def _work(
    cand: Candidate, max_pixels: int, max_file_bytes: int, held: Held
) -> tuple[Prepared | None, str, bytes | None, str, str]:
    """Worker: read + prepare the image and pick the caption. Returns
    (prepared, rejection reason, caption bytes, caption source, caption note). What it keeps
    in memory stays taken from the budget until the writer gives it back."""
    try:
        data = read_image(cand, max_file_bytes, held)
        est = decode_estimate(data, max_pixels)
        held.take(est)
        try:
            prep = prepare(data, source_ext=cand.ext, max_pixels=max_pixels)
        finally:
            held.give(est)
    except ImageRejected as exc:
        held.give()
        return None, str(exc), None, "", ""
    if prep.data is not data:
        held.give(len(data))
        del data
        held.take(len(prep.data))
    cap, cap_src, note = None, "", ""
    if cand.captions:
        label, reader = cand.captions[0]
        try:
            cap, note = caption_bytes(read_caption(reader))
            cap_src = label
        except ImageRejected as exc:
            note = f"caption {shown(label)} cannot be read ({exc}); imported without it"
        if len(cand.captions) > 1:
            used = Path(label.split("!")[-1]).name
            note = "; ".join(
                x for x in (note, f"{len(cand.captions)} caption files; {used} used") if x
            )
    return prep, "", cap, cap_src, note


def _work_safe(
    cand: Candidate, max_pixels: int, max_file_bytes: int, held: Held
) -> tuple[Prepared | None, str, bytes | None, str, str]:
    """:func:`_work`, with any failure it did not foresee as the file's rejection reason (one
    bad file never aborts an import)."""
    try:
        return _work(cand, max_pixels, max_file_bytes, held)
    except Exception as exc:  # noqa: BLE001
        log.debug("import of %s failed", cand.label, exc_info=True)
        held.give()
        return None, f"cannot be imported ({type(exc).__name__}: {exc})", None, "", ""


def _check_writable(tgt: Path) -> None:
    """Refuse a folder nothing can be written into (read-only disk, no permission) before any
    work, with one sentence, instead of reporting every file as not writable."""
    try:
        fd, tmp = create_temp(tgt / ".zitdesk-import-check")
    except OSError as exc:
        raise RequestError(
            os_error_sentence(
                exc, f"images in the dataset folder {shown(str(tgt))}", verb="saved", kept=False
            )
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def import_sources(
    sources: Sequence[str | os.PathLike[str]],
    target: str | os.PathLike[str],
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    workers: int | None = None,
    thumb_cache: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> ImportReport:
    """Copy ``sources`` into the dataset folder ``target`` (created if needed); see module doc.

    ``progress(done, total)`` is called from this thread; ``cancel()`` is polled between files
    (files already written stay, and the report lists them). Raises :class:`RequestError` if the
    target is unusable; after that, whatever happens, the report and the index are written for
    what was imported.
    """
    tgt = Path(target)
    if tgt.exists() and not tgt.is_dir():
        raise RequestError(f"The import target {shown(str(tgt))} is a file, not a folder.")
    for s in sources:
        sp = Path(s)
        if sp.is_dir() and sp.resolve() == tgt.resolve():
            raise RequestError(
                f"{shown(str(sp))} is the dataset folder itself; import from another folder."
            )
    try:
        tgt.mkdir(parents=True, exist_ok=True)
        names = Names(tgt)
    except OSError as exc:
        raise RequestError(
            os_error_sentence(
                exc, f"the dataset folder {shown(str(tgt))}", verb="created", kept=False
            )
        ) from None
    _check_writable(tgt)
    report = ImportReport(str(tgt))
    cands, skipped = collect(sources, tgt, max_file_bytes)
    report.skipped.extend(skipped)
    known = known_content(tgt, {c.size for c in cands})
    index_entries: dict[str, dict] = {}
    n_workers = workers or max(3, min(8, (os.cpu_count() or 2) + 1))  # + the writer's I/O waits
    window = n_workers * 3
    budget = ByteBudget(memory_budget)
    done = 0
    if progress:
        progress(0, len(cands))
    pool = ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="zitdesk-import")
    futures: list[tuple[Candidate, Held, Future]] = []
    try:
        seq = 0

        def submit(c: Candidate) -> None:
            nonlocal seq
            held = Held(budget, seq)
            seq += 1
            futures.append((c, held, pool.submit(_work_safe, c, max_pixels, max_file_bytes, held)))

        it = iter(cands)
        for c in it:
            submit(c)
            if len(futures) >= window:
                break
        while futures:
            cand, held, fut = futures.pop(0)
            budget.set_head(held.seq)
            if cancel is not None and cancel():
                report.cancelled = True
                futures.insert(0, (cand, held, fut))
                break
            nxt = next(it, None)
            if nxt is not None:
                submit(nxt)
            prep, reason, cap, cap_src, note = fut.result()
            done += 1
            try:
                if prep is None:
                    report.skipped.append(Skipped(cand.label, reason))
                else:
                    write_one(
                        cand,
                        prep,
                        cap,
                        cap_src,
                        note,
                        tgt,
                        names,
                        known,
                        report,
                        index_entries,
                        thumb_cache,
                    )
            except Exception as exc:  # noqa: BLE001 - reported; the import goes on
                log.debug("writing %s failed", cand.label, exc_info=True)
                report.skipped.append(Skipped(cand.label, f"cannot be written ({exc})"))
            finally:
                held.give()
                del prep
            if progress:
                progress(done, len(cands))
    finally:
        budget.close()  # nobody waits on a budget the writer no longer frees
        for _c, _h, f in futures:
            f.cancel()
        pool.shutdown(wait=True)
        for _c, h, _f in futures:
            h.give()
        if index_entries:
            try:
                fsync_dir(tgt)
                merge_index_entries(tgt, index_entries)
            except OSError as exc:
                report.errors.append(
                    os_error_sentence(exc, "the dataset index", kept=False)
                    + " The imported files are in place; opening the dataset "
                    "rebuilds it."
                )
    return report
