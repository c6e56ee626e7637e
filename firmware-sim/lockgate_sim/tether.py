"""Child processes that end with the process that started them, however it ends.

A demo (or a test run) killed with SIGKILL runs no cleanup code, so a child it started, such as
its Mosquitto, would outlive it and keep its port and files. The kernel's parent-death signal
(``prctl(PR_SET_PDEATHSIG)``) ends the child instead. It is set by util-linux's ``setpriv
--pdeathsig`` (an essential Debian package) in the child between fork and exec, so no Python
runs in the forked child (``preexec_fn`` is unsafe when threads run).

The kernel sends the signal when the *thread* that forked the child ends: start tethered
children from the event loop's thread, as ``asyncio.create_subprocess_exec`` does. A parent
that dies within the few microseconds between fork and ``setpriv``'s prctl is not noticed.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence


def tethered(argv: Sequence[str], *, signal_name: str = "TERM") -> list[str]:
    """``argv`` run so that the kernel sends it SIG``signal_name`` when we die.

    Where ``setpriv`` is missing (not a Debian-like system), ``argv`` is returned unchanged:
    the child then lives on after a SIGKILL of ours, as before.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return list(argv)
    return [setpriv, "--pdeathsig", signal_name, "--", *argv]
