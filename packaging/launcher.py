"""Entry point of the frozen app (both executables of ``pyinstaller.spec``).

* ``zitdesk --selftest [...]``   → :func:`ui.selftest.main` (zitdesk.selftest with the window
  step; exit code 0 = pass); ``zitdesk selftest`` too
* ``zitdesk COMMAND ...`` for every sub-command of the ``zitdesk`` parser (doctor, generate,
  train, dataset, upscale, …: :func:`zitdesk.cli.app.command_names`, so this list cannot drift),
  and ``--version``/``--help`` → the ``zitdesk`` command line (:func:`zitdesk.cli.main`), so
  support can ask for ``zitdesk-console doctor`` and ``--gpus`` training can start
  ``zitdesk-console train ...`` once per GPU
* anything else (no arguments, Qt's own options such as ``-style fusion``) → the desktop app
  (``main.main()``)

``multiprocessing.freeze_support()`` runs first: in a frozen build every child process
(multiprocessing's resource tracker, DataLoader workers, spawn) re-enters this script, and must
not start a second GUI. Deciding costs no torch import: the parser imports its commands lazily.
"""

import multiprocessing
import sys

CLI_FLAGS = frozenset({"--version", "--help", "-h"})


def is_cli_call(argv: list[str]) -> bool:
    """Whether ``argv`` (without the program) is a ``zitdesk`` command line, not the app's."""
    if not argv:
        return False
    if argv[0] in CLI_FLAGS:
        return True
    if argv[0].startswith("-"):  # Qt's options (-platform, -style, …) belong to the app
        return False
    from zitdesk.cli.app import command_names

    return argv[0] in command_names()


def _dispatch(argv: list[str]) -> int:
    if "--selftest" in argv or argv[:1] == ["selftest"]:
        from ui.selftest import main as selftest_main

        return selftest_main([a for a in argv if a != "selftest"])
    if is_cli_call(argv):
        from zitdesk.cli import main as cli_main

        return cli_main(argv)
    from main import main as app_main

    return app_main()


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(_dispatch(sys.argv[1:]))
