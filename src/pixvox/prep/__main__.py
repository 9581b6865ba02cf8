"""``python -m pixvox.prep <dataset> [args]`` (see :mod:`pixvox.prep.cli`)."""

import sys

from pixvox.prep.cli import main

sys.exit(main())
