"""Protocol-layer tests: bytes straight into the parsers, a loopback carrier, no pty.

The suite-wide ``tests/conftest.py`` checks for leaked tasks; here the simulator package and
this folder's helpers (``loopback``, ``pairs``, ``vectors``) are put on the import path.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT, ROOT / "firmware-sim", Path(__file__).parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
