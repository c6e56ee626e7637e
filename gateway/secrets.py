"""Secrets come from files or systemd credentials: see :mod:`drivers.secrets`.

The model lives with the drivers (a driver's options name their own secrets, such as an OSDP
reader's key, and drivers never import the gateway); the gateway uses it from here.
"""

from __future__ import annotations

from drivers.secrets import SecretError, SecretRef, create_secret_file

__all__ = ["SecretError", "SecretRef", "create_secret_file"]
