"""``python -m zitdesk`` = the ``zitdesk`` command."""

import sys

from zitdesk.cli import main

sys.exit(main())
