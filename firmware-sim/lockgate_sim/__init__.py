"""Simulated lock firmware, phone and links for Lockgate's tests and demo.

:mod:`lockgate_sim.lock` holds the lock model (what firmware does: slots, code rules, time
windows, audit log, keypad, card reader, bolt, battery, faults). Links put real transports in
front of it: in-process (:mod:`lockgate_sim.driver`), serial over a pty, BLE over bumble.
"""
