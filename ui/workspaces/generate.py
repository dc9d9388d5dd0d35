"""The Generate workspace: form | preview + results | prompt history, wired to the controller.

It turns the form into a request, submits it to the :class:`EngineController`, and reflects the
controller's signals (progress, throttled previews, images, LoRA coverage, terminal events). Out of
memory becomes a banner with a one-click retry one tier down (:func:`retry_plan`); any other
failure becomes a plain banner with the traceback behind "Details…". Before a job it shows the
predicted memory peak, refined by what earlier jobs measured.

While a training run is paused, Generate runs inside it ("Try it" in the Train tab): a click goes
through ``controller.try_generate`` (the training job renders with the model it holds and the
LoRA as of the paused step) and a line above the preview says so. Events of training jobs
themselves are the Train tab's, not shown here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QDialog, QLabel, QMessageBox, QWidget

from ui.dialogs.structured_prompt import StructuredPromptDialog
from ui.engine_host import EngineController, Job
from ui.models.gallery_model import GalleryItem
from ui.models.history_store import HistoryEntry, HistoryStore
from ui.tasks import TaskSignals, run_task
from ui.thumbnails import ThumbnailCache
from ui.widgets.queue_panel import QueuePanel
from ui.workspaces.generate_jobs import GenerateJobs
from ui.workspaces.generate_view import GenerateView
from zitdesk.engine.events import JobCancelled, JobFailed, JobFinished
from zitdesk.engine.requests import MemoryMode
from zitdesk.errors import RequestError
from zitdesk.imagemeta import ImageParameters
from zitdesk.memory_predict import (
    MODE_SHORT,
    MemoryPredictor,
    fit_verdict,
    lighter_mode,
    model_dit_format,
    retry_plan,
)
from zitdesk.settings import AppSettings

log = logging.getLogger(__name__)

PNG_SOURCES = {"zitdesk": "zitdesk", "a1111": "A1111/Forge", "comfyui": "ComfyUI"}


OUTPUT_PAGE = 48  # results read from the outputs folder per page


def read_output_page(folder: str, offset: int, count: int = OUTPUT_PAGE) -> dict[str, Any]:
    """A page of the PNGs in ``folder``, newest first, each with its parameters (pool thread)."""
    from zitdesk.imagemeta import read_parameters

    try:
        files = sorted(
            (p for p in Path(folder).glob("*.png") if p.is_file()),
            key=lambda p: p.stat().st_mtime_ns,
            reverse=True,
        )
    except OSError:
        files = []
    items = []
    for p in files[offset : offset + count]:
        try:
            params = read_parameters(str(p))
        except Exception:  # noqa: BLE001 - an unreadable file is shown without parameters
            params = None
        seed = getattr(params, "seed", None)
        items.append(
            {
                "path": str(p),
                "seed": seed if isinstance(seed, int) else -1,
                "prompt": str(getattr(params, "prompt", "") or ""),
                "width": int(getattr(params, "width", 0) or 0),
                "height": int(getattr(params, "height", 0) or 0),
                "request": dict(getattr(params, "request", None) or {}),
            }
        )
    return {"items": items, "offset": offset, "total": len(files)}


def _read_parameters(path: str) -> ImageParameters:
    from zitdesk.imagemeta import read_parameters

    return read_parameters(path)


class GenerateWorkspace(GenerateJobs, GenerateView):
    status_message = Signal(str)
    prediction_changed = Signal(object, str)  # predicted peak bytes (may exceed int32), sentence
    card_changed = Signal(int)  # the GPU the next generation uses (its index; -1: none known)
    model_setup_requested = Signal()
    predictor_updated = Signal()  # a measurement was added (save it)

    def __init__(
        self,
        controller: EngineController,
        settings: AppSettings,
        predictor: MemoryPredictor,
        history: HistoryStore,
        thumbnails: ThumbnailCache,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(history, thumbnails, parent)
        self.controller = controller
        self.settings = settings
        self.predictor = predictor
        self.snapshot: Any = None
        self.form.loras.model_path = settings.model_path  # before the stack is restored
        self.form.load_settings(settings)
        self.form.loras.refused.connect(self._on_lora_refused)
        self.form.loras.changed.connect(self._on_stack_changed)
        self._failed_loras: set[str] = set()  # the LoRAs of the job whose failure is shown
        self._large = ThumbnailCache(size=1280, capacity=6, parent=self)
        self._large.thumbnail_ready.connect(self._on_large_ready)
        self._shown_path = ""
        self._retry: Any = None
        self._first_image: dict[str, bool] = {}
        self._started: set[str] = set()
        self._structure_dialog: StructuredPromptDialog | None = None
        self._tasks = TaskSignals(self)
        self._tasks.succeeded.connect(self._on_png_read)
        self._tasks.failed.connect(self._on_png_failed)
        self._outputs = TaskSignals(self)
        self._outputs.succeeded.connect(self._on_output_page)
        self.outputs_loaded = 0  # results of earlier sessions read from the outputs folder
        self.outputs_total = 0
        self.gallery.more_requested.connect(self.load_more_outputs)
        self._try_loras: list[str] = []
        self.training_note = QLabel("")
        self.training_note.setObjectName("banner")
        self.training_note.setProperty("level", "info")
        self.training_note.setWordWrap(True)
        self.training_note.setTextFormat(Qt.TextFormat.PlainText)
        self.training_note.hide()
        self.queue = QueuePanel(controller)
        self.right_split.addWidget(self.queue)
        self.right_split.setStretchFactor(0, 3)
        self.right_split.setStretchFactor(1, 1)
        self.right_split.setSizes([520, 200])
        center = self.banner.parentWidget()
        if center is not None and center.layout() is not None:
            center.layout().insertWidget(0, self.training_note)

        self._predict_timer = QTimer(self)
        self._predict_timer.setSingleShot(True)
        self._predict_timer.setInterval(200)
        self._predict_timer.timeout.connect(self.update_prediction)
        self.form.changed.connect(self._predict_timer.start)
        self.form.prompt.structure_requested.connect(self.open_structure_dialog)
        self.generate_button.clicked.connect(self.generate)
        self.cancel_button.clicked.connect(self.cancel)
        self.banner.action_clicked.connect(self._on_banner_action)
        self.progress.link_activated.connect(self._on_prediction_link)
        self.banner.details_requested.connect(self._show_details)
        self.gallery.reuse_requested.connect(self._reuse_gallery_item)
        self.gallery.show_requested.connect(self.show_result)
        self.gallery.message.connect(self.show_message)
        self.history.prompt_requested.connect(self.form.prompt.set_text)
        self.history.reuse_requested.connect(self._reuse_history_entry)
        c = controller
        c.job_started.connect(self._on_job_started)
        c.phase_changed.connect(self._on_phase)
        c.warning.connect(self._on_warning)
        c.progress.connect(self._on_progress)
        c.job_preview.connect(self._on_preview)
        c.image_ready.connect(self._on_image)
        c.lora_report.connect(self._on_lora_report)
        c.job_ended.connect(self._on_job_ended)
        c.busy_changed.connect(self._on_busy)
        self.form.gpu.currentIndexChanged.connect(lambda _i: self._on_busy(c.busy))
        self.form.gpu.currentIndexChanged.connect(lambda _i: self.update_prediction())
        if hasattr(c, "paused"):
            c.paused.connect(self._on_training_paused)
            c.resumed.connect(self._on_training_resumed)
        from ui.workspaces.variant_defaults import VariantControls

        self.variants = VariantControls(self)  # Turbo/Base defaults, variety, Enhance
        from ui.workspaces.edit_controls import EditControls

        self.edit = EditControls(self)  # img2img, inpaint, ControlNet, "Upscale ×2"
        self.update_prediction()
        self.load_more_outputs()  # results persist across restarts: the outputs folder, newest first

    # -- output browser -------------------------------------------------------------------------
    def outputs_folder(self) -> str:
        from zitdesk.io import default_output_dir

        return self.form.output_dir.text().strip() or str(default_output_dir())

    @Slot()
    def load_more_outputs(self) -> None:
        run_task(
            self._outputs, "page", read_output_page, self.outputs_folder(), self.outputs_loaded
        )

    @Slot(object, object)
    def _on_output_page(self, _tag: object, page: object) -> None:
        if not isinstance(page, dict):
            return
        items = [
            GalleryItem(d["path"], d["seed"], d["prompt"], d["width"], d["height"], d["request"])
            for d in page.get("items", [])
        ]
        self.gallery_model.append(items)
        self.outputs_loaded = int(page.get("offset", 0)) + len(items)
        self.outputs_total = int(page.get("total", 0))
        self.gallery.set_more(self.outputs_total - self.outputs_loaded)

    # -- commands -------------------------------------------------------------------------------
    @Slot()
    def generate(self) -> Job | None:
        """Validate the form and queue a job; problems become a banner, not an exception."""
        if not self.settings.model_configured:
            self.show_message(
                "No model is set up yet. Choose your Z-Image Turbo files first.",
                "warning",
                "Set up model…",
                "setup",
            )
            return None
        request = self.form.build_request(self.settings.model_path)
        try:
            request.validate()
        except RequestError as exc:
            self.show_message(str(exc), "error")
            return None
        return self.submit(request)

    def submit(self, request) -> Job:
        self.banner.hide()
        self.form.loras.model_path = self.settings.model_path
        self.form.seed.set_last_seed(request.seed)
        if self.training_paused() and self._on_training_card(request):
            return self.controller.try_generate(request)  # inside the paused training job
        job = self.controller.submit(request)
        if job.state == "queued":
            self.status_message.emit(f"Queued ({len(self.controller.pending)} waiting).")
        return job

    @Slot()
    def cancel(self) -> None:
        tries = getattr(self.controller, "tries", [])
        if tries:  # generations running inside the paused training run
            for job in tries:
                self.controller.cancel(job.job_id)
            return
        # Esc here stops generations only, never a training run (the Train tab has Stop); with
        # several GPUs a training run on one card and generations on another run at once.
        for job in self._generations():
            self.controller.cancel(job.job_id)

    def focus_prompt(self) -> None:
        self.form.prompt.focus_prompt()

    def show_message(
        self, text: str, level: str = "info", action: str = "", key: str = "", details: str = ""
    ) -> None:
        self.banner.show_message(text, level, action, key, details)

    def set_snapshot(self, snapshot: Any) -> None:
        if self.snapshot is None and snapshot is not None:  # the first reading of the hardware
            gpus = getattr(snapshot, "gpus", ()) or ()
            self.form.apply_hardware_default(gpus[0].total_bytes if gpus else None)
            self.form.set_gpus(gpus)  # several cards: pick the one images are made on (#19)
        self.snapshot = snapshot
        self.update_prediction()

    @Slot()
    def update_prediction(self) -> None:
        if self.training_note.isVisible():  # renders inside the paused run: nothing new loads
            self.progress.set_prediction(
                "Next image: rendered by the paused training run with the model it holds "
                "(no extra model memory).",
                "fits",
            )
            return
        request = self.form.preview_request(self.settings.model_path)
        fmt = self.predictor.dit_format or model_dit_format(request.model_path)
        self.form.set_mode_labels(fmt, request.unload_text_encoder)
        pred = self.predictor.predict(request, fmt)
        snap = self.snapshot
        gpu = self.chosen_gpu(snap)  # with several cards: the one picked in the GPU row
        first = gpu is not None and gpu is snap.gpus[0]  # (the app's own reservation is there)
        verdict = fit_verdict(
            pred,
            gpu.total_bytes if gpu else None,
            gpu.used_bytes if gpu else 0,
            snap.torch_reserved_bytes if snap is not None and (first or gpu is None) else None,
        )
        text = verdict.message
        html = text
        if verdict.level in ("too_big", "tight"):
            better = lighter_mode(self.predictor, request, verdict.room_bytes)
            if better is not None:
                mode, p = better
                html += (
                    f' <a href="mode:{mode.value}">Switch to {MODE_SHORT[mode]}</a> '
                    f"(≈ {p.peak_bytes / 2**30:.1f} GiB)."
                )
        self.progress.set_prediction(html, verdict.level)
        self.card_changed.emit(gpu.index if gpu is not None else -1)
        self.prediction_changed.emit(pred.peak_bytes, text)

    @Slot()
    def open_structure_dialog(self) -> StructuredPromptDialog:
        dlg = StructuredPromptDialog(self.form.prompt.text(), self)
        dlg.accepted.connect(self._on_structure_accepted)
        self._structure_dialog = dlg
        dlg.open()
        return dlg

    @Slot()
    def _on_structure_accepted(self) -> None:
        if self._structure_dialog is not None:
            self.form.prompt.set_text(self._structure_dialog.markdown())
            self._structure_dialog.deleteLater()
            self._structure_dialog = None

    # -- parameters from elsewhere --------------------------------------------------------------
    def load_image_parameters(self, path: str) -> None:
        """Read a dropped PNG's parameters on the pool, then fill the form."""
        self.status_message.emit(f"Reading {Path(path).name}…")
        run_task(self._tasks, path, _read_parameters, path)

    @Slot(object, object)
    def _on_png_read(self, path: object, params: object) -> None:
        name = Path(str(path)).name
        if not isinstance(params, ImageParameters) or not params.found:
            self.show_message(f"{name} has no generation parameters zitdesk can read.", "warning")
            return
        applied = self.form.apply_parameters(params.request_values())
        source = PNG_SOURCES.get(params.source, params.source)
        text = f"Loaded {', '.join(applied)} from {name} ({source})."
        missing = self.form.missing_loras  # neither its hash nor its name is known here
        if missing:
            text += f" LoRAs not found on this computer (add them by hand): {', '.join(missing)}."
        if params.unmapped:
            text += f" Not used: {', '.join(map(str, params.unmapped[:8]))}."
        self.show_message(text, "info")

    @Slot(object, object)
    def _on_png_failed(self, path: object, message: object) -> None:
        self.show_message(f"Could not read {Path(str(path)).name}: {message}", "error")

    def apply_parameters(self, values: dict[str, Any]) -> list[str]:
        """Fill the form from request-shaped values (see ``GenerateForm.apply_parameters``)."""
        return self.form.apply_parameters(values)

    @Slot(object)
    def _reuse_gallery_item(self, item: GalleryItem) -> None:
        self.form.apply_parameters(
            item.request if item.request else {"prompt": item.prompt, "seed": item.seed}
        )
        self.status_message.emit(f"Parameters of seed {item.seed} are back in the form.")

    @Slot(object)
    def _reuse_history_entry(self, entry: HistoryEntry) -> None:
        self.form.apply_parameters(entry.request if entry.request else {"prompt": entry.prompt})

    # -- controller signals ---------------------------------------------------------------------
    @Slot(bool)
    def _on_busy(self, busy: bool) -> None:
        # Cancel here stops generations, never a training run (the Train tab has Stop).
        self.cancel_button.setEnabled(busy and bool(self._generations()))
        paused = self.training_note.isVisible()
        queued = busy and self._card_busy()  # with several GPUs another card may be free
        self.generate_button.setText("Add to queue" if queued and not paused else "Generate")

    @Slot(object)
    def _on_job_started(self, ev) -> None:
        if self._is_training(ev.job_id):
            self.cancel_button.setEnabled(bool(self._generations()))
            return
        self.cancel_button.setEnabled(True)
        self._shown_job = ev.job_id  # progress and preview follow the newest generation
        self.progress.start(ev.total_steps)
        self._first_image[ev.job_id] = True
        self._started.add(ev.job_id)
        self.status_message.emit("Generating…")

    @Slot(object)
    def _on_warning(self, ev) -> None:  # e.g. the prompt is cut at the 512-token budget
        if self._is_training(ev.job_id):
            return
        self.show_message(ev.message, "warning")

    @Slot(object)
    def _on_phase(self, ev) -> None:
        if self._is_training(ev.job_id):
            return
        text = ev.detail or ev.phase.capitalize()
        self.progress.set_phase(text)
        self.status_message.emit(text)

    @Slot(object)
    def _on_progress(self, ev) -> None:
        if ev.job_id != getattr(self, "_shown_job", ev.job_id):
            return  # another card's generation: the newest one is shown
        done = ev.image_index * ev.total + ev.step
        label = f"Step {ev.step}/{ev.total}"
        if ev.image_count > 1:
            label = f"Image {ev.image_index + 1}/{ev.image_count} · {label}"
        self.progress.set_step(done, ev.total * ev.image_count, label)

    @Slot(str, QImage)
    def _on_preview(self, job_id: str, image: QImage) -> None:
        if job_id == getattr(self, "_shown_job", job_id):
            self.progress.show_preview(image)

    @Slot(object)
    def _on_image(self, ev) -> None:
        job = self.controller.job(ev.job_id)
        request = job.request if job is not None else None
        req_dict = (
            request.with_changes(seed=ev.seed, count=1).to_dict() if request is not None else {}
        )
        prompt = request.prompt if request is not None else ""
        self.gallery_model.add(GalleryItem(ev.path, ev.seed, prompt, ev.width, ev.height, req_dict))
        self.gallery.select_row(0)
        self._shown_path = ev.path
        pm = self._large.pixmap(ev.path)
        if pm is not None:
            self.progress.show_pixmap(pm)
        if self._first_image.pop(ev.job_id, False) and prompt:
            self.history_model.record(prompt, req_dict, ev.path)
            try:
                self.history_model.store.save()
            except OSError as exc:
                log.warning("could not save the prompt history: %s", exc)

    @Slot(object)
    def show_result(self, item: GalleryItem) -> None:
        """Show a result in the big preview (a click on its thumbnail)."""
        self._shown_path = item.path
        pm = self._large.pixmap(item.path)  # None until decoded: _on_large_ready shows it
        if pm is not None:
            self.progress.show_pixmap(pm)
        self.status_message.emit(f"Seed {item.seed}: {Path(item.path).name}")

    @Slot(str)
    def _on_large_ready(self, path: str) -> None:
        if path == self._shown_path:
            pm = self._large.pixmap(path)
            if pm is not None:
                self.progress.show_pixmap(pm)

    @Slot(str)
    def _on_lora_refused(self, message: str) -> None:
        self.show_message(message, "error")
        self.banner.setProperty("cause", "lora")

    @Slot(object)
    def _on_lora_report(self, ev) -> None:
        self.form.loras.apply_report(ev)
        if getattr(ev, "warnings", ()):
            self.show_message(
                f"LoRA {Path(ev.path).name}: " + "; ".join(ev.warnings) + ".", "warning"
            )

    @Slot(object)
    def _on_job_ended(self, job: Job) -> None:
        self._on_busy(self.controller.busy)  # another card may still be busy: recount
        if job.kind == "enhance":  # the prompt enhancer's (ui/workspaces/variant_defaults.py)
            return
        if job.kind == "train":
            self.training_note.hide()
            self.update_prediction()
            return
        self._first_image.pop(job.job_id, None)
        if job.job_id not in self._started:  # dropped from the queue before it ran
            self.status_message.emit("Removed a queued job.")
            return
        self._started.discard(job.job_id)
        if job.state == "finished":
            ev = job.result
            secs = ev.elapsed_s if isinstance(ev, JobFinished) else 0.0
            self.progress.finish(f"Done in {secs:.1f} s")
            if isinstance(ev, JobFinished) and ev.peak_vram_bytes > 0:
                self.predictor.record(job.request, ev.peak_vram_bytes)
                self.predictor_updated.emit()
                self.update_prediction()
            count = len(ev.paths) if isinstance(ev, JobFinished) else 0
            if self.banner.property("level") == "error":  # a failure's banner ends with a success
                self.banner.hide()
            self.status_message.emit(f"Finished: {count} image(s) in {secs:.1f} s.")
        elif job.state == "cancelled":
            ev = job.result
            kept = len(ev.paths) if isinstance(ev, JobCancelled) else 0
            self.progress.finish("Cancelled")
            self.status_message.emit(
                "Cancelled." + (f" {kept} finished image(s) kept." if kept else "")
            )
        else:
            self._on_failed(job)

    @Slot()
    def _on_stack_changed(self) -> None:
        """A failed job's banner goes once one of the LoRAs it used is taken out of the stack."""
        if not self._failed_loras:
            return
        paths = {e.path for e in self.form.loras.model.entries}
        if not self._failed_loras <= paths:
            self._failed_loras = set()
            if self.banner.property("level") == "error":
                self.banner.hide()

    def _on_failed(self, job: Job) -> None:
        ev = job.result if isinstance(job.result, JobFailed) else JobFailed(job.job_id)
        loras = getattr(job.request, "loras", ()) or ()
        self._failed_loras = {lo.path for lo in loras} if ev.kind != "oom" else set()
        self.progress.finish("Failed")
        self.status_message.emit("Out of GPU memory." if ev.kind == "oom" else "The job failed.")
        if ev.kind == "oom":
            plan = retry_plan(job.request, ev.retry_hint)
            self._retry = plan[0] if plan else None
            text = ev.message or "The GPU ran out of memory; memory was freed."
            if plan:
                self.show_message(text, "warning", plan[1], "retry", ev.traceback)
            else:
                self.show_message(
                    text + " Nothing lighter is left to try at this size.",
                    "error",
                    details=ev.traceback,
                )
            return
        if ev.kind == "model":
            self.show_message(ev.message, "error", "Set up model…", "setup", ev.traceback)
            return
        self.show_message(ev.message or "The job failed.", "error", details=ev.traceback)

    @Slot(str)
    def _on_prediction_link(self, href: str) -> None:
        if href.startswith("mode:"):
            self.form.set_memory_mode(MemoryMode(href[5:]))

    @Slot(str)
    def _on_banner_action(self, key: str) -> None:
        if key == "retry" and self._retry is not None:
            request, self._retry = self._retry, None
            # Keep the form in step with what is retried, so the next click uses it too.
            self.form.set_memory_mode(request.memory_mode)
            self.form.vae_tiling.setChecked(request.vae_tiling)
            self.form.size_picker.set_size(request.width, request.height)
            self.submit(request)
        elif key == "setup":
            self.model_setup_requested.emit()

    @Slot()
    def _show_details(self) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "Details",
            self.banner.label.text(),
            QMessageBox.StandardButton.Close,
            self,
        )
        box.setTextFormat(Qt.TextFormat.PlainText)  # the banner's text names files: never markup
        box.setDetailedText(self.banner.details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def store_settings(self, s: AppSettings) -> None:
        self.form.store_settings(s)
        self.variants.store_settings(s)

    def dialogs(self) -> list[QDialog]:
        return [d for d in (self._structure_dialog,) if d is not None]
