"""Protocol-layer tests: bytes straight into the parsers, a loopback carrier, no pty.

The suite-wide ``tests/conftest.py`` checks for leaked tasks; here the repository and the
simulator package are put on the import path (this folder's helpers are imported as
``tests.proto.loopback``, ``tests.proto.pairs``, ``tests.proto.vectors``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT, ROOT / "firmware-sim"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
