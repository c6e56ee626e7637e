"""The driver contract, for third-party drivers: ``from lockgate.drivers import LockDriver``.

Everything a driver implements, returns or raises, re-exported from the gateway's own modules
(:mod:`drivers.base`, :mod:`drivers.errors`, :mod:`drivers.registry`, :mod:`drivers.backoff`).
Documented field by field in ``docs/drivers.md``. Register a driver through the entry-point
group :data:`ENTRY_POINT_GROUP` (``lockgate.drivers``), named by its ``type_name``.
"""

from __future__ import annotations

from drivers.backoff import Backoff
from drivers.base import (
    AccessAnswer,
    AccessRequest,
    BatchResult,
    BoltState,
    Capabilities,
    Credential,
    CredentialKind,
    Decider,
    DriverContext,
    DriverOptions,
    EventKind,
    EventPage,
    KeyStore,
    LockDriver,
    LockEvent,
    LockStatus,
    SecurityAlert,
    StoredCredential,
    TimeWindow,
    WaitClock,
)
from drivers.errors import (
    CapacityError,
    CodeRuleError,
    CredentialRejectedError,
    DriverConfigError,
    DriverError,
    DriverFault,
    DuplicateCodeError,
    LockAuthError,
    LockBusyError,
    LockLinkError,
    LockOfflineError,
    LockTimeoutError,
    NotFoundError,
    OutcomeUnknownError,
    ProtocolError,
    UnsupportedError,
)
from drivers.registry import ENTRY_POINT_GROUP, DriverRegistry, default_registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "AccessAnswer",
    "AccessRequest",
    "Backoff",
    "BatchResult",
    "BoltState",
    "Capabilities",
    "CapacityError",
    "CodeRuleError",
    "Credential",
    "CredentialKind",
    "CredentialRejectedError",
    "Decider",
    "DriverConfigError",
    "DriverContext",
    "DriverError",
    "DriverFault",
    "DriverOptions",
    "DriverRegistry",
    "DuplicateCodeError",
    "EventKind",
    "EventPage",
    "KeyStore",
    "LockAuthError",
    "LockBusyError",
    "LockDriver",
    "LockEvent",
    "LockLinkError",
    "LockOfflineError",
    "LockStatus",
    "LockTimeoutError",
    "NotFoundError",
    "OutcomeUnknownError",
    "ProtocolError",
    "SecurityAlert",
    "StoredCredential",
    "TimeWindow",
    "UnsupportedError",
    "WaitClock",
    "default_registry",
]
