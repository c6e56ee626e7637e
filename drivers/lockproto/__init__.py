"""The Lockgate lock protocol, independent of the carrier (RS-485/UART or BLE GATT).

Layers, bottom-up, one module each (imports point down only):

* :mod:`.wire`, :mod:`.crc`, :mod:`.cobs` - byte helpers.
* :mod:`.framing` - the byte-stream carrier: COBS frames with address and CRC-16 (serial only;
  a datagram carrier such as GATT skips it).
* :mod:`.datagrams` - the session layer's datagrams (handshake, pairing, sealed data, errors).
* :mod:`.crypto`, :mod:`.channel` - key schedule and the sealed channel with counters.
* :mod:`.messages`, :mod:`.records` - the request/reply messages and their bodies.
* :mod:`.carrier`, :mod:`.client`, :mod:`.pairing` - the gateway's side of the session over any
  :class:`~.carrier.Carrier`.
* :mod:`.lockclient` - lock operations in the driver contract's terms, on top of a session.
* :mod:`.keys` - the link keys in the driver context's key store; :mod:`.requests` - serving
  POLL replies (access requests, new audit entries): what every driver does the same way.
* :mod:`.stats` - counts of refused input, by reason, for each layer that drops input.

The specification a firmware engineer implements is ``docs/protocol.md``; the lock's side of the
protocol in Python lives in ``firmware-sim/lockgate_sim/proto_lock``.
"""
