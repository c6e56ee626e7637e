"""The gateway's check of a mobile-key attempt that a lock forwarded (docs/mobile-keys.md).

A lock that holds a mobile key decides it alone, offline. A lock that does not (it was
offline when the key was pushed, or it has no room) forwards the attempt through the lock
protocol: ``AccessRequest(kind=mobile_key, secret=<the public key's base64 text>,
proof=challenge ‖ device_id ‖ signature)``. The :class:`~gateway.validator.Validator` finds the
access method by that secret and calls :class:`MobileKeyProofCheck` with the method, the proof
and the lock; the check passes when

* the signature verifies under the method's public key (so the phone holds the private key),
* the signed device id is the one this gateway commissioned under that lock id (so a proof
  made at another lock fails here); a lock with no commissioning record (no link keys: no
  device id to check against) gets every proof refused, and
* this method never passed with this challenge before (the lock draws a fresh challenge per
  attempt and refuses a second answer; refusing a repeated one here too means even a lock that
  forwarded a recorded exchange cannot make it count twice). The challenges that passed are
  kept in the store (:class:`~gateway.store.challenges.SeenChallenges`): a restart of the
  gateway forgets none of them.

The window, revocation and entrance checks stay the validator's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from drivers.base import KeyStore
from drivers.ble import mobilekey as mk
from drivers.errors import LockAuthError
from drivers.lockproto.errors import DecodeError
from drivers.lockproto.keys import load_link_keys
from gateway.models import AccessMethod
from gateway.store.store import Store

log = logging.getLogger(__name__)

DeviceIds = Callable[[str], bytes | None]
"""lock id -> the 8-byte device id the gateway commissioned (``None``: no such record)."""


class ChallengeLedger(Protocol):
    def first_use(self, method_id: str, challenge: bytes) -> bool:
        """Record the pair; ``False`` when it passed before."""
        ...


def device_ids_from_keystores(keystore_for: Callable[[str], KeyStore]) -> DeviceIds:
    """Device ids from the link keys the serial and BLE drivers store per lock."""

    def device_id(lock_id: str) -> bytes | None:
        try:
            keys = load_link_keys(keystore_for(lock_id), lock_id)
        except LockAuthError:  # damaged keys: the lock's driver reports them
            return None
        return None if keys is None else keys.device_id

    return device_id


def proof_check_for(store: Store) -> MobileKeyProofCheck:
    """The check the daemon wires into its validator: device ids from the link keys, the
    challenges that passed from the store."""
    return MobileKeyProofCheck(
        device_ids_from_keystores(store.keystore), store.mobile_key_challenges
    )


class MobileKeyProofCheck:
    """The validator's ``proof_check`` for mobile keys."""

    def __init__(self, device_ids: DeviceIds, seen: ChallengeLedger) -> None:
        self._device_ids = device_ids
        self._seen = seen

    def __call__(self, method: AccessMethod, proof: bytes | None, lock_id: str) -> bool:
        if proof is None or method.secret is None:
            return False
        try:
            public_key = mk.parse_public_key_text(method.secret)
            parsed = mk.Proof.decode(proof)
        except (ValueError, DecodeError):
            return False
        expected = self._device_ids(lock_id)
        if expected is None:
            log.warning("%s: mobile-key proof from a lock with no commissioning record", lock_id)
            return False
        if parsed.device_id != expected:
            log.warning("%s: mobile-key proof made for another lock", lock_id)
            return False
        if not mk.verify(public_key, parsed):
            return False
        if not self._seen.first_use(method.method_id, parsed.challenge):
            log.warning("%s: mobile-key proof replayed (method %s)", lock_id, method.method_id)
            return False
        return True
