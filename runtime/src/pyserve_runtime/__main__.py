"""`python -m pyserve_runtime COMMAND`: the same as `pyserve COMMAND`, for a Python whose scripts are not on PATH."""

import sys

from .cli import main

sys.exit(main())
