"""``python -m session_monitor``: the command line."""

import sys

from session_monitor.cli.main import main

sys.exit(main())
