"""Lockgate's local fake of Seam Connect: the same routes and object shapes, in memory.

Start it with :class:`FakeCloudServer` (in-process) or ``python -m fakecloud`` (standalone).
"""

from fakecloud.clock import ManualClock
from fakecloud.control import FakeCloudControl
from fakecloud.outage import Outage, OutageMode
from fakecloud.seed import DEMO_SEED, load_seed, state_from_seed
from fakecloud.server import FakeCloudServer, new_api_key
from fakecloud.state import WorkspaceState

__all__ = [
    "DEMO_SEED",
    "FakeCloudControl",
    "FakeCloudServer",
    "ManualClock",
    "Outage",
    "OutageMode",
    "WorkspaceState",
    "load_seed",
    "new_api_key",
    "state_from_seed",
]
