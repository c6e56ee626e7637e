"""Errors of the OSDP driver beyond the common tree (:mod:`drivers.errors`)."""

from __future__ import annotations

from drivers.errors import DriverError


class ProvisioningRefusedError(DriverError):
    """Key provisioning refused: the reader has a site key already, or does not take the
    default key (not in install mode). Nothing was changed on the reader."""

    code = "provisioning_refused"
    retryable = False
