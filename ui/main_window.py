"""The main window: composition root and wiring only (no generation logic here).

Four workspaces in tabs (Generate, Datasets, Train and LoRA Library; the last three are built on
first show), a status bar with the live memory meter, keyboard shortcuts, PNG drop to load
parameters, window state restored through ``QSettings``. A banner above the tabs offers to resume
training runs the app did not finish (read right after the window appears: small JSON files
only); the tray icon (``ui.train.notify``) reports finished and failed runs. Closing cancels a
running job (a training run saves a checkpoint first) and waits for the engine thread.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QLabel, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from ui.dialogs.model_setup import ModelSetupDialog
from ui.engine_host import EngineController, EngineFactory
from ui.memory_poller import MemoryPoller
from ui.models.history_store import HistoryStore
from ui.settings_saver import SettingsSaver
from ui.state import window_settings
from ui.tasks import TaskSignals, run_task, wait_for_tasks
from ui.thumbnails import ThumbnailCache
from ui.widgets.banner import BannerWidget
from ui.widgets.vram_meter import VramMeterWidget
from ui.workspaces.generate import GenerateWorkspace
from ui.workspaces.lazy import LazyWorkspace
from zitdesk.io import user_dirs
from zitdesk.memory_predict import MemoryPredictor
from zitdesk.settings import AppSettings

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
APP_NAME = "zitdesk"
WORKSPACES = ("Generate", "Datasets", "Train", "LoRA Library")


class ErrorReporter(QObject):
    """Carries unhandled exceptions from any thread to the GUI thread (queued signal)."""

    reported = Signal(str, str)

    def report(self, summary: str, details: str) -> None:
        self.reported.emit(summary, details)


def predictor_path() -> Path:
    return user_dirs()["data"] / "vram_history.json"


def _make_datasets(parent: QWidget) -> QWidget:
    from ui.datasets.workspace import DatasetsWorkspace

    return DatasetsWorkspace(parent)


def _unfinished_runs() -> list:
    from zitdesk.train.runs import unfinished_runs

    return list(unfinished_runs())


def _make_library(parent: QWidget) -> QWidget:
    from ui.library import LibraryWorkspace

    return LibraryWorkspace(parent)  # scans on first show


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: AppSettings,
        engine_factory: EngineFactory | None = None,
        snapshot_fn: Callable[[], Any] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        # Ends with the display name, so the platform does not append "— zitdesk" a second time.
        self.setWindowTitle(f"Z-Image Turbo studio — {APP_NAME}")
        self.setAcceptDrops(True)
        self.settings = settings
        self.controller = EngineController(engine_factory, self)
        self.thumbnails = ThumbnailCache(parent=self)
        self.predictor = MemoryPredictor.load(predictor_path())
        history = HistoryStore(limit=settings.history_limit)
        history.load()
        self.generate = GenerateWorkspace(
            self.controller, settings, self.predictor, history, self.thumbnails
        )
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.generate, "Generate")
        # Datasets and LoRA Library are built when first shown: their imports (numpy, PIL,
        # watchdog, header parsing) would otherwise double the time to the first window.
        self.datasets_tab = LazyWorkspace(_make_datasets)
        self.tabs.addTab(self.datasets_tab, "Datasets")
        # Train pulls in pyqtgraph and the training modules: built on first show as well.
        self.train_tab = LazyWorkspace(self._make_train, self._wire_train)
        self.tabs.addTab(self.train_tab, "Train")
        self.library_tab = LazyWorkspace(_make_library, self._wire_library)
        self.tabs.addTab(self.library_tab, "LoRA Library")
        self.recovery_banner = BannerWidget()
        self.recovery_banner.label.setTextFormat(Qt.TextFormat.PlainText)  # run names
        self.recovery_banner.action_clicked.connect(self._on_recovery_action)
        self._unfinished: list[Any] = []
        self._library_pending = ""
        central = QWidget()
        central_lay = QVBoxLayout(central)
        central_lay.setContentsMargins(0, 0, 0, 0)
        central_lay.setSpacing(0)
        central_lay.addWidget(self.recovery_banner)
        central_lay.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self._notifier = None  # the tray icon, made when the Train tab needs it
        self._recovery_tasks = TaskSignals(self)
        self._recovery_tasks.succeeded.connect(self._on_unfinished)
        self._recovery_tasks.failed.connect(self._on_unfinished_failed)
        self.meter = VramMeterWidget()
        self.status_label = QLabel("Ready.")
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)  # messages name files
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.generate.variants.status_label)  # Turbo / Base
        self.statusBar().addPermanentWidget(self.meter)
        self.poller = MemoryPoller(snapshot_fn, parent=self)
        self.saver = SettingsSaver(settings, self.generate.store_settings, parent=self)
        self.errors = ErrorReporter(self)
        self._closing = False
        self._setup_dialog: ModelSetupDialog | None = None
        self._system_check: QObject | None = None

        self.poller.snapshot_ready.connect(self.meter.set_snapshot)
        self.poller.snapshot_ready.connect(self.generate.set_snapshot)
        self.generate.prediction_changed.connect(self.meter.set_prediction)
        self.generate.card_changed.connect(self.meter.set_focus)  # several GPUs: the chosen one
        self.generate.status_message.connect(self._on_generate_status)
        self._status: dict[int, str] = {}  # the last message of each workspace
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.generate.model_setup_requested.connect(self.open_model_setup)
        self.generate.predictor_updated.connect(self._save_predictor)
        self.generate.form.changed.connect(self.saver.mark_dirty)
        self.generate.form.loras.library_provider = self._library_model
        self.errors.reported.connect(self._on_unhandled_error)
        self._make_shortcuts()
        self._make_menu()
        self.restore_state()
        self.poller.start()
        self.generate.update_prediction()
        QTimer.singleShot(0, self.check_unfinished_runs)

    # -- set-up ---------------------------------------------------------------------------------
    def _make_shortcuts(self) -> None:
        self.shortcuts: dict[str, QShortcut] = {}
        # Generate's keys belong to the Generate workspace: they are live only while its tab is
        # shown, so Ctrl+Enter / Escape typed in another workspace (the Datasets caption editor)
        # never queue or cancel a generation. (Window-wide while enabled: they also work when
        # the focus is on the tab bar, which a widget-with-children scope would miss.)
        for name, keys, slot in (
            ("generate", "Ctrl+Return", self.generate.generate),
            ("generate_enter", "Ctrl+Enter", self.generate.generate),
            ("cancel", "Escape", self.generate.cancel),
            ("focus_prompt", "Ctrl+L", self.focus_prompt),
        ):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.ShortcutContext.WindowShortcut)
            sc.activated.connect(slot)
            self.shortcuts[name] = sc
        self.tabs.currentChanged.connect(self._scope_generate_shortcuts)
        self._scope_generate_shortcuts()
        for i in range(len(WORKSPACES)):
            sc = QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self)
            sc.setProperty("workspace", i)
            sc.activated.connect(self._on_workspace_shortcut)
            self.shortcuts[f"workspace_{i + 1}"] = sc

    def _scope_generate_shortcuts(self, *_args) -> None:
        on = self.tabs.currentWidget() is self.generate
        for name in ("generate", "generate_enter", "cancel"):
            self.shortcuts[name].setEnabled(on)

    def _make_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        act = QAction("Set up model…", self)
        act.triggered.connect(self.open_model_setup)
        file_menu.addAction(act)
        quit_act = QAction("Quit", self)
        quit_act.setShortcuts([QKeySequence("Ctrl+Q")])  # StandardKey.Quit is empty on Windows
        quit_act.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        quit_act.triggered.connect(self.close)
        file_menu.addAction(quit_act)
        view = self.menuBar().addMenu("&View")
        for i, name in enumerate(WORKSPACES):
            a = QAction(f"{name}\tCtrl+{i + 1}", self)
            a.setData(i)
            a.triggered.connect(self._on_workspace_action)
            view.addAction(a)
        help_menu = self.menuBar().addMenu("&Help")
        keys = QAction("Keyboard shortcuts", self)
        keys.triggered.connect(self._show_shortcuts)
        help_menu.addAction(keys)
        check = QAction("System check…", self)
        check.setToolTip("NVIDIA driver, CUDA, GPU support in this build, VRAM tier")
        check.triggered.connect(self.open_system_check)
        help_menu.addAction(check)

    # -- commands -------------------------------------------------------------------------------
    def switch_workspace(self, index: int) -> None:
        if 0 <= index < self.tabs.count():
            self.tabs.setCurrentIndex(index)

    @Slot()
    def focus_prompt(self) -> None:
        self.switch_workspace(0)
        self.generate.focus_prompt()

    @Slot(str)
    def show_status(self, text: str) -> None:
        self._status[self.tabs.currentIndex()] = text
        self.status_label.setText(text)

    @Slot(str)
    def _on_generate_status(self, text: str) -> None:
        """Generate's messages show while Generate is the workspace in front, else wait there."""
        index = self.tabs.indexOf(self.generate)
        self._status[index] = text
        if self.tabs.currentIndex() == index:
            self.status_label.setText(text)

    @Slot(int)
    def _on_tab_changed(self, index: int) -> None:
        self.status_label.setText(self._status.get(index, "Ready."))

    def show_notice(self, text: str, level: str = "warning") -> None:
        """A message for the user that does not block (settings reset, crash report, ...)."""
        self.generate.show_message(text, level)

    def ensure_model_configured(self) -> ModelSetupDialog | None:
        """Open the first-run setup when no model is configured (non-blocking)."""
        if self.settings.model_configured:
            return None
        return self.open_model_setup()

    @Slot()
    def open_model_setup(self) -> ModelSetupDialog:
        if self._setup_dialog is not None:
            self._setup_dialog.raise_()
            return self._setup_dialog
        dlg = ModelSetupDialog(self.settings.extra_model_roots, self.settings.model_path, self)
        dlg.accepted.connect(self._on_model_chosen)
        dlg.finished.connect(self._on_setup_closed)
        self._setup_dialog = dlg
        dlg.open()
        return dlg

    @Slot()
    def _on_model_chosen(self) -> None:
        dlg = self._setup_dialog
        if dlg is None or not dlg.model_path:
            return
        self.settings.model_path = dlg.model_path
        self.settings.model_files = dict(dlg.model_files)
        self.saver.mark_dirty()
        self.saver.flush()
        self.show_status(f"Model: {dlg.model_path}")
        self.generate.variants.model_changed()  # its variant and that variant's defaults
        if self.library_tab.created:
            self.library.set_model(dlg.model_path)

    @Slot(int)
    def _on_setup_closed(self, _result: int) -> None:
        if self._setup_dialog is not None:
            self._setup_dialog.deleteLater()
            self._setup_dialog = None
        if not self.settings.model_configured:
            self.generate.show_message(
                "No model is set up yet: Generate needs the Z-Image Turbo files.",
                "warning",
                "Set up model…",
                "setup",
            )

    @Slot()
    def _on_workspace_shortcut(self) -> None:
        self.switch_workspace(int(self.sender().property("workspace")))

    @Slot()
    def _on_workspace_action(self) -> None:
        self.switch_workspace(int(self.sender().data()))

    @Slot()
    def _show_shortcuts(self) -> None:
        QMessageBox.information(
            self,
            "Keyboard shortcuts",
            (
                "Ctrl+Enter  Generate (adds to the queue while a job runs)\n"
                "Esc  Cancel the running job\n"
                "Ctrl+L  Focus the prompt\n"
                "Ctrl+1 … Ctrl+4  Generate, Datasets, Train, LoRA Library\n"
                "Drop a PNG on the window to load its parameters"
            ),
        )

    @Slot()
    def open_system_check(self) -> None:
        try:
            from ui.dialogs.startup_check import StartupCheck
        except ImportError:
            self.show_notice("The system check is not available in this build.")
            return
        self._system_check = StartupCheck(self, always_show=True)
        self._system_check.start()

    @Slot()
    def _save_predictor(self) -> None:
        try:
            self.predictor.save(predictor_path())
        except OSError as exc:
            log.warning("could not save memory measurements: %s", exc)

    @Slot(str, str)
    def _on_unhandled_error(self, summary: str, details: str) -> None:
        self.generate.show_message(
            f"Something went wrong inside zitdesk: {summary}. The app keeps "
            "running; the error was written to the crash log.",
            "error",
            details=details,
        )

    # -- drag and drop --------------------------------------------------------------------------
    @staticmethod
    def _dropped_image(event) -> str:
        md = event.mimeData()
        if not md.hasUrls():
            return ""
        for url in md.urls():
            if url.isLocalFile() and url.toLocalFile().lower().endswith(IMAGE_SUFFIXES):
                return url.toLocalFile()
        return ""

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if self._dropped_image(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        path = self._dropped_image(event)
        if not path:
            event.ignore()
            return
        event.acceptProposedAction()
        self.switch_workspace(0)
        self.generate.load_image_parameters(path)

    # -- state ----------------------------------------------------------------------------------
    def restore_state(self) -> None:
        qs = window_settings()
        geometry = qs.value("geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1400, 880)
        state = qs.value("windowState")
        if state is not None:
            self.restoreState(state)
        for name, splitter in (
            ("split", self.generate.split),
            ("centerSplit", self.generate.center_split),
        ):
            value = qs.value(name)
            if value is not None:
                splitter.restoreState(value)
        with contextlib.suppress(TypeError, ValueError):
            self.switch_workspace(int(qs.value("workspace", 0)))

    def save_state(self) -> None:
        qs = window_settings()
        qs.setValue("geometry", self.saveGeometry())
        qs.setValue("windowState", self.saveState())
        qs.setValue("split", self.generate.split.saveState())
        qs.setValue("centerSplit", self.generate.center_split.saveState())
        qs.setValue("workspace", self.tabs.currentIndex())
        qs.sync()

    @property
    def library(self):
        """The LoRA Library workspace (built on first use)."""
        return self.library_tab.widget()

    @property
    def datasets(self):
        """The Datasets workspace (built on first use)."""
        return self.datasets_tab.widget()

    @property
    def notifier(self):
        """The desktop notifier (one tray icon per window), created on first use."""
        if self._notifier is None:
            from ui.train.notify import Notifier

            self._notifier = Notifier(self)
        return self._notifier

    @property
    def train(self):
        """The Train workspace (built on first use)."""
        return self.train_tab.widget()

    def _make_train(self, parent: QWidget) -> QWidget:
        from ui.train.workspace import TrainWorkspace

        return TrainWorkspace(
            self.controller, self.thumbnails, self.settings, self.notifier, parent=parent
        )

    def _wire_train(self, train) -> None:
        train.status_message.connect(self.show_status)
        train.try_requested.connect(self._on_train_try)
        train.run_ended.connect(self._on_train_run_ended)
        train.library_requested.connect(self.show_in_library)
        train.model_setup_requested.connect(self.open_model_setup)
        train.datasets_requested.connect(self._show_datasets)
        train.dataset_fix_requested.connect(self._open_dataset)
        self.poller.snapshot_ready.connect(train.set_snapshot)
        if self.poller.last is not None:
            train.set_snapshot(self.poller.last)
        self.recovery_banner.hide()  # the Train tab shows its own prompt from now on

    @Slot()
    def check_unfinished_runs(self) -> None:
        """Offer to resume runs the app did not finish (killed, crashed, power cut): the small
        ``run.json`` files are read on the pool, the banner appears when they are."""
        if self.train_tab.created or self._closing:
            return
        run_task(self._recovery_tasks, "unfinished", _unfinished_runs)

    @Slot(object, object)
    def _on_unfinished(self, _tag: object, runs: object) -> None:
        if self.train_tab.created or self._closing:
            return
        self._unfinished = list(runs) if isinstance(runs, list) else []
        if not self._unfinished:
            return
        r = self._unfinished[0]
        more = f" and {len(self._unfinished) - 1} more" if len(self._unfinished) > 1 else ""
        self.recovery_banner.show_message(
            f"The training run “{r.name}”{more} did not finish (stopped at step "
            f"{r.steps_done}/{r.steps_total}). Resume continues from its newest checkpoint.",
            "warning",
            "Resume",
            "resume",
        )

    @Slot(object, object)
    def _on_unfinished_failed(self, _tag: object, message: object) -> None:
        log.warning("could not look for unfinished training runs: %s", message)

    @Slot(str)
    def _on_recovery_action(self, key: str) -> None:
        if key == "resume" and self._unfinished:
            record = self._unfinished[0]
            self.tabs.setCurrentWidget(self.train_tab)
            self.train.resume_record(record)

    @Slot()
    def _show_datasets(self) -> None:
        self.tabs.setCurrentWidget(self.datasets_tab)

    @Slot(str)
    def _open_dataset(self, folder: str) -> None:
        self.tabs.setCurrentWidget(self.datasets_tab)
        self.datasets.open_folder(folder)

    @Slot(str, bool)
    def _on_train_try(self, lora_path: str, live: bool) -> None:
        """'Try it': the LoRA into the Generate stack, then switch to Generate."""
        self.generate.use_training_lora(lora_path, live)
        self.tabs.setCurrentWidget(self.generate)
        self.show_status(
            f"{Path(lora_path).name} is in the LoRA stack"
            + (": Generate runs on the paused training model." if live else ".")
        )

    @Slot(object)
    def _on_train_run_ended(self, job) -> None:
        """A run ended: its LoRA files are new in the runs folder, so the library rescans."""
        self.generate.set_training_paused(None)
        if self.library_tab.created:
            self.library.rescan()

    @Slot(str)
    def _library_model(self):
        """The Library's model for Generate's "From library…" (scans when built hidden)."""
        library = self.library
        if library.model.rowCount() == 0 and not library.controller.scanning:
            library.rescan()
        return library.model

    def show_in_library(self, path: str) -> None:
        library = self.library
        self.tabs.setCurrentWidget(self.library_tab)
        if not library.select(path):
            self._library_pending = path
            library.controller.scan_finished.connect(self._select_pending_lora)
            library.rescan()

    @Slot(object)
    def _select_pending_lora(self, _result) -> None:
        path, self._library_pending = self._library_pending, ""
        with contextlib.suppress(RuntimeError, TypeError):
            self.library.controller.scan_finished.disconnect(self._select_pending_lora)
        if path:
            self.library.select(path)

    def _wire_library(self, library) -> None:
        library.apply_requested.connect(self._on_library_apply)
        library.status_message.connect(self.show_status)
        library.set_model(self.settings.model_path or None)  # card badges check the model's shapes

    @Slot(object)
    def _on_library_apply(self, req) -> None:
        """'Apply to Generate' in the library: add to the LoRA stack, optionally insert triggers."""
        from ui.structured_prompt import insert_trigger_words

        form = self.generate.form
        form.loras.add_lora(req.path, req.weight)
        if req.insert_triggers and req.trigger_words:
            form.prompt.set_text(insert_trigger_words(form.prompt.text(), req.trigger_words))
        self.tabs.setCurrentWidget(self.generate)
        self.show_status(f"Added {Path(req.path).name} at {req.weight:.2f} to the LoRA stack.")

    def shutdown(self) -> bool:
        """Save everything, cancel the running job, stop the engine thread and the pool."""
        if self._closing:
            return not self.controller.running
        self._closing = True
        self.poller.stop()
        self.save_state()
        self.saver.mark_dirty()
        self.saver.flush()
        if self.library_tab.created:
            self.library.shutdown()
        if self.train_tab.created:
            self.train.shutdown()
        if self._notifier is not None:
            self._notifier.hide()
        if self.datasets_tab.created:
            self.datasets.shutdown()  # writes pending captions, waits for its pools
        stopped = self.controller.shutdown(30_000)
        if not stopped:
            # Destroying a running QThread aborts the process; a slow model load ends on its own
            # and then sees the cancel, so wait for it rather than crash.
            log.error("the engine is still busy after 30 s; waiting for it to finish")
            stopped = self.controller.wait()
        wait_for_tasks(5000)
        return stopped

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        training = self.controller.current_training()
        if training is not None and not self._closing and self.isVisible():
            answer = QMessageBox.question(
                self,
                "Training is running",
                "A training run is in progress. Quit anyway?\n\nzitdesk finishes the current "
                "step and saves a checkpoint and the LoRA so far; resume the run later from "
                "the Train tab's history.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.No,
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        waiting = [j for j in self.controller.pending if j.kind != "train"]
        generating = [j for j in self.controller.running_jobs if j.kind != "train"]
        if (generating or waiting) and not self._closing and self.isVisible():
            n = len(waiting) + len(generating)
            answer = QMessageBox.question(
                self,
                "Images are being generated",
                f"{n} generation job(s) are running or queued. Cancel them and quit?\n\n"
                "Images already saved are kept.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.Yes,
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        if self.controller.busy:
            self.show_status("Cancelling the running job…")
        if not self.shutdown():
            log.error("closing while the engine thread is still busy")
        event.accept()
