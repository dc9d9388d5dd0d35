"""zitdesk desktop app entry point: crash log first, then logging, then the Qt application.

Heavy libraries (torch, diffusers, peft) are not imported here or by ``ui``; the engine thread
imports them on the first job, so the window appears fast.
"""

import multiprocessing
import sys


def main() -> int:
    from zitdesk import crashlog
    from zitdesk.offline import enforce_offline

    enforce_offline()  # no hub call, ever, even if a library asks

    crashlog.install()  # faulthandler + exception hooks; the last crash is offered once
    crashlog.setup_logging()
    try:
        from ui.app import run

        return run(sys.argv)
    finally:
        crashlog.uninstall()


if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen build re-enters here for child processes
    if "--selftest" in sys.argv[1:]:
        from ui.selftest import main as selftest_main

        sys.exit(selftest_main(sys.argv[1:]))
    sys.exit(main())
