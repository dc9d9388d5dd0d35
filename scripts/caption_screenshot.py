"""Screenshot of the Datasets "Caption…" dialog with a preview, under Xvfb at 1366×768.

    .venv/bin/python scripts/caption_screenshot.py [--out docs/img]

Builds the Datasets sample dataset (scripts/datasets_screenshots.py) and a tiny WD-layout ONNX
tagger with a few cat-photo tags (tests/support/caption_models.py; scores follow the image's
colours), opens the dataset in the window's Datasets workspace with a real engine thread, opens
the caption dialog (append mode), runs its preview and saves the whole screen as
``caption-dialog-1366.png`` (the dialog over the window) and ``caption-dialog.png`` (the dialog).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import shotkit  # noqa: E402
from shotkit import pump, start_xvfb, stop_xvfb, themed_app, wait_until  # noqa: E402

shotkit.SCREEN = "1366x768x24"

SHOT_TAGS = [
    ("general", 9, 0.9),
    ("sensitive", 9, 0.1),
    ("questionable", 9, 0.02),
    ("explicit", 9, 0.01),
    ("cat", 0, 0.97),
    ("no_humans", 0, 0.93),
    ("animal_focus", 0, 0.81),
    ("warm_colors", 0, 2),
    ("greenery", 0, 1),
    ("blue_theme", 0, 0),
    ("blurry_background", 0, 0.52),
    ("whiskers", 0, 0.44),
    ("1girl", 0, 0.03),
]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="zit-caption-shot-"))
    os.environ["ZITDESK_HOME"] = str(tmp / "home")
    xvfb = start_xvfb()
    try:
        from datasets_screenshots import build_dataset
        from PySide6.QtWidgets import QApplication

        from tests.support.caption_models import make_tiny_tagger
        from tests.support.dataset_window import close_dataset_window, dataset_window
        from zitdesk.settings import AppSettings

        themed_app()
        folder = tmp / "tabby-cat"
        build_dataset(folder)
        tagger = make_tiny_tagger(tmp / "models" / "wd-vit-tagger-v3", tags=SHOT_TAGS)
        win, ws = dataset_window(folder, tmp, AppSettings(caption_tagger_path=str(tagger)))
        win.setWindowTitle("zitdesk")
        win.setGeometry(0, 0, 1366, 768)
        win.show()
        wait_until(lambda: ws.session.dataset is not None, what="the dataset to open")
        pump(800)
        dlg = ws.open_caption_dialog()
        dlg.mode.setCurrentIndex(1)  # append the tags to the captions
        dlg.exclude.setText("1girl")
        dlg.move((1366 - dlg.width()) // 2, (768 - dlg.height()) // 2)
        dlg.preview_button.click()
        wait_until(lambda: not dlg.running, what="the preview")
        pump(600)
        out = Path(args.out) / "caption-dialog-1366.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        shot = QApplication.primaryScreen().grabWindow(0)
        shot.save(str(out), "PNG")
        print(f"wrote {out} ({shot.width()}×{shot.height()})")
        alone = Path(args.out) / "caption-dialog.png"
        dlg.grab().save(str(alone), "PNG")
        print(f"wrote {alone} ({dlg.width()}×{dlg.height()})")
        dlg.close()
        close_dataset_window(win, ws)
    finally:
        stop_xvfb(xvfb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
