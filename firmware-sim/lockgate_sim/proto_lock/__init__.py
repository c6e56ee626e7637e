"""The lock's side of the Lockgate lock protocol, over a :class:`~lockgate_sim.lock.SimLock`.

Carrier-independent (the serial bus simulator and the BLE lock both feed it datagrams):

* :mod:`.link_store` - the lock's non-volatile link secrets (static key, pairing secret,
  the commissioned gateway's key and the long-term key).
* :mod:`.responder` - pairing and handshake responder, sessions, counters, reply cache.
* :mod:`.access` - the queue of access requests waiting for the gateway's decision.
* :mod:`.handlers` - the message layer: one handler per request type.
* :mod:`.engine` - :class:`LockEngine`: datagram in, datagram (or silence) out; reboots and
  faults; refusal counters.
"""

from lockgate_sim.proto_lock.engine import LockEngine

__all__ = ["LockEngine"]
