"""The dataset manager's Qt-free core.

A dataset is a folder of images with same-name ``.txt`` captions (what ai-toolkit, kohya/musubi,
OneTrainer and :mod:`zitdesk.train` read) plus a hidden ``.zitdesk/`` folder for what a ``.txt``
cannot hold. Modules:

* :mod:`~zitdesk.dataset.store` — :class:`~zitdesk.dataset.store.Dataset`: open, in-memory
  edits, atomic flush with outside-change detection, flags and the index.
* :mod:`~zitdesk.dataset.captions` — caption files keeping BOM/CRLF, file signatures (the
  decoder is :mod:`zitdesk.captions`, the folder listing :mod:`zitdesk.folder`: both shared
  with the trainer).
* :mod:`~zitdesk.dataset.images` — validate/normalise one image, thumbnails, perceptual hash.
* :mod:`~zitdesk.dataset.importer` — import files, folders and zips (report of what and why):
  :func:`~zitdesk.dataset.importer.import_sources` drives the worker pool over
  :mod:`~zitdesk.dataset.collect` (sources → candidates, bounded reads),
  :mod:`~zitdesk.dataset.budget` (the workers' shared memory budget, also used by the check),
  :mod:`~zitdesk.dataset.placing` (names, never-overwrite writes, content already present) and
  :mod:`~zitdesk.dataset.import_report` (the report types).
* :mod:`~zitdesk.dataset.check` — the pre-flight check on the trainer's own view of the folder;
  it counts caption tokens with :mod:`~zitdesk.dataset.tokens` (the bundled tokenizer without
  torch) and finds copies with :mod:`~zitdesk.dataset.duplicates` (SHA-256 groups, pHash pairs).
* :mod:`~zitdesk.dataset.bulk` — bulk caption operations that return a preview.
* :mod:`~zitdesk.dataset.history` — the undo journal and snapshots.
* ``zitdesk dataset import|check`` is :mod:`zitdesk.cli.dataset`.
* :mod:`~zitdesk.dataset.fsnames` — names as the OS has them (non-UTF-8 names in JSON, sidecar
  names that fit the name limit) and OS errors as one sentence (:class:`SaveFailed`).
"""
