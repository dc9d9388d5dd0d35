"""Saving in a training job: checkpoints, the step and final LoRA files, the preview beside it.

:class:`SaveMixin` (a part of the job, over :class:`~zitdesk.train.runstate.RunState`):
``_save`` writes an atomic checkpoint and ``<name>_<step>.safetensors`` (at the end also
``<name>.safetensors`` and the kohya export), ``_write_step_lora`` only the step LoRA (pause,
resume after a kill), ``_write_preview`` the last sample as ``<name>.preview.png``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from zitdesk.train import adapters as ad
from zitdesk.train.checkpoint import (
    list_checkpoints,
    prune_files,
    rng_state,
    save_checkpoint,
)
from zitdesk.train.events import CheckpointSaved
from zitdesk.train.runstate import RunState

log = logging.getLogger(__name__)


class SaveMixin(RunState):
    """Checkpoint and LoRA writing of the job."""

    def _metadata(self, lora_format: str = "comfy") -> dict[str, str]:
        from zitdesk.train.lora_io import build_metadata

        return build_metadata(
            self.cfg,
            step=self.step,
            epoch=self.cursor.epoch,
            base_precision=self.base_precision,
            resolution=self.cfg.sample_size(),
            tag_freq=self.tag_freq,
            dataset_name=Path(self.cfg.data.folder).name,
            adapter_name=self.prepared.adapter_name,
            adapter_sha256=self.prepared.adapter_sha256,
            base_model=self.source_label,
            n_images=len(self.items),
            lora_format=lora_format,
        )

    def _state_doc(self) -> dict[str, Any]:
        return {
            "cursor": self.cursor.state(),
            "config": self.cfg.to_toml(),
            "sampled": sorted(self.sampled),
            "world_size": self.world.size,  # data-parallel runs (#19): the effective batch is
            "grad_accum": self.accum,  # batch × grad_accum × world_size
        }

    def _step_lora_path(self) -> Path:
        return self.out / f"{self.cfg.save.name}_{self.step:09d}.safetensors"

    def _write_step_lora(self):
        """``<name>_<step>.safetensors`` from the current weights; returns (pairs, metadata, path)."""
        from zitdesk.train.lora_io import baked_pairs, comfy_state_dict, save_lora

        cfg = self.cfg
        baked = baked_pairs(ad.user_pairs(self.pipe.transformer), cfg.lora.rank, cfg.lora.alpha)
        meta = self._metadata()
        step_file = save_lora(self._step_lora_path(), comfy_state_dict(baked), meta)
        prune_files(self.out, cfg.save.name, cfg.save.keep_last)
        return baked, meta, step_file

    def _save(self, final: bool = False) -> list[str]:
        """Checkpoint + ``<name>_<step>.safetensors``; at the end also ``<name>.safetensors``.
        Rank 0 alone writes in a data-parallel run (the others return no paths)."""
        from zitdesk.train.lora_io import comfy_state_dict, kohya_state_dict, save_lora

        self.reporter.flush()
        if not self.world.main:
            self.saved_step = self.step
            return []
        cfg = self.cfg
        t_save = time.perf_counter()
        self._phase("saving", f"Step {self.step}")
        self._write_losses()  # first: a kill after the checkpoint leaves no gap in the curve
        rng = rng_state()
        ckpt = save_checkpoint(
            self.ckroot,
            cfg.save.name,
            self.step,
            adapter=ad.user_state(self.pipe.transformer),
            trainer_state={"runner": self.runner.state_dict(), "rng": rng["torch"]},
            state={**self._state_doc(), "rng": rng["json"]},
            keep_last=cfg.save.keep_last,
        )
        baked, meta, step_file = self._write_step_lora()
        paths = [str(step_file)]
        if final:
            paths = [
                str(
                    save_lora(
                        self.out / f"{cfg.save.name}.safetensors", comfy_state_dict(baked), meta
                    )
                )
            ]
            if cfg.save.export_kohya:
                paths.append(
                    str(
                        save_lora(
                            self.out / f"{cfg.save.name}_kohya.safetensors",
                            kohya_state_dict(baked),
                            self._metadata("kohya"),
                        )
                    )
                )
        self.last_lora, self.saved_step = paths[0], self.step
        self.save_s = time.perf_counter() - t_save
        self._record()
        self.emit(CheckpointSaved(self.job, path=str(ckpt), step=self.step, lora_path=paths[0]))
        self._phase("training", "")
        return paths

    def _write_preview(self, lora: Path) -> None:
        """The newest sample beside the finished LoRA as ``<name>.preview.png`` (the library's
        preview naming, ``zitdesk.library.previews``)."""
        from zitdesk.io import atomic_write

        src = Path(self.last_sample) if self.last_sample else None
        if src is None or not src.is_file():
            return
        try:
            atomic_write(lora.with_name(lora.stem + ".preview.png"), src.read_bytes())
        except OSError as exc:
            log.warning("could not write the LoRA preview: %s", exc)

    def _save_state_only(self) -> None:
        """Record the final sample round in the newest checkpoint's state (no tensor rewrite)."""
        import json

        from zitdesk.io import atomic_write

        latest = list_checkpoints(self.ckroot)
        if latest and latest[-1].step == self.step:
            p = latest[-1].path / "state.json"
            doc = json.loads(p.read_text(encoding="utf-8"))
            doc["sampled"] = sorted(self.sampled)
            atomic_write(p, json.dumps(doc, indent=1))
