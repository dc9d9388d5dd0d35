"""The Generate tab's view of the engine's jobs (a mixin of :class:`GenerateWorkspace`).

Which running jobs are its own generations (Cancel stops those, never a training run), whether the
card the form would use is busy (with several GPUs another card may be free: #19), and a paused
training run's "Try it": a generation for the training run's own card is rendered inside the
paused trainer; one for another card is an ordinary generation there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Slot

from ui.engine_host import Job


class GenerateJobs:
    """Mixed into the Generate workspace: uses its controller, form, note and buttons."""

    controller: Any
    form: Any
    training_note: Any
    generate_button: Any
    _try_loras: list[str]

    def _generations(self) -> list[Job]:
        return [j for j in self.controller.running_jobs if not self._is_training(j)]

    def _is_training(self, job_or_id: Any) -> bool:
        job = self.controller.job(job_or_id) if isinstance(job_or_id, str) else job_or_id
        # enhance: VariantControls; caption: the Datasets caption dialog (ui/datasets)
        return job is not None and job.kind in ("train", "enhance", "caption")

    def _on_training_card(self, request: Any) -> bool:
        """True when ``request`` is for the card(s) the training job holds (another card picked in
        the GPU row: an ordinary generation there, with the paused step's LoRA file)."""
        from zitdesk.engine.lanes import lanes_of

        job = self.controller.current_training()
        return job is not None and set(lanes_of(request)) <= set(lanes_of(job.request))

    def training_paused(self) -> bool:
        current = getattr(self.controller, "current_training", None)
        job = current() if current is not None else None
        return job is not None and job.token.paused

    def use_training_lora(self, path: str, live: bool) -> None:
        """Put a training run's LoRA into the stack (replacing the previous "try" one)."""
        stack = self.form.loras
        for old in self._try_loras:
            row = stack.model.row_of(old)
            if old != path and row >= 0:
                stack.model.remove(row)
        self._try_loras = [path]
        stack.add_lora(path, 1.0)
        if live:
            self.set_training_paused(path)

    def set_training_paused(self, lora_path: str | None, step: int = 0) -> None:
        if not lora_path:
            self.training_note.hide()
            return
        at = f" at step {step}" if step else ""
        self.training_note.setText(
            f"Training is paused{at}: Generate runs on the training model with "
            f"{Path(lora_path).name} as of this step (training adapter off, no reload). "
            "Resume in the Train tab when you are done."
        )
        self.style().unpolish(self.training_note)
        self.style().polish(self.training_note)
        self.training_note.show()
        self.generate_button.setText("Generate")
        self.update_prediction()

    @Slot(object)
    def _on_training_paused(self, ev) -> None:
        self.set_training_paused(getattr(ev, "lora_path", "") or "the LoRA", ev.step)

    @Slot(object)
    def _on_training_resumed(self, _ev) -> None:
        self.training_note.hide()
        self._on_busy(self.controller.busy)
        self.update_prediction()

    def _card_busy(self) -> bool:
        """True when a job runs on the card the form's next request would use."""
        from zitdesk.engine.lanes import lane_of_device, lanes_of

        want = lane_of_device(str(self.form.gpu.currentData() or ""))
        return any(want in lanes_of(j.request) for j in self.controller.running_jobs)

    def chosen_gpu(self, snapshot: Any) -> Any:
        """The reading of the card the form's next request would use (the main lane: the first
        card), for the memory prediction; None without a GPU reading."""
        from zitdesk.engine.lanes import lane_of_device

        gpus = getattr(snapshot, "gpus", ()) or ()
        if not gpus:
            return None
        lane = lane_of_device(str(self.form.gpu.currentData() or ""))
        want = int(lane.partition(":")[2]) if lane else gpus[0].index
        return next((g for g in gpus if g.index == want), gpus[0])
