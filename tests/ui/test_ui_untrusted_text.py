"""File-controlled text is never rendered as markup (issue 12, point 12).

A LoRA, an image, a caption, a folder and a PNG's prompt all carry HTML. The app is driven so
that each of them reaches the screen (the LoRA stack and its report, a warning and an error
banner with "Details…", parameters read from the PNG, the Datasets tab with its check and
findings, the LoRA Library on that folder, the Train tab), and after each step *every* widget of
every top-level window is walked: label texts (with their text format), button texts, tooltips,
rich-text views and the Display/ToolTip data of every item view. Each hostile piece has a
witness word; wherever the witness shows up, the piece must be shown literally, and a label that
shows one must be ``PlainText`` or escaped ``RichText``, never auto-detected.
"""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import Qt as GuiQt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QTextEdit,
    QWidget,
)

from zitdesk.settings import AppSettings

# witness word -> the hostile piece that must be shown literally wherever the witness appears
PIECES = {
    "BOLD": "<b>BOLD",
    "onerror": "<img src=x onerror=1>",
    "OUTNAME": "<h2>OUTNAME</h2>",
    "TITLE": "<u>TITLE</u>",
    "AUTHOR": "<b>AUTHOR</b>",
    "DESCX": "<b>DESCX</b>",
    "EVILLINK": "<a href='http://evil.example/'>EVILLINK</a>",
    "UCAT": "<u>UCAT",
    "ITAL": "<i>ITAL",
    "TBLA": "TBLA<table>TBLB",
    "Q&": "Q&amp;A",
    "SFOLD": "<s>SFOLD",
    "PNGHEAD": "<h1>PNGHEAD</h1>",
    "PNGNAME": "<em>PNGNAME",
    "LORATAG": "<i>LORATAG",
    "R&": "R&D",  # a folder name with "&": not a menu mnemonic
    "STAR": "STAR[*]STAR",  # "[*]" in a file name: not a window title's placeholder
}

LORA_NAME = "<img src=x onerror=1><b>BOLD.safetensors"  # a file name cannot hold "/"
BROKEN_LORA = "<b>BOLD<img src=x onerror=1>-broken.safetensors"
IMAGE_STEM = "<u>UCAT"
CAPTION = "<i>ITAL</i> Q&amp;A TBLA<table>TBLB"
PROMPT = "<h1>PNGHEAD</h1> a cat"


# -- rendering as Qt does it ---------------------------------------------------------------------
def _html_to_plain(text: str) -> str:
    doc = QTextDocument()
    doc.setHtml(text)
    return doc.toPlainText()


def _label_rendered(label: QLabel) -> str:
    fmt, text = label.textFormat(), label.text()
    rich = fmt == Qt.TextFormat.RichText or (
        fmt == Qt.TextFormat.AutoText and GuiQt.mightBeRichText(text)
    )
    if fmt == Qt.TextFormat.MarkdownText:
        doc = QTextDocument()
        doc.setMarkdown(text)
        return doc.toPlainText()
    return _html_to_plain(text) if rich else text


def _tooltip_rendered(tip: str) -> str:
    return _html_to_plain(tip) if GuiQt.mightBeRichText(tip) else tip


def _title_rendered(w: QWidget) -> str:  # "[*]": the "modified" placeholder, "[*][*]": "[*]"
    title = w.windowTitle().replace("[*][*]", "\0")
    return title.replace("[*]", "*" if w.isWindowModified() else "").replace("\0", "[*]")


def _button_rendered(text: str) -> str:  # "&x" is a mnemonic, "&&" a literal "&"
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def _has_children(model, ix: QModelIndex) -> bool:
    try:
        return model.rowCount(ix) > 0  # tree models; list and table models: no children
    except TypeError:
        return False


