"""Screenshots of the Datasets workspace alone under Xvfb: table, grid, bulk-edit preview,
statistics.

    .venv/bin/python scripts/datasets_screenshots.py [--out out/screenshots/datasets] [--no-tokenizer]

Builds a sample dataset (:func:`build_dataset`: varied sizes, missing and long captions, a
duplicate and a near duplicate, a far-too-small image) in a temporary ``ZITDESK_HOME``, opens it
in a themed ``DatasetsWorkspace`` and saves PNGs. The same dataset inside the window, at
1366×768 and 2560×1440, is ``scripts/screenshots.py --only datasets`` (docs/img). Xvfb, the app
and saving come from :mod:`shotkit`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from shotkit import pump, sample_image, save_png, start_xvfb, stop_xvfb, themed_app  # noqa: E402
from shotkit import wait_until as _wait  # noqa: E402

CAPTIONS = [
    "a tabby cat sitting on a wooden windowsill, morning light, soft focus background",
    "close-up portrait of a tabby cat, green eyes, whiskers, shallow depth of field",
    "tabby cat, sleeping, curled up, knitted blanket, cozy, warm tones",
    "a tabby cat stretching on a sunny balcony, potted plants, city rooftops behind",
    "tabby cat, outdoors, grass, looking up, daylight",
    "a cat playing with a red ball of yarn on a grey sofa",
    None,
    "tabby cat on a kitchen counter, stainless steel, bright, overhead light",
    "",
    "ohwx, tabby cat, black and white photo, film grain, dramatic shadows",
    "a tabby cat peeking out of a cardboard box, curious, indoor",
    "tabby cat, garden, flowers, bokeh, golden hour, tabby cat",
]


def build_dataset(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [
        (1024, 1024),
        (832, 1216),
        (1216, 832),
        (1024, 1024),
        (896, 1152),
        (1024, 768),
        (1024, 1024),
        (768, 1344),
        (1152, 896),
        (1024, 1024),
        (512, 512),
        (1024, 1024),
    ]
    for i, (cap, (w, h)) in enumerate(zip(CAPTIONS, sizes, strict=True)):
        name = f"cat {i + 1:02d}"
        sample_image(w, h, i).save(folder / f"{name}.jpg", quality=88)
        if cap is not None:
            (folder / f"{name}.txt").write_text(cap, encoding="utf-8")
    shutil.copy(folder / "cat 03.jpg", folder / "cat 03 copy.jpg")  # exact duplicate
    (folder / "cat 03 copy.txt").write_text(CAPTIONS[2], encoding="utf-8")
    from PIL import Image

    with Image.open(folder / "cat 05.jpg") as im:  # near duplicate
        im.resize((448, 576)).save(folder / "cat 05 small.jpg", quality=70)
    (folder / "cat 05 small.txt").write_text("tabby cat, outdoors, grass", encoding="utf-8")
    long = ", ".join(
        f"detail {k} of the fur pattern and the light on the whiskers" for k in range(60)
    )
    sample_image(1024, 1024, 40).save(folder / "cat 13 long.png")
    (folder / "cat 13 long.txt").write_text("tabby cat, " + long, encoding="utf-8")
    sample_image(40, 40, 41).save(folder / "cat 14 tiny.png")  # far below the size
    (folder / "cat 14 tiny.txt").write_text("tabby cat, thumbnail", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "out" / "screenshots" / "datasets"))
    ap.add_argument("--no-tokenizer", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    xvfb = start_xvfb()
    home = Path(tempfile.mkdtemp(prefix="zitdesk-shots-"))
    os.environ["ZITDESK_HOME"] = str(home)
    try:
        return _shoot(out, home, not args.no_tokenizer)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        stop_xvfb(xvfb)


def _shoot(out: Path, home: Path, tokens: bool) -> int:
    from ui.datasets.session import default_tokenizer_loader
    from ui.datasets.table_model import Col
    from ui.datasets.workspace import DatasetsWorkspace

    themed_app()
    folder = home / "datasets" / "tabby-cat"
    build_dataset(folder)
    ws = DatasetsWorkspace(
        folder=folder, tokenizer_loader=default_tokenizer_loader if tokens else None, remember=False
    )
    ws.setWindowTitle("zitdesk — Datasets")
    ws.resize(1560, 900)
    ws.show()
    _wait(lambda: ws.session.dataset is not None, 20, "the dataset to open")
    ws.stats.trigger.setText("ohwx")
    ws.stats._on_trigger()
    m = ws.model

    def ready() -> bool:
        rep = ws.stats.report
        if rep is None or ws.session.checking or rep.options.trigger != "ohwx":
            return False
        if tokens and m.tokens(m.item(0).name) is None:
            return False
        return all(m.index(r, Col.THUMB).data(1) is not None for r in range(min(m.rowCount(), 10)))

    def all_thumbs() -> bool:
        grid = ws.grid.grid.model()
        return all(grid.index(r, Col.THUMB).data(1) is not None for r in range(m.rowCount()))

    _wait(ready, 60, strict=False)
    ws.select_row(1)
    ws.splitter.setSizes([1130, 430])
    save_png(ws, out / "table.png", 400)
    ws.show_grid()
    ws.select_row(3)
    _wait(all_thumbs, 2, strict=False)
    save_png(ws, out / "grid.png", 300)
    ws.show_table()
    dlg = ws.open_bulk_edit(op=0)
    dlg.trigger.setText("ohwx")
    dlg.scope_buttons["all"].setChecked(True)
    dlg.refresh()
    save_png(dlg, out / "bulk_preview.png", 300)
    dlg.op_combo.setCurrentIndex(1)
    dlg.find.setText("tabby cat")
    dlg.replace.setText("ohwx cat")
    dlg.refresh()
    save_png(dlg, out / "bulk_find_replace.png", 300)
    dlg.reject()
    ws.stats.resize(420, 880)
    ws.splitter.setSizes([1000, 560])
    pump(300)
    save_png(ws.stats, out / "statistics.png", 300)
    ws.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
