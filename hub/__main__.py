"""``python -m becomingone``: the same as the ``becomingone`` command."""

import sys

from becomingone.cli import main

sys.exit(main())
