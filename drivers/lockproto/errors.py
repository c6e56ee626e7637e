"""Errors of the protocol parsers (below the driver error tree).

Parsers and the sealed channel raise these; the gateway's session maps them to
:mod:`drivers.errors` classes. Each carries a short machine-readable ``code`` that is also the
name of the refusal counter it increments.
"""

from __future__ import annotations


class LockProtoError(Exception):
    code = "proto_error"


class DecodeError(LockProtoError):
    """Bytes that do not parse (truncated, bad length, unknown type, trailing bytes)."""

    code = "malformed"


class IntegrityError(LockProtoError):
    """A MAC or AEAD tag did not verify: forged, corrupted or keyed for someone else."""

    code = "forged"


class ReplayError(LockProtoError):
    """A sealed datagram whose counter is not above the last one accepted."""

    code = "replayed"
