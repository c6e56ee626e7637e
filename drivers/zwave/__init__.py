"""The Z-Wave driver: PIN codes on Z-Wave door locks through a Z-Wave JS server.

Layers, bottom-up: :mod:`.connection` (one websocket per server, shared by its locks, with
reconnect) → :mod:`.commands` (one command class call with a timeout, errors normalised) →
:mod:`.usercodes`, :mod:`.doorlock`, :mod:`.schedule` (what each command class means for a
lock) → :mod:`.slotmap` and :mod:`.journal` (state kept in the gateway's encrypted store) →
:mod:`.driver` (the :class:`drivers.base.LockDriver`).
"""
