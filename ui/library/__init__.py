"""LoRA Library workspace (UI over the Qt-free :mod:`zitdesk.library`).

Wiring for the main window (the lead owns ``ui/main_window.py``)::

    from ui.library import LibraryWorkspace
    from zitdesk.library import ApplyLoraRequest

    self.library = LibraryWorkspace(self)            # own store, cached index, auto roots, watcher
    self.tabs.addTab(self.library, "LoRA Library")
    self.library.apply_requested.connect(self._on_library_apply)      # a @Slot(object)
    self.library.status_message.connect(self.statusBar().showMessage)
    # when a model is loaded (optional; default is the full-size Z-Image Turbo module set):
    #     self.library.set_model_module_names(transformer_linear_names(pipe.transformer))
    # in closeEvent / shutdown():
    #     self.library.shutdown()

    @Slot(object)
    def _on_library_apply(self, req: ApplyLoraRequest) -> None:
        row = self.generate.lora_stack.add_lora(req.path, req.weight)
        if req.insert_triggers: ...insert req.trigger_words not already in the prompt...

``LibraryWorkspace(parent=None, *, store=None, index=None, folders=(), auto_roots=True,
module_names=None, watch=True, auto_hash=True, thumbnails=None, watcher_backend="auto")``

* ``store``: :class:`zitdesk.library.store.LibraryStore` (favourites, ratings, notes, chosen
  previews, the user's library folders); default: ``<data>/library/library.json``.
* ``index``: :class:`zitdesk.library.index.LibraryIndex`; default: cached in ``<cache>/library``.
* ``folders``: extra folders for this session (not saved); ``auto_roots``: also scan ComfyUI /
  Forge / SwarmUI / StabilityMatrix / zitdesk LoRA folders.
* ``module_names``: coverage denominator (the configured model's Linear module names).
* ``watch``: pick up new, moved and deleted files without a refresh button; ``auto_hash``:
  compute sha256/AutoV2/AutoV3 in the background after each scan (the selected file first).
* ``thumbnails``: share the app's :class:`ui.thumbnails.ThumbnailCache` if wanted.

Scanning starts on first show (or :meth:`LibraryWorkspace.start`); scans, hashing, header reads
and preview decoding run on the global ``QThreadPool``, never on the GUI thread.

Signals:

* ``apply_requested(object)``: a frozen :class:`zitdesk.library.ApplyLoraRequest`
  ``(path, weight, trigger_words: tuple[str, ...], insert_triggers: bool)``. Emitted by "Apply to
  Generate" and by double-clicking a usable card; never for incompatible files.
* ``status_message(str)``: a plain sentence for the status bar.

Other public methods: ``rescan()``, ``add_folder(path)``, ``select(path)``,
``set_preview_from_image(lora_path, image_path)`` (e.g. from a gallery context menu),
``apply(path, weight=None, insert_triggers=None)``, ``set_view_mode("grid"|"list")``,
``set_model_module_names(names)``, ``shutdown()``.
"""

from ui.library.workspace import LibraryWorkspace
from zitdesk.library import ApplyLoraRequest

__all__ = ["ApplyLoraRequest", "LibraryWorkspace"]
