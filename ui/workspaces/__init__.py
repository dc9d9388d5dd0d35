"""The four workspaces of the main window: Generate, Datasets, Train, LoRA Library."""
