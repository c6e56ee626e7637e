"""Lockgate's public namespace for people who extend it.

Driver authors import the contract from :mod:`lockgate.drivers` and test their driver with the
conformance kit in :mod:`lockgate.testing`. The gateway itself lives in the ``gateway`` and
``drivers`` packages; these modules re-export what a plugin may rely on, so a plugin never
imports a generic top-level name.
"""
