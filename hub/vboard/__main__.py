"""``python -m becomingone.vboard``: the same as ``becomingone vboard``."""

import sys

from becomingone.vboard import main

sys.exit(main())
