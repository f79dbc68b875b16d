"""Puts the repository root on ``sys.path`` (``import _root`` first in a benchmark).

A benchmark run as ``python bench/NAME.py`` has only ``bench/`` on its path;
the server harness it uses is ``tests.support`` of this checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