class Walk:
    def __init__(self) -> None:
        self.widgets = 0
        self.texts = 0
        self.hostile = 0
        self.problems: dict[str, str] = {}  # problem (without the step) -> first step seen
        self.step = ""
        self.seen_witnesses: set[str] = set()

    def check(self, where: str, raw: str, rendered: str) -> None:
        if not raw and not rendered:
            return
        self.texts += 1
        hit = False
        for witness, piece in PIECES.items():
            if witness in raw or witness in rendered:
                hit = True
                self.seen_witnesses.add(witness)
                if piece not in rendered:
                    self._problem(f"{where}: {piece!r} is rendered as {rendered!r} (text {raw!r})")
        self.hostile += hit

    def label(self, where: str, label: QLabel) -> None:
        text = label.text()
        rendered = _label_rendered(label)
        self.check(where, text, rendered)
        if any(w in text for w in PIECES) and label.textFormat() == Qt.TextFormat.AutoText:
            self._problem(f"{where}: shows file text with auto-detected format: {text!r}")

    def _problem(self, text: str) -> None:
        self.problems.setdefault(text, self.step)

    def item_view(self, where: str, view: QAbstractItemView) -> None:
        model = view.model()
        if model is None:
            return

        def walk(parent: QModelIndex, depth: int) -> None:
            try:
                cols = model.columnCount(parent)
            except TypeError:  # QAbstractListModel: private, one column
                cols = 1
            if depth == 0:  # header tooltips (e.g. a column named after a prompt)
                for orient, n in (
                    (Qt.Orientation.Horizontal, cols),
                    (Qt.Orientation.Vertical, min(model.rowCount(parent), 300)),
                ):
                    for k in range(n):
                        tip = model.headerData(k, orient, Qt.ItemDataRole.ToolTipRole)
                        if isinstance(tip, str) and tip:
                            self.check(f"{where} header {k}", tip, _tooltip_rendered(tip))
            for r in range(min(model.rowCount(parent), 300)):
                for c in range(cols):
                    ix = model.index(r, c, parent)
                    shown = model.data(ix, Qt.ItemDataRole.DisplayRole)
                    if isinstance(shown, str):
                        self.check(f"{where}[{r},{c}]", shown, shown)
                    tip = model.data(ix, Qt.ItemDataRole.ToolTipRole)
                    if isinstance(tip, str) and tip:
                        self.check(f"{where}[{r},{c}] tooltip", tip, _tooltip_rendered(tip))
                    if c == 0 and depth < 3 and _has_children(model, ix):
                        walk(ix, depth + 1)

        walk(QModelIndex(), 0)

    def window(self, step: str) -> None:
        self.step = step
        widgets: list[QWidget] = []
        for top in QApplication.topLevelWidgets():
            widgets.append(top)
            widgets.extend(top.findChildren(QWidget))
        for w in widgets:
            self.widgets += 1
            where = f"{type(w).__name__}({w.objectName() or '-'})"
            if w.isWindow():
                self.check(where + " title", w.windowTitle(), _title_rendered(w))
            tip = w.toolTip()
            if tip:
                self.check(where + " tooltip", tip, _tooltip_rendered(tip))
            if isinstance(w, QLabel):
                self.label(where, w)
            elif isinstance(w, QAbstractButton):
                self.check(where, w.text(), _button_rendered(w.text()))
            elif isinstance(w, (QTextEdit, QPlainTextEdit)):  # QTextBrowser: what it shows
                self.check(where, w.toPlainText(), w.toPlainText())
            elif isinstance(w, QProgressBar):  # "%v", "%m", "%p" in a name must stay literal
                self.check(where, w.format(), w.text().replace("\u2060", ""))
            elif isinstance(w, QLineEdit):
                self.check(where, w.text(), w.text())
            elif isinstance(w, QMessageBox):
                self.check(where + " informative", w.informativeText(), w.informativeText())
            if isinstance(w, QMenu):
                for act in w.actions():
                    self.check(where + " action", act.text(), _button_rendered(act.text()))
            if isinstance(w, QAbstractItemView) and not isinstance(w, QHeaderView):
                self.item_view(where, w)
            if isinstance(w, QMainWindow):
                msg = w.statusBar().currentMessage()
                self.check(where + " status bar", msg, msg)


# -- hostile inputs ------------------------------------------------------------------------------
def _hostile_lora(path: Path) -> Path:
    import torch

    from zitdesk.io import atomic_save_tensors

    g = torch.Generator().manual_seed(3)
    sd = {}
    for m in ("layers.0.attention.to_q", "layers.0.attention.to_k"):
        sd[f"transformer.{m}.lora_A.weight"] = torch.randn(4, 32, generator=g) * 0.01
        sd[f"transformer.{m}.lora_B.weight"] = torch.randn(32, 4, generator=g) * 0.01
    meta = {
        "format": "pt",
        "ss_output_name": "<h2>OUTNAME</h2>",
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "Z-Image/lora",
        "modelspec.title": "<u>TITLE</u>",
        "modelspec.author": "<b>AUTHOR</b>",
        "modelspec.description": "&lt;b&gt;DESCX&lt;/b&gt;",  # text after HTML→text: <b>DESCX</b>
        "modelspec.trigger_phrase": "<a href='http://evil.example/'>EVILLINK</a>",
    }
    return atomic_save_tensors(path, sd, metadata=meta)


