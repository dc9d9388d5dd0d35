"""Start the app under Xvfb and save screenshots of each workspace and of the first-run dialog.

    xvfb-run -a -s "-screen 0 2560x1440x24" .venv/bin/python scripts/screenshots.py \
        [--out out/screenshots] [--only all|app|generate|datasets|train|library]

Without ``DISPLAY`` it starts its own 2560×1440 Xvfb (:mod:`shotkit`). The populated workspaces
go to ``docs/img`` (``--docs-out``), each at 1366×768 and 2560×1440:

* ``--only generate``: results of three aspects, a LoRA stack, and a running job with three
  waiting in the queue (``generate-*.png``);
* ``--only datasets``: a dataset with images, captions, findings and an excluded image, table
  and grid, plus the crop tool (``datasets-*.png``; more in ``scripts/datasets_screenshots.py``);
* ``--only library``: cards, details, and the window's minimum size (``library-*.png``);
* ``--only train``: the first screen, a run mid-way (also at 2560×1440), pause → try in
  Generate, and the run history (``train-*.png``); a demo trainer replays training events.
* ``--only app``: the first-run dialog, first start, results, the OOM banner, the structured
  prompt and the status bar, to ``--out``.

Everything runs in a temporary ``ZITDESK_HOME``, so your settings, history and outputs are not
touched. The engine is :class:`demo_engine.DemoEngine` (scripted events, gradient PNGs; no model,
no torch); the first-run dialog is shown over a temporary model tree with one complete model (the
tiny test model, which needs torch to build; skipped with ``--no-tiny``) and one incomplete
folder. PNGs over 360 KB are saved as dithered palette PNGs (:func:`shotkit.save_png`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from demo_engine import DemoEngine, build_model_tree, demo_sample, demo_window, fake_gpu_snapshot  # noqa: E402
from shotkit import pump, save_png, start_xvfb, stop_xvfb, themed_app, wait_until  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", default=str(ROOT / "out" / "screenshots"))
    ap.add_argument("--no-tiny", action="store_true", help="do not build the tiny model (no torch)")
    ap.add_argument(
        "--only", choices=("all", "app", "train", "library", "datasets", "generate"), default="all"
    )
    ap.add_argument(
        "--docs-out",
        "--train-out",
        dest="docs_out",
        default=str(ROOT / "docs" / "img"),
        help="where the populated workspace screenshots go (docs/img)",
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    docs = Path(args.docs_out)
    xvfb = start_xvfb()
    home = Path(tempfile.mkdtemp(prefix="zitdesk-shots-"))
    os.environ["ZITDESK_HOME"] = str(home / "home")
    try:
        rc = 0
        if args.only in ("all", "app"):
            build_model_tree(home, tiny=not args.no_tiny)
            rc = shoot(out, home)
        if args.only in ("all", "train") and rc == 0:
            rc = shoot_train(docs, home)
        if args.only in ("all", "generate") and rc == 0:
            if args.only == "generate":
                build_model_tree(home, tiny=False)
            rc = shoot_generate(docs, home)
        if args.only in ("all", "library") and rc == 0:
            rc = shoot_library(docs, home)
        if args.only in ("all", "datasets") and rc == 0:
            rc = shoot_datasets(docs, home)
        return rc
    finally:
        stop_xvfb(xvfb)
        shutil.rmtree(home, ignore_errors=True)


def shoot(out: Path, home: Path) -> int:

    from ui.main_window import MainWindow
    from zitdesk.settings import AppSettings

    app = themed_app()
    print("platform:", app.platformName(), "screen:", app.primaryScreen().size().toTuple())

    def save(widget, name: str) -> None:
        save_png(widget, out / f"{name}.png", 250)

    saved = []
    # 1. First start: no model configured → the setup dialog over the window.
    settings = AppSettings()
    oom: list[bool] = []
    win = MainWindow(
        settings,
        engine_factory=lambda: DemoEngine(home / "outputs", oom),
        snapshot_fn=fake_gpu_snapshot,
    )
    win.resize(1440, 900)
    win.show()
    pump(300)
    dlg = win.ensure_model_configured()
    wait_until(lambda: not dlg.busy and dlg.list.count() > 0, 20)
    save(dlg, "01-first-run-dialog")
    saved.append("01")
    save(win, "02-generate-first-start")
    dlg.reject()
    pump(200)
    save(win, "03-generate-no-model-banner")

    # 2. Model configured: generate a few demo images.
    settings.model_path = str(home / "tiny")
    form = win.generate.form
    form.prompt.load_tokenizer()
    form.prompt.set_text(
        "- a rainy street in Tokyo at night, neon signs, film photo\n"
        "- a girl -- short brown hair -- yellow raincoat -- on the left\n"
        "- a black cat -- on the right"
    )
    form.size_picker.set_size(1024, 1024)
    form.count.setValue(2)
    wait_until(lambda: form.prompt.tokenizer_ready, 30)
    pump(500)
    win.generate.generate()
    wait_until(lambda: win.generate.gallery_model.rowCount() >= 2 and not win.controller.busy)
    save(win, "04-generate-results")

    # 3. Out of memory: the banner with a one-click retry.
    oom.append(True)
    win.generate.generate()
    wait_until(lambda: win.generate.banner.isVisible() and not win.controller.busy)
    save(win, "05-generate-oom-retry")
    win.generate.banner.hide()

    # 4. Structured prompt helper.
    sdlg = win.generate.open_structure_dialog()
    save(sdlg, "06-structured-prompt")
    sdlg.reject()

    # 5. The other workspaces.
    for i, name in enumerate(("datasets", "train", "lora-library"), start=1):
        win.switch_workspace(i)
        save(win, f"{7 + i - 1:02d}-{name}")
    win.switch_workspace(0)
    # 6. Status bar close-up: the meter with a GPU and the ghost bar of the next job's peak.
    pump(1200)
    save(win.statusBar(), "10-status-bar-gpu")
    # 7. The CPU-only state of the meter (real readings of this machine).
    from zitdesk.gpu import MemorySnapshot, memory_snapshot

    win.poller.stop()
    win.meter.sparkline.clear()
    snap = memory_snapshot()
    if snap.gpus:  # a machine with a GPU: show the CPU state anyway
        snap = MemorySnapshot(
            (),
            "NVMLError_LibraryNotFound (demo)",
            snap.process_rss_bytes,
            snap.system_used_bytes,
            snap.system_total_bytes,
        )
    for _ in range(30):
        win.meter.set_snapshot(snap)
    save(win.statusBar(), "11-status-bar-cpu")
    win.close()
    pump(200)
    return 0


def shoot_library(out: Path, home: Path) -> int:
    """The LoRA Library with cards (previews, trigger words, a zitdesk-trained LoRA, an SDXL file)
    at 1366×768 and 2560×1440, and at the window's minimum size (docs/img/library-*.png)."""
    from dataclasses import replace

    from PySide6.QtCore import QThreadPool

    from tests.support.samples import build_sample_library, make_lora, png_bytes
    from ui.main_window import MainWindow
    from zitdesk.library.store import LibraryStore
    from zitdesk.settings import AppSettings
    from zitdesk.train.config import TrainConfig
    from zitdesk.train.lora_io import build_metadata

    themed_app()
    out.mkdir(parents=True, exist_ok=True)

    lib = home / "lora-library"
    files = build_sample_library(lib)
    # A LoRA trained by zitdesk, saved under the default name "lora" in its run folder.
    cfg = TrainConfig()
    run = lib / "runs" / "mochi_cat_v1"
    cfg = replace(
        cfg,
        save=replace(cfg.save, name="lora", output_dir=str(run)),
        data=replace(cfg.data, trigger="mochicat"),
    )
    meta = build_metadata(
        cfg,
        step=1500,
        epoch=12,
        base_precision="bf16",
        resolution=(1024, 1024),
        tag_freq={"mochicat": 24, "cat": 24, "sofa": 9, "garden": 6},
        dataset_name="mochi",
    )
    trained = make_lora(run / "lora.safetensors", "aitoolkit", 16, metadata=meta)
    (run / "lora.preview.png").write_bytes(png_bytes(96, 96, (236, 170, 110)))
    store = LibraryStore()
    store.add_folder(str(lib))
    cat = next(str(p) for p in files if p.name.startswith("cat_character"))
    store.set_favourite(cat, True)
    store.set_rating(cat, 4)
    store.set_notes(cat, "Best at 0.8; add 'sitting' for full body.")
    store.set_favourite(str(trained), True)
    settings = AppSettings(model_path="")
    win = MainWindow(
        settings,
        engine_factory=lambda: DemoEngine(home / "outputs", []),
        snapshot_fn=fake_gpu_snapshot,
    )
    shots = ((1366, 768, "1366"), (2560, 1440, "2560"))
    for w, h, tag in shots:
        win.resize(w, h)
        win.show()
        win.switch_workspace(3)
        library = win.library
        wait_until(
            lambda lib_ws=library: (
                lib_ws.model.rowCount() >= len(files)
                and not lib_ws.controller.scanning
                and not lib_ws.controller.hashing
            )
        )
        library.select(str(trained))
        save_png(win, out / f"library-{tag}.png", 700)
        library.select(cat)
        save_png(win, out / f"library-{tag}-details.png", 500)
    minimum = win.minimumSizeHint().expandedTo(win.minimumSize())
    win.resize(minimum)
    save_png(win, out / "library-minimum.png", 700)
    print("minimum size", minimum.toTuple())
    win.library.shutdown()
    QThreadPool.globalInstance().waitForDone(10_000)
    win.close()
    return 0


