"""The Train workspace: the tab (:mod:`ui.train.workspace`: runs, controls, controller signals)
with its first screen (:mod:`ui.train.overview`: needs, VRAM tiers, recovery, history), the
new-run wizard (:mod:`ui.train.wizard`, with its pages and checks in ``wizard_pages`` /
``wizard_data``), the full settings form (:mod:`ui.train.settings_form`), the run view
(loss curve live or from the run's ``losses.csv``), history, charts and notifications."""