def _png_with_prompt(path: Path) -> Path:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(
        "parameters",
        f"{PROMPT} <lora:<i>LORATAG:0.8>\n"
        "Steps: 2, Sampler: Euler, CFG scale: 1.0, Seed: 5, Size: 64x64",
    )
    Image.new("RGB", (64, 64), (90, 90, 90)).save(path, pnginfo=info)
    return path


def _dataset(folder: Path) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    Image.new("RGB", (96, 80), (200, 40, 40)).save(folder / f"{IMAGE_STEM}.png")
    (folder / f"{IMAGE_STEM}.txt").write_text(CAPTION, encoding="utf-8")
    Image.new("RGB", (40, 40), (20, 140, 40)).save(folder / "<i>ITAL-small.png")
    (folder / "<b>BOLD-unreadable.png").write_bytes(b"not an image at all")
    return folder


def _hostile_runs(tmp_path: Path, dataset: Path, lora: Path) -> list:
    import time

    from zitdesk.train.runs import RunRecord, write_run

    records = []
    for i, status in enumerate(("failed", "interrupted")):
        out = tmp_path / f"runs<s>SFOLD/run{i}"
        ckpt = out / "checkpoints" / "lora_000000003"  # a checkpoint: its path is a tooltip
        ckpt.mkdir(parents=True)
        (ckpt / "state.json").write_text("{}", encoding="utf-8")
        records.append(
            RunRecord(
                run_id=f"run{i}",
                name=f"<b>BOLD run {i}",
                status=status,
                output_dir=str(out),
                dataset=str(dataset),
                steps_done=3,
                steps_total=10,
                lora_path=str(lora),
                started_at=time.time() - 60,
                ended_at=time.time(),
                error=f"{LORA_NAME} could not be written: {CAPTION}",
                error_kind="error",
            )
        )
        write_run(records[-1])
    return records


