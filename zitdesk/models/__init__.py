"""Model discovery, validation and loading for Z-Image Turbo (diffusers, ComfyUI, HF cache)."""
