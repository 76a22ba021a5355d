"""``python -m crossent``: the same as the ``crossent`` command."""

import sys

from .cli import main

sys.exit(main())
