"""Everything ``lockgate run`` needs from the files its config names, checked before it starts.

``lockgate run`` refuses to start on any of these faults, and ``lockgate check-config`` finds
the same ones, each as one line naming the file and what to do (exit status 2, which the
systemd unit does not restart: a file has to be fixed first):

* every secret the config names (the cloud API key, the store key, the MQTT password and
  client key, a driver's own such as an OSDP reader's key): present, readable, not empty, and
  not readable by group or others (mode 0600);
* the store key: 32 bytes, and the key the database was written with; absent only on a first
  start (no database yet), when ``run`` makes it;
* the database: a SQLite file that passes ``PRAGMA quick_check`` and a schema this Lockgate
  knows (opened read-only: nothing is written);
* the MQTT files: the operators file parses and names known roles, the CA and client
  certificate exist.

Nothing here logs or prints a secret: faults name files, never their contents.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from gateway.config import GatewayConfig
from gateway.secrets import SecretError, SecretRef
from gateway.store.crypto import KEY_BYTES, SecretBox
from gateway.store.schema import MIGRATIONS


@dataclass(frozen=True, slots=True)
class Fault:
    source: str
    """The file (or credential) at fault."""
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.source}: {self.problem}; {self.fix}"


def preflight(cfg: GatewayConfig) -> list[Fault]:
    """Every fault ``run`` would refuse to start on (an empty list: it would start)."""
    faults = list(_secrets(cfg))
    faults += _store(cfg)
    faults += _mqtt_files(cfg)
    return faults


def _where(ref: SecretRef) -> str:
    try:
        return str(ref.path())
    except SecretError:
        return f"credential {ref.credential}"


def _read(ref: SecretRef, what: str) -> tuple[bytes | None, Fault | None]:
    where = _where(ref)
    try:
        value = ref.read_bytes()
    except SecretError as err:
        if err.code == "exposed":
            return None, Fault(where, f"the {what} is readable by group or others", "chmod 600 it")
        if err.code == "no_credentials":
            return None, Fault(
                where,
                f"the {what} is a systemd credential but $CREDENTIALS_DIRECTORY is not set",
                "run under the systemd unit (LoadCredential=); 'lockgate check-config "
                "--credentials-dir DIR' checks the credentials in DIR",
            )
        cause = err.__cause__
        why = cause.strerror if isinstance(cause, OSError) and cause.strerror else "unreadable"
        return None, Fault(
            where,
            f"cannot read the {what} ({why})",
            "create it with mode 0600, or fix its path in the config",
        )
    except OSError as err:
        return None, Fault(where, f"cannot read the {what} ({err.strerror})", "fix its owner")
    if not value.strip():
        return None, Fault(where, f"the {what} is empty", "write the secret into it")
    return value, None


_NAMES = {
    "cloud.api_key": "cloud API key",
    "mqtt.password": "MQTT password",
    "mqtt.client_key": "MQTT client key",
}


def _refs(value: object, where: str) -> Iterator[tuple[str, SecretRef]]:
    """Every secret a config names, with its field path (drivers' options included)."""
    if isinstance(value, SecretRef):
        yield where, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _refs(getattr(value, name), f"{where}.{name}" if where else name)
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from _refs(item, f"{where}.{i}")


def _secrets(cfg: GatewayConfig) -> Iterator[Fault]:
    for where, ref in _refs(cfg, ""):
        if where == "store.key" or (where.startswith("mqtt.") and not cfg.mqtt.enabled):
            continue  # the store key is checked with the store
        _, fault = _read(ref, _NAMES.get(where, f"secret {where}"))
        if fault is not None:
            yield fault


def _store(cfg: GatewayConfig) -> list[Fault]:
    db = cfg.store.path
    ref = cfg.store.key
    first_start = not db.exists()
    if first_start and ref.file is not None and not ref.file.exists():
        return []  # a first start makes both
    key, fault = _read(ref, "store key")
    if fault is not None:
        if first_start or not fault.problem.startswith("cannot read"):
            return [fault]
        return [
            Fault(
                fault.source,
                f"{fault.problem}, which the store {db} was written with",
                "restore the key file from your copy (a new key cannot read the PIN codes "
                "in that store)",
            )
        ]
    assert key is not None
    if len(key) != KEY_BYTES:
        return [
            Fault(
                _where(ref),
                f"not a store key ({len(key)} bytes, must be {KEY_BYTES})",
                "restore the right key file",
            )
        ]
    if first_start:
        return []
    return _database(db, SecretBox(key).check_value, _where(ref))


def _database(db: Path, check_value: str, key_source: str) -> list[Fault]:
    restore = (
        "restore it from a backup (scripts/upgrade.sh keeps one), or move it away to start "
        "with an empty store (the cloud data syncs again; events not yet delivered are lost)"
    )
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error as err:
        return [Fault(str(db), f"cannot open the database ({err})", "fix its owner or mode")]
    try:
        try:
            ok = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as err:
            return [Fault(str(db), f"the database is corrupt ({err})", restore)]
        if ok != "ok":
            first = " ".join(str(ok).replace("*** in database main ***", "").split())
            return [Fault(str(db), f"the database is corrupt ({first[:120]})", restore)]
        if version > len(MIGRATIONS):
            return [
                Fault(
                    str(db),
                    f"schema version {version} is newer than this Lockgate knows "
                    f"({len(MIGRATIONS)})",
                    "upgrade Lockgate, or restore the backup made before the upgrade",
                )
            ]
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'key_check'").fetchone()
        except sqlite3.DatabaseError:
            row = None  # an empty or not yet migrated store: nothing to check the key against
        if row is not None and row[0] != check_value:
            return [
                Fault(
                    key_source,
                    f"not the key the store {db} was written with",
                    "restore the right key file (secrets cannot be read without it)",
                )
            ]
        return []
    finally:
        conn.close()


def _mqtt_files(cfg: GatewayConfig) -> list[Fault]:
    mqtt = cfg.mqtt
    if not mqtt.enabled:
        return []
    faults: list[Fault] = []
    if mqtt.operator_keys is not None:
        from gateway.mqtt.auth import OperatorKeysError, load_operator_keys

        try:
            load_operator_keys(mqtt.operator_keys)
        except OperatorKeysError as err:
            problem = str(err).removeprefix(f"{mqtt.operator_keys}: ")
            faults.append(
                Fault(
                    str(mqtt.operator_keys),
                    f"invalid operators file ({problem})",
                    "fix it (roles: viewer, operator, admin; see docs/mqtt.md)",
                )
            )
    certs = ((mqtt.ca_file, "CA certificate"), (mqtt.client_cert, "client certificate"))
    for path, what in certs:
        if path is not None and not path.is_file():
            faults.append(Fault(str(path), f"the MQTT {what} is missing", "fix its path"))
    return faults
