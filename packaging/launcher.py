"""Entry point of the frozen app (both executables of ``pyinstaller.spec``).

* ``zitdesk --selftest [...]``   → :func:`ui.selftest.main` (zitdesk.selftest with the window
  step; exit code 0 = pass)
* ``zitdesk doctor|generate|lora|params|make-tiny-model|train ...`` → the ``zitdesk`` command
  line (:func:`zitdesk.cli.main`), so support can ask for ``zitdesk-console doctor``
* anything else → the desktop app (``main.main()``)

``multiprocessing.freeze_support()`` runs first: in a frozen build every child process
(multiprocessing's resource tracker, DataLoader workers, spawn) re-enters this script, and must
not start a second GUI.
"""

import multiprocessing
import sys

CLI_COMMANDS = {"doctor", "generate", "lora", "params", "make-tiny-model", "train", "selftest"}


def _dispatch(argv: list[str]) -> int:
    if "--selftest" in argv:
        from ui.selftest import main as selftest_main

        return selftest_main([a for a in argv if a != "selftest"])
    if argv and (argv[0] in CLI_COMMANDS or argv[0] == "--version"):
        if argv[0] == "selftest":  # `zitdesk-console selftest` spelled as a subcommand
            from ui.selftest import main as selftest_main

            return selftest_main(argv[1:])
        from zitdesk.cli import main as cli_main

        return cli_main(argv)
    from main import main as app_main

    return app_main()


if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(_dispatch(sys.argv[1:]))
