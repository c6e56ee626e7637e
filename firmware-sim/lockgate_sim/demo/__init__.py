"""The demo site: ``lockgate-sim demo`` (the README's ``scripts/demo.sh``).

On one machine: the fake cloud with a few grants, simulated locks in-process, on an RS-485 bus
behind a pty and on a virtual BLE radio, a phone with a mobile key, a private Mosquitto, and
the gateway with its management plane, plus a live view and a scripted walk-through.

Layers, bottom-up (each imports only those above it in this list):

=================  ==========================================================================
``scenario``       the site's data: buildings, locks, people, grants; masking secrets
``broker``         a private Mosquitto on a free port
``radio``          the BLE side: virtual radio, the gateway's adapter, the BLE lock, the phone
``mqtt_watch``     an MQTT consumer of the gateway's access events
``site``           everything above plus the fake cloud, the serial bus and the gateway
``snapshot``       what the views show, read from a running site
``view``           the live terminal view and the plain line-by-line output
``walkthrough``    the scripted story
``app``            state directory, logs, signals, the run
=================  ==========================================================================

The command line is in :mod:`lockgate_sim.cli`. See docs/demo.md.
"""
