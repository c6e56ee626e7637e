"""Where optional parts plug into the daemon and the command line.

The MQTT plane, systemd notification and the demo register here, so ``cli.py`` and
``daemon.py`` stay ignorant of them (imports still point one way: this module imports them).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from gateway.config import GatewayConfig

if TYPE_CHECKING:
    from gateway.daemon import Gateway

Extra = Callable[["Gateway"], Coroutine[Any, Any, None]]


def gateway_extensions(cfg: GatewayConfig) -> list[Extra]:
    """Long-running tasks to run beside the gateway's own, chosen by the config."""
    extras: list[Extra] = []
    if os.environ.get("NOTIFY_SOCKET"):  # under systemd Type=notify
        from gateway.supervise import systemd_notify

        extras.append(systemd_notify)
    if cfg.control_socket is not None:
        from gateway.local_control import local_control

        extras.append(local_control)
    if cfg.mqtt.enabled:
        from gateway.mqtt.plane import mqtt_plane

        extras.append(mqtt_plane)
    return extras


def add_subcommands(sub: Any) -> None:
    """Subcommands contributed by optional parts (``ctl``, ``demo``)."""
    _ = argparse  # subcommands are added by the parts that own them
    from gateway import cloud_ls, ctl, doctor, local_control
    from gateway.cli import config_argument
    from gateway.mqtt import identity_cli

    ctl.add_parser(sub)
    cloud_ls.add_parser(sub, config_argument)
    doctor.add_parser(sub, config_argument)
    local_control.add_parser(sub, config_argument)
    identity_cli.add_parser(sub, config_argument)
