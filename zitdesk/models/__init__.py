"""Z-Image Turbo model knowledge: where models are, what their files are, how they load.

* :mod:`~zitdesk.models.zimage_tree` (torch-free): the transformer's module tree — LoRA-target
  module grammar and aliases, every Linear's full-size shape, a model's Linear names from its
  config (:func:`~zitdesk.models.zimage_tree.model_linear_names`).
* :mod:`~zitdesk.models.families` (torch-free): which family a full checkpoint file belongs to.
* :mod:`~zitdesk.models.validate` (torch-free): classify model files from their headers (role or
  plain refusal), infer transformer / text-encoder configs.
* :mod:`~zitdesk.models.discovery`: find diffusers folders, HF-cache snapshots and ComfyUI file
  sets; :mod:`~zitdesk.models.loader`: build the pipeline (torch);
  :mod:`~zitdesk.models.tokenizer`: the bundled Qwen tokenizer; :mod:`~zitdesk.models.tiny`: tiny
  random-weight models for tests and demos.
"""
