"""The Train workspace: the new-run wizard (:mod:`ui.train.wizard`, with its pages and checks in
``wizard_pages`` / ``wizard_data``), the full settings form (:mod:`ui.train.settings_form`), and the
run view, history and charts of the Train tab."""
