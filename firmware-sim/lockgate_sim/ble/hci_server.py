"""An HCI endpoint on a TCP port whose host may leave and come back (a gateway restarting).

Bumble's own ``tcp-server`` transport keeps one sink for all connections and clears it when
*any* connection ends. When a host closes its connection and a new host connects before the
event loop has delivered the old connection's end (a restart that is quick enough), the old
connection's ``connection_lost`` clears the sink the new connection had just set: every HCI
packet for the new host is then dropped ("no client, dropping packet") and its HCI reset never
answers. Here the newest connection owns the endpoint, and the end of an older one changes
nothing; each connection also starts with a fresh HCI parser (no half packet carried over).
"""

from __future__ import annotations

import asyncio
import logging
import socket

from bumble.core import InvalidPacketError
from bumble.transport.common import PacketParser, ParserSource, Transport

log = logging.getLogger(__name__)


class _Source(ParserSource):
    """Bytes from whichever connection is current, parsed into HCI packets."""

    def restart(self) -> None:
        self.parser = PacketParser()
        if self.sink is not None:
            self.parser.set_packet_sink(self.sink)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except InvalidPacketError:
            log.warning("invalid HCI packet from the host, ignored")


class _Sink:
    """HCI packets to the current connection; dropped while no host is connected."""

    def __init__(self) -> None:
        self.current: asyncio.Transport | None = None

    def on_packet(self, packet: bytes) -> None:
        if self.current is not None and not self.current.is_closing():
            self.current.write(packet)
        else:
            log.debug("no host connected, dropping an HCI packet")


class _Connection(asyncio.Protocol):
    def __init__(self, source: _Source, sink: _Sink) -> None:
        self._source = source
        self._sink = sink
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        old, self._sink.current = self._sink.current, transport
        if old is not None:
            old.close()  # one host at a time: the newest
        self._source.restart()
        log.debug("HCI host connected from %s", transport.get_extra_info("peername"))

    def data_received(self, data: bytes) -> None:
        if self._sink.current is self._transport:
            self._source.data_received(data)

    def eof_received(self) -> bool | None:
        self._lost()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def _lost(self) -> None:
        if self._sink.current is self._transport:  # not a newer host's connection
            self._sink.current = None
            log.debug("HCI host disconnected")


class HciServerTransport(Transport):
    def __init__(self, source: _Source, sink: _Sink, server: asyncio.Server) -> None:
        super().__init__(source, sink)
        self._server = server
        self._hosts = sink

    async def close(self) -> None:
        self._server.close()
        if self._hosts.current is not None:
            self._hosts.current.close()
            self._hosts.current = None


async def open_hci_server(sock: socket.socket) -> HciServerTransport:
    """Serve HCI on the bound socket ``sock`` (see the module's doc)."""
    source, sink = _Source(), _Sink()
    server = await asyncio.get_running_loop().create_server(
        lambda: _Connection(source, sink), sock=sock
    )
    return HciServerTransport(source, sink, server)