def shoot_generate(out: Path, home: Path) -> int:
    """Generate populated (results of three aspects, a LoRA stack, a running job with three
    waiting in the queue) at 1366×768 and 2560×1440 (docs/img/generate-*.png)."""

    from tests.support.samples import make_lora

    themed_app()
    out.mkdir(parents=True, exist_ok=True)

    loras = home / "gen-loras"
    stack = [
        make_lora(loras / f"{n}.safetensors", "aitoolkit", 8)
        for n in ("ink_style", "mochi_cat_v1", "film_grain")
    ]
    win, engine, _settings = demo_window(home)
    ws = win.generate
    form = ws.form
    form.prompt.load_tokenizer()
    wait_until(lambda: form.prompt.tokenizer_ready, 60, "the tokenizer")
    form.prompt.set_text(
        "- a rainy street in Tokyo at night, neon signs, film photo\n- a black cat -- on the right"
    )
    for p, w in zip(stack, (0.8, 1.0, 0.5), strict=False):
        form.loras.add_lora(str(p), w)
    for w, h in ((512, 512), (768, 512), (512, 768)):
        form.size_picker.set_size(w, h)
        ws.generate()
    wait_until(lambda: ws.gallery_model.rowCount() >= 3 and not win.controller.busy, 60, "results")
    engine.hold_generation = True  # the next job stays running: the queue shows who waits
    for w, h in ((1024, 1024), (768, 1152), (1152, 768), (1024, 1024)):
        form.size_picker.set_size(w, h)
        ws.generate()  # one running, three waiting
    wait_until(lambda: len(ws.queue.texts()) >= 4, 30, "four jobs in the queue")
    for w, h, tag in ((1366, 768, "1366"), (2560, 1440, "2560")):
        win.resize(w, h)
        save_png(win, out / f"generate-{tag}.png", 800)
        print("queue:", ws.queue.texts())
    engine.hold_generation = False
    win.controller.cancel_all()
    wait_until(lambda: not win.controller.busy, 60, "the queue to empty")
    win.close()
    return 0


