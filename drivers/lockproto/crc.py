"""CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, not reflected, no final xor; check 0x29B1)."""

from __future__ import annotations

import binascii

CHECK_VALUE = 0x29B1
"""crc16(b"123456789")."""


def crc16(data: bytes) -> int:
    # binascii.crc_hqx is exactly this CRC when seeded with 0xFFFF.
    return binascii.crc_hqx(data, 0xFFFF)
