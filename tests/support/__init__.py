"""Test and demo fixture builders (not part of the product or the bundle).

* :mod:`tests.support.samples` — fabricated LoRA files (every dialect, foreign architectures) and
  a small sample library, used by tests, ``bench/library_scan.py`` and the screenshot scripts.

Scripts put the repository root on ``sys.path`` and import ``tests.support.*`` from there.
"""
