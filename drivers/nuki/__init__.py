"""The Nuki driver: Nuki smart locks (Smart Lock API V2.1) over BLE, through bleak.

Layers, bottom-up: :mod:`.crypto` (NaCl primitives, CRC) → :mod:`.wire` (message framing,
sealing, reassembly of indications) → :mod:`.messages` (command payloads) → :mod:`.session`
(one GATT link: request/answer, challenge nonces) → :mod:`.client` (pairing and the lock's
operations) → :mod:`.driver` (the Lockgate contract).
"""
