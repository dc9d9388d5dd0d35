"""LoRA training for Z-Image (Turbo, De-Turbo, Base): Qt-free, resumable, Turbo-correct.

Modules (torch is imported lazily, inside functions, except where a module is torch by nature):

* :mod:`~zitdesk.train.config` — the versioned :class:`TrainConfig` (dataclass ↔ TOML, ordered
  migrations) and the :class:`TrainSpec` request the engine thread runs.
* :mod:`~zitdesk.train.dataset` — aspect buckets, plans and deterministic epoch batches over the
  folder model (:mod:`zitdesk.folder`: images + ``.txt`` captions, exclusions, trigger words,
  shared with the dataset manager). Torch-free.
* :mod:`~zitdesk.train.cache` — latent and text-embedding caches keyed by content hashes.
* :mod:`~zitdesk.train.timesteps` — σ sampling modes (weighted, shift, logit-normal,
  uniform-shift, turbo anchors) and their loss weights.
* :mod:`~zitdesk.train.precision` — fp8 block-scaled and NF4 base weights, adapter merging.
* :mod:`~zitdesk.train.adapters` — the PEFT user LoRA and the training-adapter "assistant".
* :mod:`~zitdesk.train.core` — :class:`~zitdesk.train.core.StepRunner`: one optimizer step
  (loss, accumulation, clipping, schedule, checkpointing plan, compile); the GPU bench uses it.
* :mod:`~zitdesk.train.trainer` — :class:`~zitdesk.train.trainer.Trainer`, the job's lifecycle
  (``run`` → one terminal event, never raises); the job itself is put together from parts over
  one state (:mod:`~zitdesk.train.runstate`: attributes, phases, run record):
  :mod:`~zitdesk.train.prepare` (output, model, data, caches, set-up, resume, model hand-back),
  :mod:`~zitdesk.train.loop` (steps, pause points), :mod:`~zitdesk.train.saving` (checkpoints,
  LoRA files, preview), :mod:`~zitdesk.train.render` (sample rounds, "try" images while paused),
  :mod:`~zitdesk.train.reporter` (loss → ``TrainStep``), :mod:`~zitdesk.train.failures`
  (exceptions → ``JobFailed``).
* :mod:`~zitdesk.train.checkpoint` / :mod:`~zitdesk.train.lora_io` — resumable checkpoints and
  the saved LoRA files (ComfyUI/ai-toolkit and kohya layouts, self-describing metadata).
* :mod:`~zitdesk.train.runs` — the run registry (``run.json`` per output folder, unfinished runs
  after a crash, resume specs).
* :mod:`~zitdesk.train.presets` — VRAM tiers; ``zitdesk train`` is :mod:`zitdesk.cli.train`.

The app runs training through :class:`zitdesk.engine.studio.StudioEngine` (one engine, one
queue, the loaded pipeline shared with generation); ``zitdesk train`` goes through it too.
"""