def shoot_datasets(out: Path, home: Path) -> int:
    """Datasets in the window, populated (images, captions, the check with findings, an
    excluded image) at 1366×768 and 2560×1440, table and grid, and the crop tool
    (docs/img/datasets-*.png)."""
    from datasets_screenshots import build_dataset

    from ui.datasets.table_model import Col
    from ui.main_window import MainWindow
    from zitdesk.io import user_dirs
    from zitdesk.settings import AppSettings

    themed_app()
    folder = user_dirs()["data"] / "datasets" / "tabby-cat"
    build_dataset(folder)
    win = MainWindow(
        AppSettings(model_path=""),
        engine_factory=lambda: DemoEngine(home / "outputs", []),
        snapshot_fn=fake_gpu_snapshot,
    )
    win.resize(1366, 768)
    win.show()
    win.switch_workspace(1)
    ws = win.datasets  # built on first show
    ws.open_folder(folder)
    wait_until(lambda: ws.session.dataset is not None, 60, "the dataset to open")
    ws.stats.trigger.setText("ohwx")
    ws.stats._on_trigger()
    m = ws.model

    def thumbs(view_rows: int) -> bool:
        return all(
            m.index(r, Col.THUMB).data(1) is not None for r in range(min(m.rowCount(), view_rows))
        )

    def checked() -> bool:
        rep = ws.stats.report
        return rep is not None and not ws.session.checking and rep.options.trigger == "ohwx"

    wait_until(lambda: checked() and thumbs(12), 90, "the check and the thumbnails")
    ws.select_name("cat 05 small.jpg")
    ws.table.selectRow(ws._current_row())
    ws.toggle_excluded()  # one image left out of training
    ws.save_now()
    # saved, and the check run again without it (it follows edits)
    n = m.rowCount() - 1
    wait_until(
        lambda: checked() and not ws.session.dirty and ws.stats.report.images == n,
        60,
        "the edit to be saved and checked",
    )
    for w, h, tag in ((1366, 768, "1366"), (2560, 1440, "2560")):
        win.resize(w, h)
        ws.show_table()
        ws.select_row(1)
        save_png(win, out / f"datasets-{tag}-table.png", 900)
        ws.show_grid()
        ws.select_name("cat 05 small.jpg")
        ws.grid.grid.scrollToTop()
        wait_until(lambda: thumbs(m.rowCount()), 30, strict=False)
        save_png(win, out / f"datasets-{tag}-grid.png", 900)
    win.resize(1366, 768)
    ws.show_table()
    ws.select_name("cat 03.jpg")
    dlg = ws.open_crop()
    dlg.resize(900, 640)
    dlg.aspect.setCurrentIndex(dlg.aspect.findText("4:3"))
    save_png(dlg, out / "datasets-crop.png", 600)
    dlg.reject()
    ws.shutdown()
    win.close()
    pump(200)
    return 0


