"""Entry point for ``python -m ml``."""

import sys

from ml.cli import main

sys.exit(main())
