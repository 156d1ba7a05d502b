"""`python -m tests.transparency`: the transparency job (runner.py)."""

import sys

from tests.transparency.runner import main

sys.exit(main())
