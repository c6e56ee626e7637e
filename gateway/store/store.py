"""The store, assembled: one database, one key, the repositories over them."""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Self

from gateway.secrets import SecretError, SecretRef, create_secret_file
from gateway.store.challenges import SeenChallenges
from gateway.store.cloud_data import CloudData
from gateway.store.crypto import KEY_BYTES, SecretBox, StoreKeyError
from gateway.store.db import Database
from gateway.store.decision_log import DecisionLog
from gateway.store.keystore import EncryptedKeyStore
from gateway.store.lock_map import LockMap
from gateway.store.lockouts import Lockouts
from gateway.store.meta import Meta
from gateway.store.outbox import Outbox
from gateway.store.sync_state import SyncStates


class Store:
    def __init__(self, path: Path, master_key: bytes) -> None:
        self.db = Database(path)
        self.box = SecretBox(master_key)
        self.meta = Meta(self.db)
        known = self.meta.get("key_check")
        if known is None:
            self.meta.set("key_check", self.box.check_value)
        elif known != self.box.check_value:
            self.db.close()
            raise StoreKeyError(
                f"the store key is not the one {path} was written with; "
                "restore the right key file (secrets cannot be read without it)"
            )
        self.cloud = CloudData(self.db, self.box, self.meta)
        self.sync_states = SyncStates(self.db)
        self.outbox = Outbox(self.db)
        self.lockouts = Lockouts(self.db)
        self.decisions = DecisionLog(self.db, self.outbox, self.lockouts)
        self.lock_map = LockMap(self.db)
        self.mobile_key_challenges = SeenChallenges(self.db)

    @classmethod
    def open(cls, path: Path, key: SecretRef) -> Store:
        """Open the store; on a first start (no database yet) create the key file (0600)."""
        try:
            master = key.read_bytes()
        except SecretError:
            if path.exists() or key.file is None or key.file.exists():
                raise
            master = os.urandom(KEY_BYTES)
            create_secret_file(key.file, master)
        return cls(path, master)

    def keystore(self, lock_id: str) -> EncryptedKeyStore:
        return EncryptedKeyStore(self.db, self.box, lock_id)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
