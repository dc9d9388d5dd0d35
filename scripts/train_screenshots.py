"""Screenshots of the New-run wizard (its three pages) and the full training settings dialog.

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/train_screenshots.py \
        [--out docs/img]

Writes ``train-wizard-1-dataset.png``, ``train-wizard-2-goal.png``,
``train-wizard-3-hardware.png``, ``train-wizard-3-adapter.png`` and ``train-settings.png``.
Everything runs in a temporary ``ZITDESK_HOME`` with a generated 12-image dataset (captions, one
missing, two holding the trigger word), a fabricated training adapter (header-only, sparse) and an
RTX 4090 as the card, so no model, torch or GPU is needed.
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

from shotkit import pump, save_png, start_xvfb, stop_xvfb, themed_app  # noqa: E402

CAPTIONS = [
    "a woman with short red hair, smiling, in a café, window light",
    "close-up portrait of a woman with short red hair, freckles, green eyes",
    "a woman with short red hair reading on a park bench, autumn",
    "full body, a woman with short red hair in a yellow raincoat, city street",
    "mira, a woman with short red hair, black and white photo, film grain",
    "a woman with short red hair laughing, beach, golden hour",
    None,
    "a woman with short red hair, profile view, studio lighting, grey backdrop",
    "mira cooking in a small kitchen, steam, warm light",
    "a woman with short red hair riding a bicycle, motion blur",
    "a woman with short red hair, wearing glasses, library",
    "a woman with short red hair sitting on stairs, night, neon signs",
]


def make_dataset(folder: Path) -> Path:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    sizes = [(1024, 1024), (832, 1216), (1216, 832), (1024, 1024), (768, 768), (1024, 1344)]
    for i, cap in enumerate(CAPTIONS):
        w, h = sizes[i % len(sizes)]
        base = rng.integers(40, 220, size=3)
        y = np.linspace(0, 1, h)[:, None, None]
        x = np.linspace(0, 1, w)[None, :, None]
        img = (base * (0.6 + 0.4 * y) + 30 * x).clip(0, 255).astype("uint8")
        Image.fromarray(np.broadcast_to(img, (h, w, 3)).copy()).save(folder / f"mira_{i:02d}.jpg")
        if cap is not None:
            (folder / f"mira_{i:02d}.txt").write_text(cap, encoding="utf-8")
    return folder


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "docs" / "img"))
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="zit-train-shots-"))
    os.environ["ZITDESK_HOME"] = str(home)
    xvfb = start_xvfb()
    try:
        return _shoot(out, home)
    finally:
        stop_xvfb(xvfb)


def _shoot(out: Path, home: Path) -> int:
    from PySide6.QtCore import QThreadPool

    app = themed_app()

    from tests.support.samples import make_lora
    from ui.train.wizard import NewRunWizard
    from zitdesk.train.estimate import GpuSpec

    data = make_dataset(home / "data" / "datasets" / "mira")
    other = home / "data" / "datasets" / "watercolour-landscapes"
    other.mkdir(parents=True)
    adapter = make_lora(
        home / "loras" / "zimage_turbo_training_adapter_v2.safetensors", "aitoolkit", rank=16
    )
    model = home / "models" / "Z-Image-Turbo"
    try:  # a real (tiny) model so the model line shows a ready model; needs torch
        from zitdesk.models.tiny import save_tiny_model

        save_tiny_model(model, "diffusers")
    except Exception as exc:  # noqa: BLE001 - the screenshot then shows the "not found" line
        print(f"no tiny model ({exc}); the model line will say so", file=sys.stderr)
        model.mkdir(parents=True, exist_ok=True)

    def settle(ms: int = 300) -> None:
        QThreadPool.globalInstance().waitForDone(20_000)
        app.processEvents()
        pump(ms)
        QThreadPool.globalInstance().waitForDone(20_000)
        app.processEvents()

    wiz = NewRunWizard(
        None, [data, other], GpuSpec("NVIDIA GeForce RTX 4090", 24.0), model_path=str(model)
    )
    wiz.show()
    settle(800)
    save_png(wiz, out / "train-wizard-1-dataset.png", 0)

    wiz.next()
    wiz.goal_page.trigger.setText("mira")
    settle()
    save_png(wiz, out / "train-wizard-2-goal.png", 0)

    wiz.next()
    settle()
    save_png(wiz, out / "train-wizard-3-hardware.png", 0)

    wiz.hardware_page.set_adapter(str(adapter))
    settle()
    save_png(wiz, out / "train-wizard-3-adapter.png", 0)

    dlg = wiz.open_full_settings()
    settle()
    save_png(dlg, out / "train-settings.png", 0)
    dlg.reject()
    wiz.reject()
    settle()
    for p in sorted(out.glob("train-*.png")):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
