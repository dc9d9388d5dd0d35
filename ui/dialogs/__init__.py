"""Dialogs: model setup, structured prompt, crash report, image viewer."""
