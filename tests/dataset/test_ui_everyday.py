"""#14's Datasets bullets that had no test of their own: a dropped zip and folder in one drop,
dialog titles and the preset combo shown whole, and a toolbar that still fits a laptop screen
with the actions hooked into it (the place other actions go)."""

from __future__ import annotations

import zipfile

from messy import make_dataset, pattern, save
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QPushButton


def _drop(ws, paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    ev = QDropEvent(
        QPointF(QPoint(20, 20)),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    ws.dropEvent(ev)


def test_dropping_a_zip_and_a_folder_imports_both(qtbot, make_workspace, tmp_path):
    ws = make_workspace(make_dataset(tmp_path / "ds", 2))
    inner = tmp_path / "inner"
    save(pattern(48, 48, 4), inner / "zipped.png")
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(inner / "zipped.png", "zipped.png")
        z.writestr("zipped.txt", "from the zip")
    folder = tmp_path / "loose"
    save(pattern(50, 40, 3), folder / "loose.png")
    (folder / "loose.txt").write_text("loose caption")
    _drop(ws, [archive, folder])
    qtbot.waitUntil(lambda: ws.model.total == 4, timeout=30_000)
    ds = ws.session.dataset
    assert ds.by_name["zipped.png"].caption == "from the zip"
    assert ds.by_name["loose.png"].caption == "loose caption"
    assert ws.last_import is not None and not ws.last_import.skipped


def test_dialog_titles_and_the_preset_combo_are_whole(qtbot, make_workspace, tmp_path):
    from ui.datasets.actions import wide_input
    from ui.datasets.crop import CropDialog
    from ui.datasets.dialogs import ImportReportDialog  # noqa: F401 - its title is short

    ws = make_workspace(make_dataset(tmp_path / "ds", 2, size=(64, 64)))
    ws.resize(1280, 700)
    ws.show()
    qtbot.waitExposed(ws)
    combo = ws.stats.preset
    assert combo.width() >= combo.sizeHint().width() - 2, (combo.width(), combo.sizeHint())
    for title in ("New dataset", "Restore a snapshot of the captions"):
        dlg = wide_input(ws, title, "x")
        fm = dlg.fontMetrics()
        assert dlg.minimumWidth() >= fm.horizontalAdvance(title) + 120
        dlg.deleteLater()
    from PySide6.QtGui import QImage

    long = "a rather long file name of a photograph from a phone 2026-12-04 21.33.07.jpg"
    img = QImage(64, 64, QImage.Format.Format_RGB32)
    crop = CropDialog(long, img, (64, 64), parent=ws)
    assert crop.minimumWidth() >= crop.fontMetrics().horizontalAdvance(crop.windowTitle()) + 120
    crop.deleteLater()


def test_toolbar_with_its_actions_fits_a_laptop(qtbot, make_workspace, tmp_path):
    ws = make_workspace(make_dataset(tmp_path / "ds", 2))
    # every action hooked in (Crop…, Caption…) and the window still fits 1280 px
    assert ws.minimumSizeHint().width() <= 1240, ws.minimumSizeHint()
    extra = QPushButton("Another…")
    ws.toolbar.add_action_button(extra)
    assert extra.isEnabled()  # a dataset is open
    ws.toolbar.set_dataset_open(False)
    assert not extra.isEnabled() and not ws.toolbar.crop_button.isEnabled()
