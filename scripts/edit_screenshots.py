"""Screenshots of Generate's edit modes under Xvfb at 1366×768 (docs/img):

* ``edit-mask-painter-1366.png``: the mask painter over an init image, a painted area and the
  canvas extended 256 px to the right (outpaint);
* ``edit-controlnet-1366.png``: the window with the edit section open: an init image and a
  ControlNet (a tiny Z-Image ControlNet file, checked) with its control picture and canny map.

    .venv/bin/python scripts/edit_screenshots.py [--out docs/img]

Runs in a temporary ``ZITDESK_HOME`` with the scripted demo engine (no model is run); building
the tiny ControlNet file needs torch.
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

from shotkit import pump, sample_image, save_png, start_xvfb, stop_xvfb, themed_app, wait_until  # noqa: E402


def street_layout(w: int, h: int):
    """A sharp-edged picture (houses, a road, a moon) for the canny map."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (w, h), (40, 60, 90))
    d = ImageDraw.Draw(im)
    d.rectangle([0, int(h * 0.7), w, h], fill=(70, 70, 75))
    for i, x in enumerate(range(30, w - 120, 170)):
        top = int(h * (0.3 + 0.08 * (i % 3)))
        d.rectangle([x, top, x + 130, int(h * 0.7)], fill=(150 + 20 * (i % 3), 110, 90))
        d.polygon([(x - 10, top), (x + 65, top - 60), (x + 140, top)], fill=(110, 50, 40))
        d.rectangle([x + 45, int(h * 0.55), x + 85, int(h * 0.7)], fill=(60, 40, 30))
    d.ellipse([w - 150, 40, w - 70, 120], fill=(235, 230, 200))
    d.line([(0, int(h * 0.85)), (w, int(h * 0.85))], fill=(220, 220, 120), width=6)
    return im


def shoot(out: Path, home: Path) -> None:
    from demo_engine import demo_window
    from PySide6.QtCore import QPointF

    from tests.support.controlnet import make_tiny_controlnet

    themed_app()
    pics = home / "pictures"
    pics.mkdir(parents=True)
    init = pics / "harbour-at-dusk.png"
    sample_image(832, 640, 7).save(init)
    control = pics / "street-layout.png"
    street_layout(832, 640).save(control)
    net = make_tiny_controlnet(home / "Z-Image-Turbo-Fun-Controlnet-Union-2.1.safetensors", "file")

    win, _engine, _settings = demo_window(home)
    ws = win.generate
    form = ws.form
    form.prompt.set_text("a harbour at dusk, fishing boats, warm lights on the water, film photo")
    edit = ws.edit
    edit.section.expand()
    form.advanced.collapse()
    edit.panel.set_init_image(str(init))
    wait_until(lambda: not edit.panel.init_slot.pixmap().isNull(), 30, "the init thumbnail")
    wait_until(lambda: form.size_picker.image_size() == (832, 640), 30, "the size from the image")
    edit.panel.strength.setValue(0.55)

    dialog = edit.open_painter()
    dialog.resize(1366, 768)
    c = dialog.canvas
    c.brush = 70
    c.stroke(QPointF(250, 380))
    for x in range(250, 600, 20):
        c.stroke(QPointF(x, 380 + (x - 250) // 6), QPointF(x + 20, 380 + (x - 230) // 6))
    dialog.size_slider.setValue(70)
    dialog.pad_boxes["right"].setValue(256)
    dialog.feather.setValue(8)
    pump(400)
    save_png(dialog, out / "edit-mask-painter-1366.png", 600)
    dialog.accept()
    pump(200)

    edit.panel.controlnet_chosen.emit(str(net))
    wait_until(lambda: edit.panel.controlnet_path == str(net), 30, "the ControlNet check")
    edit.panel.set_control_image(str(control))
    wait_until(lambda: not edit.panel.map_slot.pixmap().isNull(), 30, "the canny map")
    edit.panel.control_scale.setValue(0.8)
    edit.panel.control_end.setValue(0.8)
    pump(300)
    form.ensureWidgetVisible(edit.panel.cn_message, 10, 10)
    save_png(win, out / "edit-controlnet-1366.png", 800)
    print("request:", {k: v for k, v in edit.panel.values().items() if v})
    win.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="zit-editshots-"))
    os.environ["ZITDESK_HOME"] = str(home)
    xvfb = start_xvfb()
    try:
        shoot(Path(args.out), home)
    finally:
        stop_xvfb(xvfb)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
