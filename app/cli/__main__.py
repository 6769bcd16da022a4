"""``python -m app.cli`` is ``sieve``."""

import sys

from app.cli import main

sys.exit(main())
