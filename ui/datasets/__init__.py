"""The Datasets workspace (PySide6): import, caption table and grid, bulk edits, statistics.

Entry point: :class:`ui.datasets.workspace.DatasetsWorkspace`. The data lives in the Qt-free
:mod:`zitdesk.dataset`; this package only adapts it. Parts, one job each, connected by signals:
``toolbar`` (buttons), ``importing`` (import job + progress strip), ``session`` (the open
dataset: undo, autosave, watcher, check, exclude, trash), ``table_model`` / ``views`` /
``delegates`` / ``caption_editor`` (what is shown and edited), ``stats_panel`` (check and
statistics), ``thumbs`` (disk-cached thumbnails), ``commands`` (undo), ``bulk_dialog`` /
``dialogs``. Background work goes through :mod:`ui.tasks` (the UI's one worker API).
"""
