"""Screenshots of the LoRA Library over a sample library (a dozen mixed LoRAs).

    xvfb-run -a .venv/bin/python scripts/library_screenshots.py [OUT_DIR]
    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/library_screenshots.py [OUT_DIR]

The Library workspace alone (no main window), at 1500×900; ``scripts/screenshots.py --only
library`` shoots it inside the window at 1366×768 and 2560×1440 for docs/img.

Writes ``library_grid.png``, ``library_list.png``, ``library_details.png`` (a usable kohya LoRA
with an A1111 sidecar), ``library_incompatible.png`` (an SDXL file, greyed with the reason) and
``library_filtered.png`` (search + "usable" filter) to OUT_DIR (default ``out/screenshots``).
Everything lives in a temp folder (``ZITDESK_HOME`` too): no real files are touched.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from shotkit import save_png, themed_app  # noqa: E402


def _pump(app, seconds: float, until=None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        if until is not None and until():
            for _ in range(5):
                app.processEvents()
                time.sleep(0.02)
            return
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = Path(argv[0]) if argv else Path("out/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="zitdesk-libshot-"))
    os.environ["ZITDESK_HOME"] = str(work / "home")

    from PySide6.QtCore import QThreadPool

    from tests.support.samples import build_sample_library
    from ui.library import LibraryWorkspace
    from zitdesk.library.store import LibraryStore

    lib = work / "library"
    files = build_sample_library(lib)
    app = themed_app()
    store = LibraryStore()
    cat = next(str(p) for p in files if p.name.startswith("cat_character"))
    store.set_favourite(cat, True)
    store.set_rating(cat, 4)
    store.set_notes(cat, "Best at 0.8; add 'sitting' for full body.")
    store.set_favourite(next(str(p) for p in files if p.name.startswith("zit_watercolor")), True)
    ws = LibraryWorkspace(store=store, folders=[str(lib)], auto_roots=False, watch=False)
    ws.setWindowTitle("zitdesk — LoRA Library")
    ws.resize(1500, 900)
    ws.show()
    ws.start()
    c = ws.controller
    _pump(app, 20, lambda: not c.scanning and not c.hashing and ws.model.rowCount() > 0)
    _pump(app, 1.0)

    def shot(name: str) -> None:
        _pump(app, 0.6)
        save_png(ws, out / name, 0)

    ws.select(cat)
    shot("library_grid.png")
    # the details pane alone, scrolled to the sidecars and metadata
    ws.select(next(str(p) for p in files if p.name.startswith("anime_lines")))
    _pump(app, 0.6)
    info = ws.details.info
    cursor = info.document().find("Sidecar files:")
    if not cursor.isNull():
        info.setTextCursor(cursor)
        info.verticalScrollBar().setValue(
            info.cursorRect().top() + info.verticalScrollBar().value() - 4
        )
    _pump(app, 0.3)
    save_png(ws.details, out / "library_details.png", 0)
    ws.set_view_mode("list")
    shot("library_list.png")
    ws.set_view_mode("grid")
    sdxl = next(str(p) for p in files if p.name.startswith("sdxl_"))
    ws.select(sdxl)
    shot("library_incompatible.png")
    ws.arch_combo.setCurrentIndex(ws.arch_combo.findData("usable"))
    ws.search.setText("mochi")
    ws.select(cat)
    shot("library_filtered.png")
    ws.shutdown()
    QThreadPool.globalInstance().waitForDone(5000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
