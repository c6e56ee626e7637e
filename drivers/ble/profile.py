"""The Lockgate GATT profile (docs/ble.md): UUIDs, the advertisement and the device-info record.

Pure data, no radio: the gateway's driver, the simulated lock and the simulated phone all
build and parse these bytes with the functions here.

One primary service, five characteristics:

* **command** (write, write without response): gateway → lock, segments of lock-protocol
  datagrams (:mod:`drivers.ble.segment`).
* **response** (notify): lock → gateway, segments of lock-protocol datagrams.
* **device info** (read): :class:`DeviceInfoRecord`, in clear; read once per connection.
* **mobile key** (write, notify): the phone's exchange with the lock
  (:mod:`drivers.ble.mobilekey`), segmented the same way.
* **status** (read, notify): one byte, the :class:`AdvertFlag` of the advertisement, for a
  central that is connected (a lock whose connection slots are all taken stops advertising).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from drivers.lockproto.errors import DecodeError
from drivers.lockproto.wire import Reader, Writer

PROFILE_VERSION = 1

_BASE = "7d2a{:04x}-5c3e-4b8f-9a61-4c4f434b4754"
SERVICE_UUID = _BASE.format(0x0001)
COMMAND_UUID = _BASE.format(0x0002)
RESPONSE_UUID = _BASE.format(0x0003)
DEVICE_INFO_UUID = _BASE.format(0x0004)
MOBILE_KEY_UUID = _BASE.format(0x0005)
STATUS_UUID = _BASE.format(0x0006)

COMPANY_ID = 0xFFFF
"""Bluetooth SIG "reserved for testing" company id. A shipping lock uses its maker's own id;
the gateway matches on the service UUID and reads the payload whatever the company id."""

DEVICE_ID_LEN = 8
SHORT_ID_LEN = 5
ATT_WRITE_OVERHEAD = 3
"""An ATT write or notification carries ATT_MTU - 3 bytes of value."""
MIN_ATT_MTU = 23


class AdvertFlag(enum.IntFlag):
    COMMISSIONED = 0x1
    EVENTS_WAITING = 0x2
    """The lock holds audit-log entries the gateway has not acknowledged."""
    ACCESS_REQUEST = 0x4
    """The lock waits for the gateway's decision on a credential it cannot decide itself."""


NO_FLAGS = AdvertFlag(0)


@dataclass(frozen=True, slots=True)
class LockAdvert:
    """What a Lockgate lock says in its manufacturer-specific advertising data (6 bytes)."""

    short_id: bytes
    """The first five bytes of the lock's 8-byte device id (the full id is checked in HELLO)."""
    flags: AdvertFlag = NO_FLAGS
    version: int = PROFILE_VERSION

    def encode(self) -> bytes:
        if len(self.short_id) != SHORT_ID_LEN:
            raise ValueError("short id must be 5 bytes")
        return bytes(((self.version & 0x0F) << 4 | (self.flags & 0x0F),)) + self.short_id

    @classmethod
    def decode(cls, payload: bytes) -> LockAdvert:
        if len(payload) != 1 + SHORT_ID_LEN:
            raise DecodeError(f"lock advert of {len(payload)} bytes")
        version = payload[0] >> 4
        if version != PROFILE_VERSION:
            raise DecodeError(f"profile version {version}")
        return cls(payload[1:], AdvertFlag(payload[0] & 0x0F), version)

    @classmethod
    def for_device(cls, device_id: bytes, flags: AdvertFlag = NO_FLAGS) -> LockAdvert:
        return cls(short_id(device_id), flags)


def short_id(device_id: bytes) -> bytes:
    if len(device_id) != DEVICE_ID_LEN:
        raise ValueError("device id must be 8 bytes")
    return device_id[:SHORT_ID_LEN]


def advertising_data(advert: LockAdvert) -> bytes:
    """The 31-byte legacy advertising payload: flags, the service UUID, the lock advert.

    Everything the gateway needs fits in the advertising PDU itself, so a passive scan (and
    a controller that never sends a scan response) still finds the lock.
    """
    flags = bytes((2, 0x01, 0x06))  # LE General Discoverable, BR/EDR not supported
    uuid_le = bytes.fromhex(SERVICE_UUID.replace("-", ""))[::-1]
    uuids = bytes((17, 0x07)) + uuid_le
    payload = COMPANY_ID.to_bytes(2, "little") + advert.encode()
    manufacturer = bytes((len(payload) + 1, 0xFF)) + payload
    data = flags + uuids + manufacturer
    assert len(data) <= 31
    return data


@dataclass(frozen=True, slots=True)
class DeviceInfoRecord:
    """The device-info characteristic: read in clear right after connecting."""

    device_id: bytes
    max_datagram: int
    """The longest datagram the lock reassembles (its receive buffer)."""
    idle_timeout_s: int
    """The lock drops a connection that carried nothing for this long; 0 = never."""
    flags: AdvertFlag = NO_FLAGS
    version: int = PROFILE_VERSION

    def encode(self) -> bytes:
        w = Writer().u8(self.version).raw(self.device_id).u8(self.flags)
        return w.u16(self.max_datagram).u16(self.idle_timeout_s).getvalue()

    @classmethod
    def decode(cls, data: bytes) -> DeviceInfoRecord:
        r = Reader(data)
        version = r.u8()
        if version != PROFILE_VERSION:
            raise DecodeError(f"profile version {version}")
        device_id, flags = r.raw(DEVICE_ID_LEN), AdvertFlag(r.u8() & 0x0F)
        rec = cls(device_id, r.u16(), r.u16(), flags, version)
        # trailing bytes are fields of a later minor revision: ignored
        if rec.max_datagram < 64:
            raise DecodeError("lock announces an unusable datagram size")
        return rec
