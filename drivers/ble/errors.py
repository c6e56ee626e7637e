"""bleak's exceptions as driver errors (:mod:`drivers.errors`), with what is known of BlueZ.

The simulated backend raises what bleak documents (``TimeoutError`` on connect,
``BleakGATTProtocolError`` for ATT errors, ``BleakError`` for a dropped link). BlueZ adds
D-Bus errors; the names mapped here come from BlueZ's documentation and bleak's issues, and
only real hardware exercises them (docs/ble.md, "what only hardware can confirm").
"""

from __future__ import annotations

from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakCharacteristicNotFoundError,
    BleakDBusError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)

from drivers.errors import (
    DriverError,
    LockAuthError,
    LockBusyError,
    LockLinkError,
    LockOfflineError,
    LockTimeoutError,
    ProtocolError,
)

_AUTH_CODES = {
    BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION,
    BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHORIZATION,
    BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION,
    BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION_KEY_SIZE,
}
_BUSY_DBUS = {"org.bluez.Error.InProgress", "org.bluez.Error.Busy"}
_OFFLINE_DBUS = {
    "org.bluez.Error.NotConnected",
    "org.bluez.Error.NotReady",
    "org.bluez.Error.DoesNotExist",
    "org.freedesktop.DBus.Error.UnknownObject",
}
_AUTH_DBUS = {
    "org.bluez.Error.AuthenticationFailed",
    "org.bluez.Error.AuthenticationRejected",
    "org.bluez.Error.AuthenticationCanceled",
    "org.bluez.Error.NotPermitted",
}


class ImpostorError(LockLinkError):
    """The device behind an advertisement that matched the lock is another device (its
    device-info record names another device id). That address is passed over; the lock is
    not: other sightings are tried, and the operation is retried like any link failure."""

    code = "device_mismatch"

    def __init__(self, message: str, *, address: str, device_id: bytes, lock_id: str) -> None:
        super().__init__(message, lock_id=lock_id)
        self.address = address
        self.device_id = device_id


def map_error(err: BaseException, *, lock_id: str, doing: str) -> DriverError:
    """The driver error for ``err`` raised by bleak while ``doing`` something."""
    if isinstance(err, DriverError):
        return err
    what = f"{doing}: {err or type(err).__name__}"
    if isinstance(err, TimeoutError):
        return LockTimeoutError(f"{doing}: no answer in time", lock_id=lock_id)
    if isinstance(err, BleakGATTProtocolError):
        if err.code in _AUTH_CODES:
            return LockAuthError(
                f"{doing}: the lock wants an encrypted, bonded link ({err.code.name}); "
                "set pair = true for this lock",
                lock_id=lock_id,
            )
        if err.code == BleakGATTProtocolErrorCode.PROCEDURE_ALREADY_IN_PROGRESS:
            return LockBusyError(what, lock_id=lock_id)
        return ProtocolError(f"{doing}: ATT error {err.code.name}", lock_id=lock_id)
    if isinstance(err, BleakCharacteristicNotFoundError):
        return ProtocolError(f"{doing}: not a Lockgate lock ({err})", lock_id=lock_id)
    if isinstance(err, BleakDeviceNotFoundError):
        return LockOfflineError(f"{doing}: the adapter does not know the lock", lock_id=lock_id)
    if isinstance(err, BleakBluetoothNotAvailableError):
        return LockOfflineError(
            f"{doing}: Bluetooth not available ({err.reason.name.lower()})", lock_id=lock_id
        )
    if isinstance(err, BleakDBusError):
        name = err.dbus_error
        if name in _BUSY_DBUS:
            return LockBusyError(what, lock_id=lock_id)
        if name in _AUTH_DBUS:
            return LockAuthError(what, lock_id=lock_id)
        if name in _OFFLINE_DBUS or "le-connection-abort" in str(err):
            return LockOfflineError(what, lock_id=lock_id)
        return LockLinkError(what, lock_id=lock_id)
    if isinstance(err, BleakError | EOFError | OSError):
        return LockLinkError(what, lock_id=lock_id)
    return LockLinkError(f"{doing}: {type(err).__name__}: {err}", lock_id=lock_id)
