"""Curation and honest state in the Datasets workspace: exclude from training (the trainer and
the check honour it), move to the trash, no false "changed outside" alarm, a check that follows
edits, folder import with a zip inside, the sharper flag for tiny images, single messages, and
the last folder kept under ZITDESK_HOME."""

from __future__ import annotations

import zipfile

import pytest
from messy import make_dataset, pattern, save

from tests.support.dataset_window import datasets_workspace
from ui.datasets.table_model import Col
from zitdesk.dataset.check import CheckOptions, check_folder
from zitdesk.train.dataset import EXCLUDE_FILE, scan_folder


@pytest.fixture
def folder(tmp_path):
    return make_dataset(tmp_path / "ds", 6, size=(64, 48))


def _flushed(ws) -> bool:
    return not ws.session.dirty and not ws.session._flushing


def test_exclude_keeps_the_file_and_the_trainer_and_check_skip_it(qtbot, make_workspace, folder):
    ws = make_workspace(folder)
    from PySide6.QtCore import QItemSelectionModel

    ws.select_row(2)
    flags = QItemSelectionModel.SelectionFlag
    ws.table.selectionModel().select(
        ws.model.index(2, 0),  # exactly this row selected
        flags.ClearAndSelect | flags.Rows,
    )
    assert ws._selected_rows() == [2]
    ws.toggle_excluded()
    rec = ws.session.dataset.by_name["img 0002.png"]
    assert rec.excluded and "excluded" in ws.model.index(2, Col.FLAGS).data()
    ws.save_now()
    qtbot.waitUntil(lambda: _flushed(ws), timeout=30_000)
    assert (folder / EXCLUDE_FILE).read_text(encoding="utf-8") == "img 0002.png\n"
    assert (folder / "img 0002.png").is_file() and (folder / "img 0002.txt").is_file()
    scan = scan_folder(folder)
    assert [it.image.name for it in scan.items] == [f"img 000{i}.png" for i in (0, 1, 3, 4, 5)]
    assert scan.excluded == 1
    assert check_folder(folder, CheckOptions(), tokenizer=None).images == 5
    assert len(ws.session.dataset.train_items()) == 5
    # the workspace's own check sees what the trainer sees
    with qtbot.waitSignal(ws.session.check_done, timeout=30_000) as sig:
        ws._run_check()
    assert sig.args[0].images == 5
    # reopen: still excluded; undo includes it again
    before = ws.session.dataset
    ws.session.open(folder)  # opens on a worker: wait for the new dataset, not the old one
    qtbot.waitUntil(
        lambda: ws.session.dataset is not before and not ws.session._flushing, timeout=30_000
    )
    assert ws.session.dataset.by_name["img 0002.png"].excluded
    ws.undo_action.trigger()
    assert not ws.session.dataset.by_name["img 0002.png"].excluded
    ws.save_now()
    qtbot.waitUntil(lambda: _flushed(ws), timeout=30_000)
    assert (folder / EXCLUDE_FILE).read_text(encoding="utf-8") == ""
    assert len(scan_folder(folder).items) == 6


def test_delete_moves_image_and_caption_to_the_trash(
    qtbot, make_workspace, folder, tmp_path, monkeypatch
):
    data_home = tmp_path / "xdg"
    (data_home / "Trash").mkdir(parents=True)
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    ws = make_workspace(folder)
    ws.session.edit("e", [("img 0001.png", "photo 1, tag1", "edited before delete")])
    assert ws.trash(["img 0001.png"]) == ["img 0001.png"]
    assert not (folder / "img 0001.png").exists() and not (folder / "img 0001.txt").exists()
    trashed = data_home / "Trash" / "files"
    assert (trashed / "img 0001.png").is_file()
    assert (trashed / "img 0001.txt").read_text() == "edited before delete"
    assert ws.model.total == 5 and ws.model.row_of("img 0001.png") is None
    assert "trash" in ws.banner.label.text()
    # the watcher does not call our own delete "removed outside zitdesk"
    with qtbot.waitSignal(
        ws.session._runner.done, timeout=30_000, check_params_cb=lambda tag, _r: tag[0] == "poll"
    ):
        ws.session._poll()
    assert "outside" not in ws.banner.label.text()


