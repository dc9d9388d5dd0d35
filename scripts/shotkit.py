"""What the screenshot scripts share: a private Xvfb, the themed app, event pumping, waiting on a
condition, sample pictures, and saving small PNGs.

    from shotkit import start_xvfb, themed_app, pump, wait_until, save_png, sample_image

``start_xvfb()`` starts an Xvfb of :data:`SCREEN` (2560×1440, so the largest shots are real
size) on a free display unless ``DISPLAY`` is set (``xvfb-run -s "-screen 0 2560x1440x24"``).
``save_png`` writes the grab and, when it is larger than :data:`MAX_PNG_BYTES`, re-encodes it as
a dithered 256-colour palette PNG (a dark UI loses nothing visible), so docs/img stays small.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCREEN = "2560x1440x24"
MAX_PNG_BYTES = 360_000


def start_xvfb(first: int = 90, last: int = 140) -> subprocess.Popen | None:
    """Start our own Xvfb on a free display number and point DISPLAY at it (None: a display
    is already there, or Xvfb is not installed)."""
    if os.environ.get("DISPLAY") or not shutil.which("Xvfb"):
        return None
    for n in range(first, last):
        if Path(f"/tmp/.X11-unix/X{n}").exists() or Path(f"/tmp/.X{n}-lock").exists():
            continue
        proc = subprocess.Popen(
            ["Xvfb", f":{n}", "-screen", "0", SCREEN, "-nolisten", "tcp"],
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


def stop_xvfb(proc: subprocess.Popen | None) -> None:
    if proc is not None:
        proc.terminate()
        proc.wait(5)


def themed_app():
    """The running QApplication, or a new one with the app's high-DPI setup and dark theme."""
    from PySide6.QtWidgets import QApplication

    from ui.theme import apply_dark_theme, prepare_high_dpi

    app = QApplication.instance()
    if app is None:
        prepare_high_dpi()
        app = QApplication(["zitdesk"])
        apply_dark_theme(app)
    return app


def pump(ms: int = 300) -> None:
    """Run the event loop for ``ms`` milliseconds."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec()


def wait_until(cond, timeout: float = 60.0, what: str = "", strict: bool = True) -> bool:
    """Pump events until ``cond()``; past ``timeout`` seconds exit (``strict``) or return False."""
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:
        pump(50)
    if cond():
        return True
    if strict:
        raise SystemExit(f"screenshots: {what or 'a condition'} was not met in {timeout:.0f} s")
    return False


def save_png(widget, path: Path, settle_ms: int = 300) -> Path:
    """Grab ``widget`` into ``path`` (a palette PNG when the full-colour one is too big)."""
    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice

    pump(settle_ms)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    widget.grab().save(buf, "PNG")
    data = bytes(buf.data())
    if len(data) > MAX_PNG_BYTES:
        with Image.open(io.BytesIO(data)) as im:
            rgb = im.convert("RGB")
            palette = rgb.quantize(256, method=Image.Quantize.MEDIANCUT)
            # dithered against that palette: gradients in pictures do not band
            small = rgb.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)
            out = io.BytesIO()
            small.save(out, "PNG", optimize=True)
            data = min(data, out.getvalue(), key=len)
    path.write_bytes(data)
    print(f"saved {path} ({len(data) // 1024} KB)")
    return path


def sample_image(w: int, h: int, seed: int):
    """A soft, blurred picture of a few shapes on a gradient (stands in for a photo)."""
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
