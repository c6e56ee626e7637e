"""The driver error tree: small, typed, with machine-readable codes.

Every error a driver raises is a :class:`DriverError`. The gateway maps ``code`` straight into
per-credential sync state and MQTT error replies, so codes are stable API; messages are for
people and never carry a secret (no PIN, no key material).
"""

from __future__ import annotations


class DriverError(Exception):
    """Base of all driver errors.

    ``retryable`` tells the reconciler whether trying again later can help (a link that dropped)
    or not (a code the lock's rules refuse). ``lock_id`` and ``credential_id`` are filled in
    where known.
    """

    code: str = "driver_error"
    retryable: bool = True

    def __init__(
        self,
        message: str,
        *,
        lock_id: str | None = None,
        credential_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.lock_id = lock_id
        self.credential_id = credential_id

    def as_dict(self) -> dict[str, str | None]:
        return {
            "code": self.code,
            "message": self.message,
            "lock_id": self.lock_id,
            "credential_id": self.credential_id,
        }


# --- the link to the lock --------------------------------------------------------------------
class LockLinkError(DriverError):
    """The lock could not be reached or the link broke mid-operation."""

    code = "link_error"


class LockOfflineError(LockLinkError):
    """The lock is not reachable now (not advertising, port gone, no answer)."""

    code = "lock_offline"


class LockTimeoutError(LockLinkError):
    """The lock did not answer in time."""

    code = "timeout"


class LockBusyError(LockLinkError):
    """The lock is busy with something else; try again shortly."""

    code = "busy"


class LockAuthError(DriverError):
    """The lock refused our credentials (not commissioned to this gateway, wrong key).

    Not retryable in a tight loop: an operator has to commission the lock again.
    """

    code = "unauthorised"
    retryable = False


class ProtocolError(LockLinkError):
    """The lock answered something we cannot understand (bad frame, wrong version)."""

    code = "protocol_error"


class OutcomeUnknownError(DriverError):
    """A command that must not run twice (lock, unlock, an access decision) was sent, and no
    authenticated answer came: the lock may or may not have carried it out.

    Never retried automatically (a second unlock in a new session could open the door twice);
    the caller reports it and an operator checks the lock's state or its audit log.
    """

    code = "outcome_unknown"
    retryable = False


# --- per-credential refusals -----------------------------------------------------------------
class CredentialRejectedError(DriverError):
    """The lock refused one credential. Subclasses say why."""

    code = "rejected"
    retryable = False


class CodeRuleError(CredentialRejectedError):
    """The PIN breaks the lock's code rules (length, alphabet)."""

    code = "code_rule"


class CapacityError(CredentialRejectedError):
    """The lock has no free slot."""

    code = "capacity"


class DuplicateCodeError(CredentialRejectedError):
    """Another credential on the lock already uses this PIN or card."""

    code = "duplicate"


class UnsupportedError(CredentialRejectedError):
    """The lock does not support this kind of credential or operation."""

    code = "unsupported"


class NotFoundError(DriverError):
    """The credential is not on the lock (deleting it is then already done)."""

    code = "not_found"
    retryable = False


class DriverConfigError(DriverError):
    """The driver's options cannot work (port missing, bad address)."""

    code = "config_error"
    retryable = False


class DriverFault(DriverError):
    """The driver raised something outside this tree: a bug in the driver, not a lock problem.

    Drivers never raise it; the gateway's lock handle wraps the unexpected exception in it (the
    original is ``__cause__``), logs it once with its traceback and backs the lock off to its
    longest retry delay. The message names the operation and the exception's type only: the
    exception's own text may carry anything, so it stays in the traceback.
    """

    code = "driver_fault"
