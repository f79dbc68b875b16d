"""``python -m passgeni_core.cli``: the ``passgeni`` command."""

from . import main

raise SystemExit(main())
