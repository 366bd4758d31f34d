"""``python -m deltaflow``: the ``deltaflow`` command."""

import sys

from deltaflow.cli import main

sys.exit(main())
