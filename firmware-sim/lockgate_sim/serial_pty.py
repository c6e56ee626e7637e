"""A pseudo-terminal standing in for a USB RS-485 adapter.

The simulator drives the master side; the driver opens the slave with pyserial. The slave is
put in raw mode at once and kept open here (else the master reads EIO whenever the driver
closes its side). An optional stable ``link`` path (a symlink, like ``/dev/serial/by-id/...``)
points at the current slave, so :meth:`unplug` + :meth:`plug` looks to the driver like an
adapter pulled out and put back (with a new ``/dev/pts/N`` behind the same link).
"""

from __future__ import annotations

import contextlib
import os
import tty
from pathlib import Path


class Pty:
    def __init__(self, link: Path | None = None) -> None:
        self.link = link
        self.master: int | None = None
        self._slave: int | None = None
        self.slave_name = ""

    def plug(self) -> int:
        """Open a new pty (and point the link at it); returns the master fd."""
        if self.master is not None:
            raise RuntimeError("already plugged")
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        self.master, self._slave = master, slave
        self.slave_name = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.slave_name)
            tmp.replace(self.link)
        return master

    @property
    def path(self) -> str:
        return str(self.link) if self.link is not None else self.slave_name

    def unplug(self) -> None:
        """Remove the link and close both sides: the driver sees end of file."""
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        self.close_slave()
        if self.master is not None:
            # The master fd is closed by its transport; just forget it here.
            self.master = None

    def close_slave(self) -> None:
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None
