"""The Nuki lock's GATT profile and advertisement (Smart Lock API V2.1 §2).

A Nuki lock advertises an iBeacon (Apple's company id 0x004C, type 0x02 0x15) whose proximity
UUID is the keyturner service's; bit 0 of its last byte (the measured power) says the lock's
state changed since a client last asked (pyNukiBT and Nuki Hub poll when it is set).
"""

from __future__ import annotations

from dataclasses import dataclass

INITIALIZATION_SERVICE_UUID = "a92ee000-5501-11e4-916c-0800200c9a66"
PAIRING_SERVICE_UUID = "a92ee100-5501-11e4-916c-0800200c9a66"
PAIRING_CHAR_UUID = "a92ee101-5501-11e4-916c-0800200c9a66"
KEYTURNER_SERVICE_UUID = "a92ee200-5501-11e4-916c-0800200c9a66"
GENERAL_CHAR_UUID = "a92ee201-5501-11e4-916c-0800200c9a66"
USER_CHAR_UUID = "a92ee202-5501-11e4-916c-0800200c9a66"

APPLE_COMPANY_ID = 0x004C
_IBEACON = bytes((0x02, 0x15))
_UUID_BYTES = bytes.fromhex(KEYTURNER_SERVICE_UUID.replace("-", ""))
MEASURED_POWER = 0xC4
"""-60 dBm at one metre, with bit 0 cleared (the "changed" flag)."""


@dataclass(frozen=True, slots=True)
class NukiBeacon:
    changed: bool
    """The lock has something new (pyNukiBT: "poll needed")."""


def parse_beacon(manufacturer_data: dict[int, bytes]) -> NukiBeacon | None:
    """The Nuki beacon in an advertisement's manufacturer data, or ``None``."""
    payload = manufacturer_data.get(APPLE_COMPANY_ID)
    if payload is None or len(payload) != 23 or payload[:2] != _IBEACON:
        return None
    if payload[2:18] != _UUID_BYTES:
        return None
    return NukiBeacon(changed=bool(payload[22] & 0x01))


def beacon_advertising_data(*, changed: bool, major: int = 0, minor: int = 0) -> bytes:
    """Flags and the iBeacon: the 30-byte legacy advertising payload of a Nuki lock."""
    flags = bytes((2, 0x01, 0x06))
    power = (MEASURED_POWER & 0xFE) | (1 if changed else 0)
    beacon = (
        APPLE_COMPANY_ID.to_bytes(2, "little")
        + _IBEACON
        + _UUID_BYTES
        + major.to_bytes(2, "big")
        + minor.to_bytes(2, "big")
        + bytes((power,))
    )
    return flags + bytes((len(beacon) + 1, 0xFF)) + beacon
