"""The Datasets workspace's top row: open/new, import (files or a whole folder), bulk edit,
snapshots, curation (exclude from training, crop, move to the trash), undo/redo, table/grid.

:class:`DatasetToolbar` owns only its buttons; it says what the user asked for through
signals and the workspace decides what that means (:class:`ui.datasets.actions.DatasetActions`
for the actions on images). More actions ("Caption…") go in with :meth:`add_action_button`:
they sit with the curation buttons and follow "a dataset is open".
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from ui.widgets.text import make_plain, set_plain_tooltip


class DatasetToolbar(QWidget):
    open_requested = Signal()
    new_requested = Signal()
    import_files_requested = Signal()
    import_folder_requested = Signal()
    bulk_requested = Signal()
    snapshots_requested = Signal()
    exclude_requested = Signal()
    trash_requested = Signal()
    crop_requested = Signal()
    view_requested = Signal(str)  # "table" | "grid"

    def __init__(self, undo: QAction, redo: QAction, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.path_label = PathLabel("No dataset open")
        # a long folder path is cut, not allowed to widen the window (full path in the tooltip)
        self.path_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.path_label.setMinimumWidth(80)
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open a dataset folder")
        self.new_button = QPushButton("New…")
        self.new_button.setToolTip("Create an empty dataset folder")
        self.import_button = QPushButton("Import files…")
        self.import_button.setToolTip(
            "Copy images (with their captions) or .zip files into this dataset — or drop them here"
        )
        self.import_folder_button = QPushButton("Import folder…")
        self.import_folder_button.setToolTip(
            "Copy a whole folder (images, captions, and any .zip inside it) into this dataset"
        )
        self.bulk_button = QPushButton("Bulk edit…")
        self.bulk_button.setToolTip(
            "Add trigger word, find/replace, add/remove tags, clean up (Ctrl+B)"
        )
        self.snapshot_button = QPushButton("Snapshots…")
        self.snapshot_button.setToolTip(
            "Restore every caption to a snapshot taken before a bulk edit (itself undoable)"
        )
        self.exclude_button = QPushButton("Exclude")
        self.exclude_button.setToolTip(
            "Leave the selected images out of training without "
            "deleting them; again to include them (Ctrl+E)"
        )
        self.crop_button = QPushButton("Crop…")
        self.crop_button.setToolTip(
            "Crop the current image, with the bucket the trainer will use shown; the "
            "picture as it was is kept and Undo brings it back (Ctrl+Shift+R)"
        )
        self.trash_button = QPushButton("Delete…")
        self.trash_button.setToolTip(
            "Move the selected images and their captions to the system trash (Delete)"
        )
        # short fixed labels: the action's text ("Undo Exclude cat 05 small.jpg") goes to the
        # tooltip, so the row never grows past a laptop screen
        self.undo_button = _action_button("Undo", undo)
        self.redo_button = _action_button("Redo", redo)
        self.table_button = QToolButton()
        self.table_button.setText("Table")
        self.grid_button = QToolButton()
        self.grid_button.setText("Grid")
        self.view_group = QButtonGroup(self)
        for b in (self.table_button, self.grid_button):
            b.setCheckable(True)
            self.view_group.addButton(b)
        self.table_button.setChecked(True)

        self._extra: list[QWidget] = []
        row = self._row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (
            self.open_button,
            self.new_button,
            self.import_button,
            self.import_folder_button,
            self.bulk_button,
            self.snapshot_button,
        ):
            row.addWidget(w)
        row.addSpacing(8)
        row.addWidget(self.exclude_button)
        row.addWidget(self.crop_button)
        row.addWidget(self.trash_button)
        row.addSpacing(8)
        row.addWidget(self.undo_button)
        row.addWidget(self.redo_button)
        row.addSpacing(8)
        row.addWidget(self.table_button)
        row.addWidget(self.grid_button)
        row.addSpacing(8)
        row.addWidget(self.path_label, 1)

        self.open_button.clicked.connect(self.open_requested)
        self.new_button.clicked.connect(self.new_requested)
        self.import_button.clicked.connect(self.import_files_requested)
        self.import_folder_button.clicked.connect(self.import_folder_requested)
        self.bulk_button.clicked.connect(self.bulk_requested)
        self.snapshot_button.clicked.connect(self.snapshots_requested)
        self.exclude_button.clicked.connect(self.exclude_requested)
        self.trash_button.clicked.connect(self.trash_requested)
        self.crop_button.clicked.connect(self.crop_requested)
        self.table_button.clicked.connect(lambda: self.view_requested.emit("table"))
        self.grid_button.clicked.connect(lambda: self.view_requested.emit("grid"))
        for push in self.findChildren(QPushButton):
            _compact(push)

    def add_action_button(self, button: QWidget) -> None:
        """Add a button for another action on the images, after Delete…; it is enabled only
        while a dataset is open."""
        self._row.insertWidget(self._row.indexOf(self.trash_button) + 1, button)
        _compact(button)
        self._extra.append(button)
        button.setEnabled(self.trash_button.isEnabled())

    def set_dataset_open(self, on: bool) -> None:
        # import stays enabled: without a dataset it creates one named after the source
        for w in (
            self.bulk_button,
            self.snapshot_button,
            self.exclude_button,
            self.crop_button,
            self.trash_button,
            *self._extra,
        ):
            w.setEnabled(on)

    def set_view(self, name: str) -> None:
        (self.grid_button if name == "grid" else self.table_button).setChecked(True)

    @property
    def view(self) -> str:
        return "grid" if self.grid_button.isChecked() else "table"


class PathLabel(QLabel):
    """The open folder, elided in the middle when the row is narrow (the full path in
    :meth:`full_text` and the tooltip); always plain text."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        make_plain(self)
        self.setObjectName("muted")
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._full = ""
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        self._full = text
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, e) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(e)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(
            self._full, Qt.TextElideMode.ElideMiddle, max(self.width(), 40)
        )
        super().setText(shown)


def _compact(button: QWidget) -> None:
    """Let a text button shrink to its text on a narrow window (Qt styles give push buttons an
    80 px minimum; at full width it keeps its normal size)."""
    if isinstance(button, QPushButton) and button.text():
        fm = button.fontMetrics()
        button.setMinimumWidth(fm.horizontalAdvance(button.text()) + 2 * fm.averageCharWidth() + 8)


def _action_button(label: str, action: QAction) -> QToolButton:
    """A button that triggers ``action`` and follows its enabled state, with a fixed label."""
    b = QToolButton()
    b.setText(label)

    def sync() -> None:
        try:
            b.setEnabled(action.isEnabled())
            # the command's text names files: shown literally
            set_plain_tooltip(b, f"{action.text()} ({action.shortcut().toString()})")
        except RuntimeError:  # the action or the button is being destroyed
            pass

    b.clicked.connect(action.trigger)
    action.changed.connect(sync)
    sync()
    return b
