"""The Bluetooth LE lock driver, on bleak: the Lockgate lock protocol carried over GATT.

Layers, bottom-up, one module each (imports point down only; bleak is the only radio stack
imported here, and only through its public classes and ``backend=`` hook):

* :mod:`.profile`, :mod:`.segment` - the GATT profile's UUIDs and records, and the
  segmentation of datagrams over the ATT MTU (pure; the simulated lock uses them too).
* :mod:`.mobilekey` - the phone's exchange with a lock and the mobile-key proof (pure).
* :mod:`.errors` - bleak's exceptions as :mod:`drivers.errors` errors.
* :mod:`.scanner`, :mod:`.slots`, :mod:`.adapter` - the adapter shared by all BLE locks: the one
  scanner that feeds advertisements to the drivers, the connection limit, the connect lock.
* :mod:`.link` - one ``bleak.BleakClient`` connection to one lock.
* :mod:`.carrier` - that link as a :class:`drivers.lockproto.carrier.Carrier`.
* :mod:`.connection` - connect on demand, idle disconnect, keep-alive, reconnect with backoff
  (:mod:`drivers.backoff`, timers on :mod:`drivers.clock`): the link over time.
* :mod:`.options`, :mod:`.driver` - :class:`~drivers.ble.driver.BleDriver`, the ``ble`` driver.

The specification is docs/ble.md (carrier) and docs/mobile-keys.md (mobile keys).
"""
