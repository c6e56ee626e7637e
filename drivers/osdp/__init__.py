"""OSDP card and keypad readers on RS-485, decided by the gateway (see docs/osdp.md).

Layers, bottom-up: :mod:`~drivers.osdp.channel` (the serial port under libosdp, and a watcher
of the replies), :mod:`~drivers.osdp.panel` (one libosdp control panel per port, its threads
bridged to asyncio, reader health and revival, key provisioning), :mod:`~drivers.osdp.panels`
(panels by port), :mod:`~drivers.osdp.wiegand` and :mod:`~drivers.osdp.keypad` (what a read
means), :mod:`~drivers.osdp.feedback` (strike, LED and buzzer commands), and
:mod:`~drivers.osdp.driver` (one reader as a :class:`~drivers.base.LockDriver`).
"""
