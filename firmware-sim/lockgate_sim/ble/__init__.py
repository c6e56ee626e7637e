"""Simulated BLE locks, phones and radio, on bumble (pinned ``bumble==0.0.236``).

* :mod:`.radio` - bumble controllers on one virtual link, and the air counter.
* :mod:`.central` - a bumble device in the central role (a simulated adapter).
* :mod:`.backend` - bleak backend classes over a central: the real bleak API, simulated radio.
* :mod:`.peripheral` - :class:`~.peripheral.BleLock`: a SimLock and its protocol engine behind
  the Lockgate GATT profile, with faults on demand.
* :mod:`.phone` - :class:`~.phone.SimPhone`, a phone holding a mobile key.
* :mod:`.simulator`, :mod:`.remote`, ``__main__`` - the standalone simulator (HCI over TCP).
"""
