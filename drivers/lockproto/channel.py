"""The sealed channel of one session: directional keys, per-direction counters (§6.3).

The sender numbers its DATA datagrams 1, 2, 3...; the receiver accepts a datagram only when
its counter is above the last one it accepted *and* its tag verifies, so replayed, reordered,
truncated and forged datagrams are all refused. The counter is updated only after the tag
verified, so garbage cannot push it forward.
"""

from __future__ import annotations

from drivers.lockproto.crypto import Sealer
from drivers.lockproto.datagrams import Data, data_header
from drivers.lockproto.errors import DecodeError, ReplayError

MAX_COUNTER = 2**64 - 1


class SecureChannel:
    __slots__ = ("_opener", "_sealer", "recv_counter", "send_counter", "session_id")

    def __init__(self, session_id: int, send_key: bytes, recv_key: bytes) -> None:
        self.session_id = session_id
        self._sealer = Sealer(send_key)
        self._opener = Sealer(recv_key)
        self.send_counter = 0
        self.recv_counter = 0

    def seal(self, plaintext: bytes) -> Data:
        if self.send_counter >= MAX_COUNTER:
            raise OverflowError("counter exhausted: start a new session")
        counter = self.send_counter = self.send_counter + 1
        header = data_header(self.session_id, counter)
        return Data(self.session_id, counter, self._sealer.seal(counter, header, plaintext))

    def open(self, dg: Data) -> bytes:
        if dg.session_id != self.session_id:
            raise DecodeError("datagram of another session")
        if dg.counter <= self.recv_counter:
            raise ReplayError(f"counter {dg.counter} not above {self.recv_counter}")
        header = data_header(self.session_id, dg.counter)
        plaintext = self._opener.open(dg.counter, header, dg.sealed)
        self.recv_counter = dg.counter
        return plaintext
