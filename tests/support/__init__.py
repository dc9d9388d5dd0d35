"""Test and demo fixture builders (not part of the product or the bundle).

* :mod:`tests.support.samples` — fabricated LoRA files (every dialect, foreign architectures) and
  a small sample library, used by tests, ``bench/library_scan.py`` and the screenshot scripts.
* :mod:`tests.support.caption_models` — tiny taggers and describers, and the full-size describer
  configs ``bench/caption_gpu.py`` builds.
* :mod:`tests.support.dataset_window` — the Datasets workspace (and a window with an engine
  queue around it) as the caption tests and ``scripts/caption_screenshot.py`` open it.

Scripts put the repository root on ``sys.path`` and import ``tests.support.*`` from there.
"""
