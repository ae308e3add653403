"""``python -m relay`` is the ``relay`` command."""

import sys

from relay.cli import main

sys.exit(main())
