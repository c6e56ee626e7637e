"""The lock's link secrets, kept in the lock's flash (``SimLock.link_keys``, base64 values).

Made at the first boot ("in the factory"): the lock's X25519 static key, an 8-byte device id
and the 16-byte pairing secret printed on its label. Commissioning adds the gateway's static
public key and the long-term key; a reset removes them and opens pairing again.
"""

from __future__ import annotations

import base64

from drivers.lockproto.crypto import (
    PAIRING_SECRET_LEN,
    Rng,
    format_pairing_secret,
    gateway_id,
    private_key,
    public_bytes,
)
from lockgate_sim.lock import SimLock


class LinkStore:
    def __init__(self, lock: SimLock, rng: Rng) -> None:
        self._lock = lock
        self._rng = rng
        self.first_boot()

    def first_boot(self) -> None:
        """Draw the factory secrets if the flash holds none (new, or wiped)."""
        keys = self._lock.link_keys
        if "static" not in keys:
            keys["static"] = _b64(self._rng(32))
            keys["device_id"] = _b64(self._rng(8))
            keys["pairing_secret"] = _b64(self._rng(PAIRING_SECRET_LEN))
            self._lock.save_link_keys()

    def _get(self, name: str) -> bytes | None:
        value = self._lock.link_keys.get(name)
        return None if value is None else base64.b64decode(value)

    def _need(self, name: str) -> bytes:
        value = self._get(name)
        assert value is not None, name
        return value

    @property
    def static(self) -> bytes:
        return self._need("static")

    @property
    def static_public(self) -> bytes:
        return public_bytes(private_key(self.static))

    @property
    def device_id(self) -> bytes:
        return self._need("device_id")

    @property
    def pairing_secret(self) -> bytes:
        return self._need("pairing_secret")

    @property
    def pairing_label(self) -> str:
        """The pairing secret as printed on the lock's label."""
        return format_pairing_secret(self.pairing_secret)

    @property
    def gateway_static(self) -> bytes | None:
        return self._get("gateway_static")

    @property
    def gateway_id(self) -> bytes | None:
        gw = self.gateway_static
        return None if gw is None else gateway_id(gw)

    @property
    def long_term_key(self) -> bytes | None:
        return self._get("ltk")

    @property
    def commissioned(self) -> bool:
        return self.gateway_static is not None and self.long_term_key is not None

    def commit(self, gateway_static: bytes, long_term_key: bytes) -> None:
        self._lock.link_keys["gateway_static"] = _b64(gateway_static)
        self._lock.link_keys["ltk"] = _b64(long_term_key)
        self._lock.save_link_keys()

    def reset(self, new_pairing_secret: bytes | None = None) -> None:
        """Factory reset of the link: forget the gateway, open pairing again."""
        self._lock.link_keys.pop("gateway_static", None)
        self._lock.link_keys.pop("ltk", None)
        if new_pairing_secret is not None:
            self._lock.link_keys["pairing_secret"] = _b64(new_pairing_secret)
        self._lock.save_link_keys()


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")
