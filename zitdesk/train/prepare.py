"""Setting up a training job, and giving the model back at its end.

:class:`PrepareMixin` (a part of the job, over :class:`~zitdesk.train.runstate.RunState`), in the
order the job runs them: the output folder and run record → the base model (borrowed from
generation or loaded offline) → the dataset and buckets → latent and caption caches → the text
encoder parked in RAM, the VAE parked → LoRA, training adapter, precision, optimizer → resume from
the newest checkpoint. ``close`` hands a borrowed pipeline back to generation, cleaned (or drops
it when the base weights changed or the job failed).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from zitdesk.engine.events import (
    PhaseChanged,
)
from zitdesk.errors import RequestError
from zitdesk.io import user_dirs
from zitdesk.train import adapters as ad
from zitdesk.train.checkpoint import (
    clean_leftovers,
    clean_temp_files,
    list_checkpoints,
    load_latest,
    restore_rng,
)
from zitdesk.train.config import TrainConfig, locked_differences, soft_differences
from zitdesk.train.dataset import (
    BatchCursor,
    apply_trigger,
    plan_entries,
    scan_folder,
    tag_frequency,
)
from zitdesk.train.failures import free_memory
from zitdesk.train.saving import SaveMixin

log = logging.getLogger(__name__)


def _complete_safetensors(path: Path) -> bool:
    """True when ``path`` is a safetensors file whose header and data are all there."""
    from zitdesk.st_header import read_header

    try:
        header = read_header(path)
    except Exception:  # noqa: BLE001 - missing, truncated or damaged: not complete
        return False
    return header is not None


class PrepareMixin(SaveMixin):
    """The job's set-up steps and the hand-back of the model."""

    def _prepare_output(self) -> None:
        cfg = self.cfg
        if cfg.optim.optimizer == "adamw8bit" and not self.cuda:
            raise RequestError(
                "8-bit AdamW needs an NVIDIA GPU (bitsandbytes); choose adamw on this machine."
            )
        if cfg.model.base_precision == "nf4" and not self.cuda:
            raise RequestError(
                "4-bit (NF4) base weights need an NVIDIA GPU; choose fp8 or bf16 here."
            )
        existing = list_checkpoints(self.ckroot)
        if existing and not self.spec.resume:
            raise RequestError(
                f"{self.out} already holds checkpoints of a run (up to step {existing[-1].step}); "
                "resume it (--resume) or choose another output folder."
            )
        if not self.world.main:  # a data-parallel run: rank 0 alone writes files
            self.world.barrier()
            return
        self.out.mkdir(parents=True, exist_ok=True)
        clean_leftovers(self.ckroot)
        for folder in [self.out, self.samples_dir, *self.samples_dir.glob("[0-9]" * 9)]:
            clean_temp_files(folder)  # half-written files of a killed run
        cfg.write(self.out / "train_config.toml")
        from zitdesk.train.runs import RunLog

        self.record = RunLog.start(self.spec, self.out, cfg.model.path)
        self.world.barrier()

    def _load_model(self) -> None:
        import torch

        from zitdesk.models.discovery import resolve_model
        from zitdesk.models.loader import load_pipeline

        self._phase("loading", f"Loading {self.cfg.model.path}")
        prec = self.cfg.model.base_precision
        dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}.get(prec)
        if prec in ("fp8", "nf4") and self.cuda:
            dtype = torch.bfloat16
        source = resolve_model(self.cfg.model.path)
        self.source_label = source.label
        if self.models is not None:
            from zitdesk.models.loader import _is_big, pick_dtype

            want = dtype or pick_dtype(self.device, _is_big(source))
            self.pipe = self.models.lend_pipeline(source, self.device, want)
            if self.pipe is not None:
                self.borrowed = True
                self.te_home = next(self.pipe.text_encoder.parameters()).device
                self.vae_home = next(self.pipe.vae.parameters()).device
                self._phase("loading", f"Using {source.label}, already loaded for generation")
        if self.pipe is None:
            self.pipe = load_pipeline(source, device=self.device, dtype=dtype)
        self.cancel.raise_if_cancelled()

    def _load_data(self) -> None:
        cfg = self.cfg
        scan = scan_folder(cfg.data.folder, cfg.data.caption_ext)
        if not scan.items:
            raise RequestError(
                f"The dataset folder {cfg.data.folder} holds no images (png, jpg, webp, bmp)."
            )
        self.items = scan.items
        self.entries = plan_entries(scan.items, cfg.data.resolutions)
        if not self.entries:
            raise RequestError(
                "Every image of the dataset is smaller than 16 px; nothing to train on."
            )
        self.captions = [apply_trigger(it.caption, cfg.data.trigger) for it in scan.items]
        self.tag_freq = tag_frequency(self.captions)
        buckets = sorted({e.bucket for e in self.entries})
        detail = (
            f"{len(scan.items)} images ({scan.captioned} captioned), {len(self.entries)} samples "
            f"in {len(buckets)} buckets"
        )
        self._phase("data", detail)
        if scan.problems:  # unreadable images, skipped files …: the run goes on without them
            self.warn(
                " ".join(scan.problems[:3])
                + (f" (and {len(scan.problems) - 3} more)" if len(scan.problems) > 3 else "")
            )

    def _build_caches(self) -> None:
        from zitdesk.train.cache import build_caches
        from zitdesk.train.samples import sample_prompts

        cfg = self.cfg
        root = (
            Path(cfg.data.cache_dir).expanduser()
            if cfg.data.cache_dir
            else user_dirs()["cache"] / "train"
        )
        self._phase("caching", "Checking the latent and caption caches")
        prompts = [p for p, _ in sample_prompts(cfg)]

        def progress(what: str, done: int, total: int) -> None:
            self.emit(
                PhaseChanged(self.job, phase="caching", detail=f"Encoding {what} {done}/{total}")
            )

        if not self.world.main:
            self.world.barrier()  # rank 0 encodes what is missing; the others then read it
        self.cache = build_caches(
            self.pipe,
            root,
            self.items,
            self.entries,
            self.captions,
            prompts,
            self.device,
            cfg.data.latent_mode,
            progress,
            self.cancel.raise_if_cancelled,
        )
        if self.world.main:
            self.world.barrier()
        keys = {*self.cache.caption_keys, self.cache.empty_key, *self.cache.prompt_keys.values()}
        self.text = {k: self.cache.text(k) for k in keys}

    def _unload_encoders(self) -> None:
        pipe = self.pipe
        if pipe.text_encoder is not None:
            # Prompts are cached; parked in RAM (frees ~8 GB of VRAM) for "try" prompts while
            # paused and for generation afterwards.
            self.text_encoder = pipe.text_encoder.to("cpu")
            pipe.text_encoder = None
        if self.cuda and self.cfg.memory.offload_vae:
            pipe.vae.to("cpu")
        free_memory()

    def _setup_training(self) -> None:
        import torch

        from zitdesk.train.core import StepRunner
        from zitdesk.train.setup import prepare_transformer

        cfg = self.cfg
        tr = self.pipe.transformer
        self.setup_state = "started"
        image_tokens = max((b[0] // 16) * (b[1] // 16) for b in (e.bucket for e in self.entries))
        cap_tokens = max(int(t.shape[0]) for t in self.text.values())
        self.prepared = prep = prepare_transformer(
            tr, cfg, self.device, tokens=(image_tokens, cap_tokens)
        )
        if prep.adapter_message:
            self._phase("loading", f"Training adapter {prep.adapter_message}")
        elif cfg.model.variant == "turbo":
            self.warn(
                "Training Turbo without a training adapter breaks its 8-step "
                "distillation (blurry samples); set model.training_adapter, or train on "
                "the De-Turbo / Base model and set model.variant.",
            )
        self.base_precision = prep.base_precision
        self.runner = StepRunner(tr, cfg, self.device)
        self.memory_plan = self.runner.configure(image_tokens, cap_tokens)
        self.cursor = BatchCursor(self.entries, cfg.optim.batch_size, cfg.optim.seed)
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        self.setup_state = "done"

    def _maybe_resume(self) -> None:
        if not self.spec.resume:
            return
        found = load_latest(self.ckroot)
        if found is None:
            self._phase("resuming", "No checkpoint found; starting from step 0")
            return
        info, (adapter, trainer_state, state) = found
        saved = TrainConfig.from_toml(state["config"])
        diffs = locked_differences(self.cfg, saved)
        if diffs:
            raise RequestError(
                "The checkpoint was trained with other settings: "
                + "; ".join(diffs)
                + ". Restore them or start a new run in another folder."
            )
        ad.load_user_state(self.pipe.transformer, adapter)
        soft = soft_differences(self.cfg, saved)
        if saved.optim.optimizer == self.cfg.optim.optimizer:
            self.runner.load_state_dict(trainer_state["runner"])
        else:
            self.runner.scheduler.load_state_dict(trainer_state["runner"]["scheduler"])
        if soft:
            self.warn(
                "Resuming with changed settings: "
                + "; ".join(soft)
                + ". The run continues, but differs from an uninterrupted one"
                + (" (the optimizer starts fresh)." if "optim.optimizer" in "".join(soft) else "."),
            )
        restore_rng(trainer_state.get("rng", {}), state.get("rng", {}))
        from zitdesk.train.distributed import resume_accum

        self.accum, note = resume_accum(
            int(state.get("grad_accum", saved.optim.grad_accum)),
            int(state.get("world_size", 1)),
            self.cfg.optim.grad_accum,
            self.world.size,
        )
        if note and self.world.main:
            self.warn(note)
        self.step = int(state["step"])
        self.cursor.epoch = int(state["cursor"]["epoch"])
        self.cursor.pos = int(state["cursor"]["pos"])
        self.sampled = set(state.get("sampled", []))
        from zitdesk.train.losses import read_losses

        self.loss_history = [(s, v) for s, v in read_losses(self.out) if s <= self.step]
        # A kill between the checkpoint and its step LoRA leaves the checkpoint without its LoRA
        # file; the next steps would never write it: write it now, from the restored weights.
        if self.world.main and not _complete_safetensors(self._step_lora_path()):
            self._write_step_lora()
        self._phase("resuming", f"Resumed from {info.path.name} (step {self.step})")

    def close(self, reusable: bool = True) -> None:
        """Drop the job's state; a borrowed pipeline goes back to generation (cleaned) or, when
        the base weights changed or the job failed, is dropped so generation reloads."""
        pipe, self.pipe = self.pipe, None
        self.runner = None
        if self.models is None or not self.borrowed:
            return
        back = None
        try:
            if reusable and pipe is not None and self._restorable():
                back = self._restore_for_generation(pipe)
        except Exception:  # noqa: BLE001 - generation then reloads instead
            log.exception("could not hand the model back to generation")
            back = None
        self.models.take_back(back)

    def _restorable(self) -> bool:
        if self.setup_state == "started":
            return False  # set-up stopped half-way: the model is in an unknown state
        if self.setup_state == "":
            return True
        prec = self.cfg.model.base_precision
        prep = self.prepared
        from zitdesk.train.setup import base_altered

        return (
            prec not in ("fp8", "nf4")
            and not base_altered(prep)
            and prep.adapter_mode != "merge"
            and not self.cfg.memory.attention_backend
        )

    def _restore_for_generation(self, pipe: Any) -> Any:
        """Remove every PEFT layer (user LoRA, training adapter) and put the parts back."""
        tr = pipe.transformer
        if self.setup_state == "done":
            from zitdesk.train.core import block_lists

            for _, blk in block_lists(tr):  # compiled blocks back to eager (generation compiles
                if getattr(blk, "_compiled_call_impl", None) is not None:  # its own if asked)
                    blk._compiled_call_impl = None
            if getattr(tr, "gradient_checkpointing", False):
                tr.disable_gradient_checkpointing()
            tr.unload_lora()  # PEFT layers out: the plain base modules, exactly as before
        tr.requires_grad_(False)
        tr.eval()
        if pipe.text_encoder is None and self.text_encoder is not None:
            pipe.text_encoder = self.text_encoder.to(self.te_home)
        self.text_encoder = None
        pipe.vae.to(self.vae_home)
        return pipe
