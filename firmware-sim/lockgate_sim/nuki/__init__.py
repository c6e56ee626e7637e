"""A simulated Nuki Smart Lock (Smart Lock API V2.1) on the project's bumble radio.

:mod:`.model` is the lock's memory and rules (authorizations, keypad codes with windows on the
injected clock, the log, the bolt), :mod:`.engine` the command handling in bytes (pairing and
sealed commands), :mod:`.gatt` the GATT server that carries them, with faults to inject.
"""
