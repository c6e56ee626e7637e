"""Lock drivers for Lockgate.

The contract every driver implements lives in :mod:`drivers.base`; the error tree in
:mod:`drivers.errors`; the registry keyed by the config ``type`` (open to third-party drivers
through the ``lockgate.drivers`` entry-point group) in :mod:`drivers.registry`. Shared by all
drivers (and the gateway): the retry policy in :mod:`drivers.backoff` and the wall clock timers
wait on in :mod:`drivers.clock`.

Imports point down only: ``gateway`` imports ``drivers``; ``drivers`` never imports ``gateway``.
"""