@pytest.mark.slow
def test_no_widget_renders_file_text_as_markup(qtbot, make_window, tiny_diffusers, tmp_path):
    lora_dir = tmp_path / "lib<s>SFOLD R&D"
    lora_dir.mkdir()
    lora = _hostile_lora(lora_dir / LORA_NAME)
    broken = lora_dir / BROKEN_LORA
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}" + b"\0" * 16)
    png = _png_with_prompt(tmp_path / "<em>PNGNAME STAR[*]STAR.png")
    ds = _dataset(tmp_path / "ds<s>SFOLD")

    runs = _hostile_runs(tmp_path, ds, lora)  # Train history, the start-up "resume" offer
    settings = AppSettings(model_path=str(tiny_diffusers), width=64, height=64, steps=1)
    settings.output_dir = str(tmp_path / "out<s>SFOLD")
    win = make_window(settings, engine=None, show=True)  # the real engine, tiny model
    walk = Walk()
    ws = win.generate

    # 1. a hostile LoRA in the stack; generate, so its report (and warnings) come back
    ws.form.prompt.set_text(PROMPT)
    ws.form.size_picker.set_size(64, 64)
    ws.form.steps.setValue(1)
    ws.form.loras.add_lora(str(lora), 1.0)
    qtbot.waitUntil(lambda: ws.form.loras.model.entries[0].badge not in ("", "…"), timeout=30_000)
    ws.generate_button.click()
    qtbot.waitUntil(lambda: ws.gallery_model.rowCount() == 1, timeout=180_000)
    qtbot.waitUntil(lambda: not win.controller.busy, timeout=60_000)
    ws.show_message(f"LoRA {lora.name}: scripted warning for {lora.name}", "warning")
    walk.window("generate")

    # 2. a broken LoRA: an error banner naming it, with "Details…" opened as a message box
    ws.form.loras.add_lora(str(broken), 1.0)
    qtbot.waitUntil(
        lambda: (
            len(ws.form.loras.model.entries) == 2
            and ws.form.loras.model.entries[1].badge not in ("", "…")
        ),
        timeout=30_000,
    )
    ws.generate_button.click()
    qtbot.waitUntil(lambda: not win.controller.busy and ws.banner.isVisible(), timeout=180_000)
    if not ws.banner.details:
        ws.show_message(f"Could not load {broken.name}.", "error", details=f"Traceback: {broken}")
    ws._show_details()
    qtbot.waitUntil(
        lambda: any(
            isinstance(w, QMessageBox) and w.isVisible() for w in QApplication.topLevelWidgets()
        ),
        timeout=30_000,
    )
    walk.window("error banner")
    for w in QApplication.topLevelWidgets():
        if isinstance(w, QMessageBox):
            w.close()
    ws.form.loras.model.remove(1)

    # 3. parameters read from a PNG whose prompt (and file name) hold HTML
    ws.load_image_parameters(str(png))
    qtbot.waitUntil(lambda: "PNGNAME" in ws.banner.label.text(), timeout=30_000)
    walk.window("png parameters")
    ws.load_image_parameters(str(ds / "<b>BOLD-unreadable.png"))
    qtbot.waitUntil(lambda: "BOLD-unreadable" in ws.banner.label.text(), timeout=30_000)
    walk.window("unreadable png")

    # 4. the Datasets tab on the hostile folder: table, grid, caption pane, check, findings
    win.tabs.setCurrentWidget(win.datasets_tab)
    qtbot.waitUntil(lambda: win.datasets_tab.created)
    dsw = win.datasets
    dsw.open_folder(str(ds))
    qtbot.waitUntil(lambda: dsw.model.rowCount() >= 2 and dsw.banner.isVisible(), timeout=30_000)
    dsw.select_row(0)
    dsw.stats.request_check()
    qtbot.waitUntil(lambda: dsw.stats.report is not None, timeout=60_000)
    walk.window("datasets")
    for key in dsw.stats.finding_keys():
        dsw.stats._on_issue_link(key)
        walk.window(f"datasets finding {key}")
    dsw.toggle_view()
    dsw.select_row(0)
    walk.window("datasets other view")

    # 5. the LoRA Library on that folder, the hostile LoRA selected
    win.tabs.setCurrentWidget(win.library_tab)
    qtbot.waitUntil(lambda: win.library_tab.created)
    lib = win.library
    lib.add_folder(str(lora_dir))
    qtbot.waitUntil(lambda: lib.model.row_of(str(lora)) >= 0, timeout=60_000)
    qtbot.waitUntil(lambda: lib.select(str(lora)), timeout=30_000)
    qtbot.waitUntil(
        lambda: lib.details.entry is not None and "TITLE" in lib.details.title.text(),
        timeout=30_000,
    )
    lib._fill_folders_menu()  # the folders menu names every LoRA folder
    walk.window("library")
    lib.set_view_mode("list")
    walk.window("library list")

    # 6. the Train tab exists too
    win.tabs.setCurrentWidget(win.train_tab)
    qtbot.waitUntil(lambda: win.train_tab.created, timeout=30_000)
    walk.window("train")
    win.train.open_record(runs[0])  # a run from the history: its view, checkpoints, error
    samples = win.train.run_view.samples  # its sample prompts come from the run's config file
    samples.set_prompts([PROMPT, CAPTION])
    samples.add_round(3, [str(png), str(png)])
    samples.enlarge(str(png))  # the sample opened large: title and caption
    walk.window("train run view")
    wiz = win.train.open_wizard()  # the new-run wizard on the hostile dataset folder
    page = wiz.dataset_page
    page.add_dataset(ds, select=True)
    qtbot.waitUntil(
        lambda: page.facts_label.text() not in ("", "Checking the dataset…"), timeout=60_000
    )
    walk.window("train wizard")
    wiz.reject()
    win.tabs.setCurrentWidget(win.generate)
    qtbot.waitUntil(lambda: QApplication.instance() is not None)

    print(
        f"\nuntrusted text: {walk.widgets} widgets walked, {walk.texts} texts checked, "
        f"{walk.hostile} showed hostile file text, witnesses seen: {sorted(walk.seen_witnesses)}"
    )
    assert not walk.problems, "\n".join(f"[{step}] {p}" for p, step in walk.problems.items())
    # the drive really put the hostile text on screen (each kind somewhere)
    for witness in PIECES:
        assert witness in walk.seen_witnesses, witness


def test_helpers_show_text_literally(qtbot):
    from ui.widgets.text import esc, esc_lines, plain_label, plain_tooltip, rich_label

    for raw in (CAPTION, LORA_NAME, PROMPT, "a\n<b>x</b>", "&lt;b&gt;", "plain words"):
        lab = plain_label(raw)
        qtbot.addWidget(lab)
        assert _label_rendered(lab) == raw
        assert _tooltip_rendered(plain_tooltip(raw)) == raw
        rich = rich_label(f"<b>Head.</b> {esc_lines(raw)}")
        qtbot.addWidget(rich)
        assert _label_rendered(rich) == f"Head. {raw}"
    assert plain_tooltip("plain words") == "plain words"  # ordinary tooltips stay as they are
    from ui.widgets.progress_panel import ProgressPanel

    panel = ProgressPanel()  # phase text (e.g. "Loading <model folder>") in the bar's format
    qtbot.addWidget(panel)
    panel.start(4)
    panel.set_phase("Loading 100%v %m %p <b>BOLD")
    assert panel.bar.text().replace("\u2060", "") == "Loading 100%v %m %p <b>BOLD…"
    assert panel.phase.text() == "Loading 100%v %m %p <b>BOLD"
    assert panel.phase.textFormat() == Qt.TextFormat.PlainText
    assert html.unescape(esc("<&>'\"")) == "<&>'\""


