"""Commissioning, gateway side (docs/protocol.md §5): bind this gateway to one lock.

Four datagrams: PAIR_START (our nonce and static key) → PAIR_CHALLENGE (the lock's) →
PAIR_PROOF (we prove we know the pairing secret first) → PAIR_DONE (the lock proves it, and
has stored our static key and the long-term key). Both proofs are MACs over the transcript
under a key derived from the pairing secret *and* the static-static X25519 secret, so a
man in the middle needs the printed secret, and an eavesdropper who later learns it still
lacks the long-term key.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Generic, TypeVar

from drivers.errors import LockAuthError, ProtocolError
from drivers.lockproto import datagrams as dgm
from drivers.lockproto.carrier import Carrier, exchange
from drivers.lockproto.client import LinkTiming, link_status_error
from drivers.lockproto.crypto import (
    VERSION_MAX,
    VERSION_MIN,
    Rng,
    dh,
    pairing_keys,
    pairing_transcript,
    parse_pairing_secret,
    private_key,
    public_bytes,
    same,
)
from drivers.lockproto.errors import DecodeError, LockProtoError
from drivers.lockproto.keys import LinkKeys
from drivers.lockproto.status import Status

D = TypeVar("D", dgm.PairChallenge, dgm.PairDone)


class _Expect(Generic[D]):
    """Accepts the datagram commissioning waits for. A plain ERROR (forgeable by anyone on the
    link) or a PAIR_DONE whose proof does not verify is only a hint: the wait goes on until
    the attempt's deadline, and the hint becomes the error only if nothing better came."""

    def __init__(
        self, kind: type[D], lock_id: str, verify: Callable[[D], bool] | None = None
    ) -> None:
        self.kind: type[D] = kind
        self.lock_id = lock_id
        self.verify: Callable[[D], bool] | None = verify
        self._hint: Exception | None = None

    def accept(self, data: bytes) -> D | None:
        try:
            dg = dgm.decode(data)
        except DecodeError:
            return None
        if isinstance(dg, dgm.ErrorDg):
            if dg.status is not Status.NO_SESSION:  # NO_SESSION: a late answer from before
                self._hint = link_status_error(dg.status, self.lock_id)
            return None
        if not isinstance(dg, self.kind):
            return None
        if self.verify is not None and not self.verify(dg):
            self._hint = LockAuthError(
                "lock's pairing proof does not verify (someone in the middle?)",
                lock_id=self.lock_id,
            )
            return None
        return dg

    def take_hint(self) -> Exception | None:
        hint, self._hint = self._hint, None
        return hint


def read_pairing_secret(text: str, *, lock_id: str) -> bytes:
    """The pairing secret printed on the lock, as the operator typed it; an unreadable one
    raises :class:`~drivers.errors.LockAuthError`."""
    try:
        return parse_pairing_secret(text)
    except ValueError as err:
        raise LockAuthError(f"unusable pairing secret: {err}", lock_id=lock_id) from err


async def commission(
    carrier: Carrier,
    pairing_secret: bytes,
    *,
    lock_id: str,
    rng: Rng = os.urandom,
    timing: LinkTiming | None = None,
) -> LinkKeys:
    """Run commissioning; returns the keys to keep. Raises LockAuthError when refused."""
    timing = timing or LinkTiming()
    static = rng(32)
    start = dgm.PairStart(VERSION_MIN, VERSION_MAX, rng(16), public_bytes(private_key(static)))

    async with carrier.exclusive():
        carrier.discard_pending()
        start_bytes = dgm.encode(start)
        timeout = carrier.wire_time(128) * 2 + timing.handshake_reply + timing.margin
        expect_challenge = _Expect(dgm.PairChallenge, lock_id)
        challenge = await exchange(
            carrier, lambda: start_bytes, expect_challenge.accept,
            per_attempt=timeout, attempts=timing.attempts, lock_id=lock_id,
            hint=expect_challenge.take_hint,
        )
        if challenge.version not in range(VERSION_MIN, VERSION_MAX + 1):
            raise ProtocolError(f"lock chose version {challenge.version}", lock_id=lock_id)
        th = pairing_transcript(
            (start.version_min, start.version_max),
            challenge.version, start.nonce, start.static, challenge.device_id,
            challenge.nonce, challenge.static,
        )
        try:
            ss = dh(static, challenge.static)
        except LockProtoError as err:
            raise LockAuthError("lock sent a weak static key", lock_id=lock_id) from err
        keys = pairing_keys(pairing_secret, ss, th)
        proof_bytes = dgm.encode(dgm.PairProof(keys.gateway_proof(th)))
        lock_proof = keys.lock_proof(th)
        expect_done = _Expect(dgm.PairDone, lock_id, lambda d: same(d.proof, lock_proof))
        await exchange(
            carrier, lambda: proof_bytes, expect_done.accept,
            per_attempt=timeout, attempts=timing.attempts, lock_id=lock_id,
            hint=expect_done.take_hint,
        )
    return LinkKeys(static, challenge.static, keys.long_term_key, challenge.device_id)
