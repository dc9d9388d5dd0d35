"""Widgets: one panel per file; they bind to models and controllers, never own the engine."""
