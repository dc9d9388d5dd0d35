"""zitdesk's PySide6 user interface.

Rules: no torch/diffusers/transformers/peft/safetensors.torch import at module level anywhere in
this package (the window must open in under 1.5 s; a test checks); the engine runs on the one
engine thread in ``ui.engine_host``; cross-thread connections use ``@Slot`` methods.
"""
