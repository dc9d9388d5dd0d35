"""The Datasets workspace (PySide6): import, caption table and grid, bulk edits, statistics.

Entry point: :class:`ui.datasets.workspace.DatasetsWorkspace`. The data lives in the Qt-free
:mod:`zitdesk.dataset`; this package only adapts it (model, views, undo commands, workers).
"""
