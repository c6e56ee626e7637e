"""Lockgate, the gateway daemon: cloud sync, durable store, reconciler, offline decisions.

Layers, bottom up (imports point down only): ``clock``/``config``/``secrets`` → ``store`` →
``cloud`` (client) → ``sync`` → ``planner`` → ``reconciler`` / ``validator`` → ``daemon`` →
``cli``. Drivers come from the :mod:`drivers` package; nothing here knows a simulator.
"""
