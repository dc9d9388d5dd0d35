"""``python -m zitdesk.cli`` = the ``zitdesk`` command."""

import sys

from zitdesk.cli.app import main

sys.exit(main())
