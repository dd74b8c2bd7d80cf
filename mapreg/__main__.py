"""``python -m mapreg``: the same as the ``mapreg`` command."""

import sys

from .cli import main

sys.exit(main())