def shoot_train(out: Path, home: Path) -> int:
    """The Train tab at 1366×768: first screen, mid-run, pause → try, history (docs/img)."""

    from ui.main_window import MainWindow
    from zitdesk.io import user_dirs
    from zitdesk.settings import AppSettings
    from zitdesk.train.config import TrainConfig
    from zitdesk.train.presets import apply_preset
    from zitdesk.train.runs import RunRecord, runs_root, write_run

    themed_app()
    out.mkdir(parents=True, exist_ok=True)

    def save(widget, name: str, settle: int = 400) -> None:
        save_png(widget, out / f"{name}.png", settle)

    # A configured model and one dataset, like a user who has done the Datasets tab.
    model = home / "models" / "Z-Image-Turbo"
    model.mkdir(parents=True, exist_ok=True)
    data = user_dirs()["data"] / "datasets" / "my-cat"
    data.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    for i in range(24):
        Image.fromarray(demo_sample(1500, i % 3, 128)).save(data / f"cat_{i:02d}.png")
        (data / f"cat_{i:02d}.txt").write_text("a photo of [trigger] cat", encoding="utf-8")
    settings = AppSettings(model_path=str(model), width=1024, height=1024)
    engine = DemoEngine(home / "outputs", [])
    engine.hold_at = 761
    win = MainWindow(settings, engine_factory=lambda: engine, snapshot_fn=fake_gpu_snapshot)
    win.resize(1366, 768)
    win.show()
    pump(500)
    win.switch_workspace(2)
    train = win.train
    wait_until(lambda: train.snapshot is not None)
    pump(300)
    save(win, "train-first-screen")

    # A run mid-way: the loss curve, learning rate, three sample rounds.
    cfg = apply_preset(TrainConfig(), "24gb").with_changes(
        model={
            "path": str(model),
            "training_adapter": str(home / "zimage_turbo_training_adapter_v2.safetensors"),
        },
        data={"folder": str(data), "trigger": "mycat"},
        optim={"steps": 2000, "warmup_steps": 100, "schedule": "cosine"},
        save={"output_dir": str(runs_root() / "my-cat"), "name": "my-cat", "every": 250},
        sample={
            "every": 250,
            "prompts": (
                "a photo of [trigger] on a sofa",
                "[trigger] in a garden, watercolor",
                "portrait of [trigger], studio light",
            ),
        },
    )
    train.start_config(cfg)
    view = train.run_view
    wait_until(lambda: view.loss_chart.point_count >= 760 and len(view.samples.steps) >= 4, 60)
    view.tabs.setCurrentIndex(0)
    save(win, "train-run-view")
    win.resize(2560, 1440)  # the same run on a large screen
    save(win, "train-run-view-2560", 800)
    win.resize(1366, 768)
    pump(500)

    # Pause → try it: the LoRA as of this step in Generate, generated inside the paused run.
    view.pause_button.click()
    wait_until(lambda: view.state == "paused")
    save(win, "train-paused")
    view.try_button.click()
    gen = win.generate
    gen.form.prompt.load_tokenizer()
    wait_until(lambda: gen.form.prompt.tokenizer_ready, 60, "the tokenizer")
    gen.form.prompt.set_text("a photo of mycat on a sofa, evening light")
    gen.form.size_picker.set_size(1024, 1024)
    gen.generate_button.click()
    wait_until(lambda: gen.gallery_model.rowCount() >= 1 and not win.controller.tries, 30)
    wait_until(lambda: gen._large.pixmap(gen._shown_path) is not None, 10)
    wait_until(lambda: win.thumbnails.pixmap(gen._shown_path) is not None, 10)
    pump(800)
    save(win, "train-try-in-generate")

    # Resume to the end, then the history with a few earlier runs beside it.
    win.switch_workspace(2)
    view.resume_button.click()
    wait_until(lambda: view.state == "finished", 60)
    now = time.time()
    for i, (name, status, done, total, loss, preset, err) in enumerate(
        (
            ("watercolor-style", "finished", 1500, 1500, 0.1342, "16gb", ""),
            (
                "portrait-1024",
                "failed",
                412,
                2000,
                0.1711,
                "24gb",
                "The GPU ran out of memory while training; memory was freed — choose the '16gb' VRAM "
                "preset, then resume.",
            ),
            ("my-dog", "cancelled", 600, 2000, 0.1528, "12gb", ""),
        )
    ):
        folder = runs_root() / name
        folder.mkdir(parents=True, exist_ok=True)
        cfg.with_changes(save={"output_dir": str(folder), "name": name}).write(
            folder / "train_config.toml"
        )
        lora = folder / f"{name}.safetensors"
        from tests.support.samples import make_lora

        make_lora(lora, rank=32)
        write_run(
            RunRecord(
                run_id=f"{name}-{i}",
                name=name,
                status=status,
                output_dir=str(folder),
                config_path=str(folder / "train_config.toml"),
                dataset=str(data.parent / name),
                preset=preset,
                steps_done=done,
                steps_total=total,
                final_loss=loss,
                lora_path=str(lora),
                started_at=now - 86400 * (i + 1),
                ended_at=now - 86400 * i,
                error=err,
                model_path=str(model),
                error_kind="oom" if err else "",
                retry_preset="16gb" if err else "",
            )
        )
    view.back_button.click()
    train.refresh_history()
    train.overview.history.select_run("portrait-1024-1")  # failed: out of memory → one tier down
    pump(300)
    save(win, "train-history")
    win.close()
    pump(200)
    return 0


if __name__ == "__main__":
    sys.exit(main())