def test_open_of_a_folder_with_an_unreadable_image_is_no_false_alarm(qtbot, make_workspace, folder):
    (folder / "broken.png").write_bytes(b"not a png at all")
    ws = make_workspace(folder)
    assert ws.session.dataset.problems  # said once, as a problem
    with qtbot.waitSignal(
        ws.session._runner.done, timeout=30_000, check_params_cb=lambda tag, _r: tag[0] == "poll"
    ):
        ws.session._poll()
    assert "outside zitdesk" not in ws.banner.label.text()
    save(pattern(40, 40, 9), folder / "new one.png")  # a real outside change still shows
    with qtbot.waitSignal(ws.session.images_changed_outside, timeout=30_000):
        ws.session._poll()


def test_check_panel_follows_edits(qtbot, make_workspace, folder, monkeypatch):
    import ui.datasets.checking as checking

    monkeypatch.setattr(checking, "RECHECK_MS", 50)
    (folder / "img 0003.txt").unlink()
    ws = make_workspace(folder, auto_check=True)
    qtbot.waitUntil(lambda: ws.stats.report is not None and not ws.session.checking, timeout=30_000)
    assert "missing_caption" in {i.code for i in ws.stats.report.issues}
    ws.session.edit("caption it", [("img 0003.png", None, "now captioned")])
    qtbot.waitUntil(
        lambda: (
            ws.stats.report is not None
            and not ws.session.checking
            and "missing_caption" not in {i.code for i in ws.stats.report.issues}
        ),
        timeout=30_000,
    )
    assert "no caption" not in ws.stats.verdict.text()


def test_import_a_folder_with_a_zip_inside(qtbot, make_workspace, folder, tmp_path):
    src = tmp_path / "src"
    save(pattern(50, 40, 3), src / "loose.png")
    (src / "loose.txt").write_text("loose caption")
    inner = tmp_path / "inner"
    save(pattern(48, 48, 4), inner / "zipped.png")
    with zipfile.ZipFile(src / "pack.zip", "w") as z:
        z.write(inner / "zipped.png", "zipped.png")
        z.writestr("zipped.txt", "from the zip")
    ws = make_workspace(folder)
    assert ws.toolbar.import_folder_button.isEnabled()
    ws.import_paths([src])
    qtbot.waitUntil(lambda: ws.model.total == 8, timeout=30_000)
    assert ws.last_import is not None and not ws.last_import.skipped
    assert ws.session.dataset.by_name["zipped.png"].caption == "from the zip"
    assert ws.session.dataset.by_name["loose.png"].caption == "loose caption"


def test_tiny_images_get_the_sharper_flag(tmp_path):
    d = make_dataset(tmp_path / "ds", 2, size=(1024, 1024))
    save(pattern(32, 32, 1), d / "tiny.png")
    (d / "tiny.txt").write_text("tiny")
    save(pattern(640, 640, 2), d / "medium.png")
    (d / "medium.txt").write_text("medium")
    rep = check_folder(d, CheckOptions(resolutions=(512, 768, 1024)), tokenizer=None)
    codes = {i.code: i for i in rep.issues}
    assert codes["very_low_res"].files == ["tiny.png"]
    assert "medium.png" in codes["low_res"].files and "tiny.png" not in codes["low_res"].files
    assert "far below" in codes["very_low_res"].message


def test_verdict_says_blocked_once(qtbot, make_workspace, tmp_path):
    d = tmp_path / "only tiny"
    save(pattern(8, 8, 1), d / "speck.png")
    ws = make_workspace(d)
    with qtbot.waitSignal(ws.session.check_done, timeout=30_000):
        ws._run_check()
    text = ws.stats.verdict.text()
    assert text.count("Blocked") == 1, text


def test_last_folder_is_kept_under_zitdesk_home(qtbot, tmp_path, folder):
    from PySide6.QtCore import QSettings

    from ui.datasets.workspace import SETTINGS_KEY
    from ui.state import window_settings

    default = QSettings()
    before = default.value(SETTINGS_KEY)
    ws = datasets_workspace(folder, tmp_path, remember=True)
    qtbot.addWidget(ws)
    try:
        qtbot.waitUntil(lambda: ws.session.dataset is not None, timeout=30_000)
        assert window_settings().value(SETTINGS_KEY) == str(folder)
        assert QSettings().value(SETTINGS_KEY) == before  # nothing escapes ZITDESK_HOME
    finally:
        ws.shutdown()
    ws2 = datasets_workspace(None, tmp_path, remember=True)
    qtbot.addWidget(ws2)
    try:
        qtbot.waitUntil(lambda: ws2.session.dataset is not None, timeout=30_000)
        assert ws2.session.dataset.folder == folder
    finally:
        ws2.shutdown()
