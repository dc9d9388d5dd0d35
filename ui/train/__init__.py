"""The Train workspace: the new-run wizard (:mod:`ui.train.wizard`), the full settings form
(:mod:`ui.train.settings_form`), and the run view, history and charts of the Train tab."""
