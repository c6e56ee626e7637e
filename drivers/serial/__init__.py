"""The serial (RS-485 / UART) lock driver, on pyserial with a small asyncio transport.

Bottom-up: :mod:`.transport` (non-blocking asyncio transport over a tty file descriptor),
:mod:`.frames` (the framing protocol on that transport), :mod:`.bus` (one port shared by the
locks on it, reopened with backoff when the adapter disappears), :mod:`.buses` (the registry
keyed by port path), :mod:`.carrier` (one bus address as a datagram carrier), :mod:`.poller`
(polling for access requests and new events), :mod:`.driver` (the :class:`LockDriver`).
The protocol itself lives in :mod:`drivers.lockproto`.
"""
