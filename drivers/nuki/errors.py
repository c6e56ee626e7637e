"""The lock's Error Report codes as driver errors (:mod:`drivers.errors`)."""

from __future__ import annotations

from drivers.errors import (
    CapacityError,
    CodeRuleError,
    DriverError,
    DuplicateCodeError,
    LockAuthError,
    LockBusyError,
    ProtocolError,
)
from drivers.nuki.session import NukiError
from drivers.nuki.wire import ErrorCode


def driver_error(err: NukiError, lock_id: str, credential_id: str | None = None) -> DriverError:
    """Per-credential refusals carry ``credential_id``; the rest concern the whole lock."""
    name = ErrorCode.name_of(err.code)
    if err.code in (ErrorCode.K_BAD_PIN, ErrorCode.K_TOO_MANY_PIN_ATTEMPTS):
        return LockAuthError(
            f"the lock refused the security PIN ({name}): commission again with the right PIN",
            lock_id=lock_id,
        )
    if err.code in (ErrorCode.K_NOT_AUTHORIZED, ErrorCode.K_DISABLED):
        return LockAuthError(
            f"the lock does not know this gateway any more ({name}): commission it again",
            lock_id=lock_id,
        )
    if err.code == ErrorCode.K_CODE_ALREADY_EXISTS:
        return DuplicateCodeError(
            "the lock already has this code", lock_id=lock_id, credential_id=credential_id
        )
    if err.code == ErrorCode.K_CODE_INVALID:
        return CodeRuleError(
            "the lock refuses this code (Nuki's code rules)",
            lock_id=lock_id,
            credential_id=credential_id,
        )
    if err.code == ErrorCode.K_TOO_MANY_ENTRIES:
        return CapacityError(
            "the lock holds no more keypad codes", lock_id=lock_id, credential_id=credential_id
        )
    if err.code == ErrorCode.K_BUSY:
        return LockBusyError(f"the lock is busy ({name})", lock_id=lock_id)
    return ProtocolError(f"the lock answered {name}", lock_id=lock_id)
