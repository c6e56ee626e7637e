"""The conformance kit for driver authors: run it against your driver and its lock.

``from lockgate.testing import DriverConformance, make_context`` — see ``docs/drivers.md``.
"""

from __future__ import annotations

from lockgate.testing.conformance import (
    CHECKS,
    ConformanceError,
    DriverConformance,
    check_capabilities,
    check_code_rules,
    check_credentials,
    check_driver,
    check_driver_class,
    check_link,
    check_no_secret_in_repr,
    check_optional,
)
from lockgate.testing.context import (
    MemoryKeyStore,
    code_credential,
    content_tag,
    fitting_code,
    make_context,
)

__all__ = [
    "CHECKS",
    "ConformanceError",
    "DriverConformance",
    "MemoryKeyStore",
    "check_capabilities",
    "check_code_rules",
    "check_credentials",
    "check_driver",
    "check_driver_class",
    "check_link",
    "check_no_secret_in_repr",
    "check_optional",
    "code_credential",
    "content_tag",
    "fitting_code",
    "make_context",
]
