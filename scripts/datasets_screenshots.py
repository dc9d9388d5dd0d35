"""Screenshots of the Datasets workspace under Xvfb: table, grid, bulk-edit preview, statistics.

    .venv/bin/python scripts/datasets_screenshots.py [--out out/screenshots/datasets] [--no-tokenizer]

Builds a sample dataset in a temporary ``ZITDESK_HOME`` (varied sizes, missing and long
captions, a duplicate and a near duplicate, a low-resolution image), opens it in a themed
``DatasetsWorkspace`` and saves PNGs. Needs Xvfb unless ``DISPLAY`` is set.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

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


def start_xvfb() -> subprocess.Popen | None:
    if os.environ.get("DISPLAY") or not shutil.which("Xvfb"):
        return None
    for n in range(121, 140):
        if Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
            continue
        proc = subprocess.Popen(
            ["Xvfb", f":{n}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(50):
            if Path(f"/tmp/.X11-unix/X{n}").exists():
                os.environ["DISPLAY"] = f":{n}"
                return proc
            time.sleep(0.1)
        proc.terminate()
    raise SystemExit("could not start Xvfb")


def sample_image(w: int, h: int, seed: int):
    from PIL import Image, ImageDraw, ImageFilter

    rng = random.Random(seed)
    c1 = tuple(rng.randrange(40, 200) for _ in range(3))
    c2 = tuple(rng.randrange(40, 220) for _ in range(3))
    im = Image.new("RGB", (w, h), c1)
    d = ImageDraw.Draw(im)
    for y in range(0, h, 4):
        t = y / h
        d.rectangle(
            [0, y, w, y + 4],
            fill=tuple(int(a * (1 - t) + b * t) for a, b in zip(c1, c2, strict=True)),
        )
    for _ in range(6):
        x, y, r = rng.randrange(w), rng.randrange(h), rng.randrange(w // 10, w // 3)
        col = tuple(rng.randrange(0, 255) for _ in range(3))
        (d.ellipse if rng.random() < 0.6 else d.rectangle)([x - r, y - r, x + r, y + r], fill=col)
    return im.filter(ImageFilter.GaussianBlur(max(1, w // 200)))


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
    ap.add_argument(
        "--laptop-out",
        default="",
        help="also save the workspace at 1366×768 here (datasets-1366-*.png)",
    )
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    xvfb = start_xvfb()
    home = Path(tempfile.mkdtemp(prefix="zitdesk-shots-"))
    os.environ["ZITDESK_HOME"] = str(home)
    sys.path.insert(0, str(ROOT))
    try:
        return _shoot(
            out, home, not args.no_tokenizer, Path(args.laptop_out) if args.laptop_out else None
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(5)


def _shoot(out: Path, home: Path, tokens: bool, laptop: Path | None = None) -> int:
    from PySide6.QtCore import QCoreApplication, QElapsedTimer
    from PySide6.QtWidgets import QApplication

    from ui.datasets.session import default_tokenizer_loader
    from ui.datasets.table_model import Col
    from ui.datasets.workspace import DatasetsWorkspace

    QCoreApplication.setOrganizationName("zitdesk-screenshots")
    app = QApplication.instance() or QApplication(["zitdesk"])
    try:
        from ui.theme import apply_dark_theme

        apply_dark_theme(app)
    except ImportError:
        pass
    folder = home / "datasets" / "tabby-cat"
    build_dataset(folder)

    def pump(ms: int, until=None) -> None:
        t = QElapsedTimer()
        t.start()
        while t.elapsed() < ms:
            app.processEvents()
            if until is not None and until():
                break
            time.sleep(0.01)

    ws = DatasetsWorkspace(
        folder=folder, tokenizer_loader=default_tokenizer_loader if tokens else None, remember=False
    )
    ws.setWindowTitle("zitdesk — Datasets")
    ws.resize(1560, 900)
    ws.show()
    pump(20_000, lambda: ws.session.dataset is not None)
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

    pump(60_000, ready)
    if laptop is not None:  # a populated workspace at a laptop's 1366×768
        laptop.mkdir(parents=True, exist_ok=True)
        ws.select_name("cat 05 small.jpg")
        ws.table.selectRow(ws._current_row())
        ws.toggle_excluded()  # one image excluded from training
        ws.resize(1366, 768)
        ws.select_row(1)
        pump(800)
        ws.grab().save(str(laptop / "datasets-1366-table.png"))
        ws.show_grid()
        ws.select_name("cat 14 tiny.png")
        pump(
            1500,
            lambda: all(
                ws.grid.grid.model().index(r, Col.THUMB).data(1) is not None
                for r in range(m.rowCount())
            ),
        )
        pump(300)
        ws.grab().save(str(laptop / "datasets-1366-grid.png"))
        ws.show_table()
        ws.resize(1560, 900)
        ws.undo_action.trigger()
    ws.select_row(1)
    ws.splitter.setSizes([1130, 430])
    pump(400)
    ws.grab().save(str(out / "table.png"))
    ws.show_grid()
    ws.select_row(3)
    pump(
        1500,
        lambda: all(
            ws.grid.grid.model().index(r, Col.THUMB).data(1) is not None
            for r in range(m.rowCount())
        ),
    )
    pump(300)
    ws.grab().save(str(out / "grid.png"))
    ws.show_table()
    dlg = ws.open_bulk_edit(op=0)
    dlg.trigger.setText("ohwx")
    dlg.scope_buttons["all"].setChecked(True)
    dlg.refresh()
    pump(300)
    dlg.grab().save(str(out / "bulk_preview.png"))
    dlg.op_combo.setCurrentIndex(1)
    dlg.find.setText("tabby cat")
    dlg.replace.setText("ohwx cat")
    dlg.refresh()
    pump(300)
    dlg.grab().save(str(out / "bulk_find_replace.png"))
    dlg.reject()
    ws.stats.resize(420, 880)
    ws.splitter.setSizes([1000, 560])
    pump(300)
    ws.stats.grab().save(str(out / "statistics.png"))
    ws.shutdown()
    for p in sorted(out.glob("*.png")):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