def test_dialogs_show_file_text_literally(qtbot, tmp_path):
    """The dialogs that quote names, captions, prompts and errors, opened with hostile text."""
    from ui.datasets.bulk_dialog import BulkEditDialog
    from ui.datasets.dialogs import ConflictDialog, ImportReportDialog
    from ui.dialogs.crash_report import CrashReportDialog
    from ui.dialogs.image_viewer import ImageViewerDialog
    from ui.dialogs.model_setup import ModelSetupDialog
    from ui.dialogs.startup_check import StartupCheckDialog
    from ui.dialogs.structured_prompt import StructuredPromptDialog
    from ui.models.gallery_model import GalleryItem
    from ui.widgets.prompt_editor import PromptEditorWidget
    from zitdesk.crashlog import CrashReport
    from zitdesk.dataset.importer import Imported, ImportReport, Skipped
    from zitdesk.dataset.store import Conflict
    from zitdesk.gpu import DoctorReport

    name = f"{IMAGE_STEM}.png"
    png = _png_with_prompt(tmp_path / "<em>PNGNAME STAR[*]STAR.png")
    rep = ImportReport(
        target=str(tmp_path / "ds<s>SFOLD"),
        imported=[
            Imported(
                source=str(tmp_path / name), image=name, renamed_from="<b>BOLD.png", notes=[CAPTION]
            )
        ],
        skipped=[
            Skipped(
                source=str(tmp_path / "<b>BOLD.zip!<i>ITAL.png"),
                reason=f"{LORA_NAME} is not an image",
            )
        ],
    )
    doctor = DoctorReport()
    doctor.add("error", "cuda", f"{LORA_NAME} could not be loaded", f"Delete {CAPTION}")
    crash = CrashReport(
        path=tmp_path / "<b>BOLD.log",
        text=f"Traceback\n  File x\nValueError: {LORA_NAME} {CAPTION}",
    )
    dialogs = [
        ImportReportDialog(rep),
        ConflictDialog(
            [
                Conflict(
                    name,
                    ours=CAPTION + " mine",
                    theirs=CAPTION,
                    ours_saved_as=name + ".zitdesk-conflict",
                )
            ]
        ),
        BulkEditDialog(
            {
                "all": [(name, CAPTION)],
                "selected": [(name, CAPTION)],
                "filtered": [(name, CAPTION)],
            },
            trigger="<b>BOLD",
            training_trigger="<b>BOLD",
        ),
        CrashReportDialog(crash),
        StartupCheckDialog(doctor),
        ImageViewerDialog(GalleryItem(str(png), 5, PROMPT, 64, 64)),
        StructuredPromptDialog(PROMPT + "\n" + CAPTION),
    ]
    setup = ModelSetupDialog([], "")
    dialogs.append(setup)
    editor = PromptEditorWidget()  # the token counter's tooltip quotes the tokenizer's load error
    editor._on_task_failed("load", f"{tmp_path / LORA_NAME} is not a tokenizer")
    dialogs.append(editor)
    for d in dialogs:
        qtbot.addWidget(d)
        d.show()
    qtbot.waitUntil(lambda: not setup.busy, timeout=30_000)
    setup.check_folder(str(tmp_path / "ds<s>SFOLD"))  # not a model: the error quotes the path
    qtbot.waitUntil(lambda: not setup.busy and setup.error.isVisible(), timeout=30_000)
    walk = Walk()
    walk.window("dialogs")
    print(
        f"\nuntrusted text (dialogs): {walk.widgets} widgets walked, {walk.texts} texts "
        f"checked, {walk.hostile} showed hostile file text"
    )
    assert not walk.problems, "\n".join(f"[{step}] {p}" for p, step in walk.problems.items())
    for witness in ("BOLD", "onerror", "UCAT", "ITAL", "TBLA", "Q&", "SFOLD", "PNGHEAD"):
        assert witness in walk.seen_witnesses, witness
