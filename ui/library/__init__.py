"""LoRA Library workspace (UI over the Qt-free :mod:`zitdesk.library`).

Parts, one job each, connected by signals in :mod:`ui.library.workspace`: ``toolbar``
(search, filters, sort, grid/list), ``views`` (card grid, list, empty page), ``details`` (the
panel) with ``presenter`` (what it shows, store/sidecar/preview writes, apply), ``folders``
(add/open/remove folders), ``controller`` (scans, hashing, watcher on the pool), ``model`` and
``delegates`` (the item model, filter proxy and painting).

Wiring for the main window (the lead owns ``ui/main_window.py``)::

    from ui.library import LibraryWorkspace
    from zitdesk.library import ApplyLoraRequest

    self.library = LibraryWorkspace(self)            # own store, cached index, auto roots, watcher
    self.tabs.addTab(self.library, "LoRA Library")
    self.library.apply_requested.connect(self._on_library_apply)      # a @Slot(object)
    self.library.status_message.connect(self.statusBar().showMessage)
    # the configured model (its DiT header's Linear shapes decide which LoRAs fit, the same
    # zitdesk.lora.fit check as Generate's "Add"; None: the real Z-Image Turbo sizes):
    #     self.library.set_model(settings.model_path)
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
``set_model(model_path)``, ``set_model_module_names(names_or_shapes)``, ``shutdown()``.
"""

from ui.library.workspace import LibraryWorkspace
from zitdesk.library import ApplyLoraRequest

__all__ = ["ApplyLoraRequest", "LibraryWorkspace"]
