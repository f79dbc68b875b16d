"""``python -m passgeni_authority COMMAND``: the ``passgeni authority`` commands standalone."""

import sys

from .cli import main

sys.exit(main())
