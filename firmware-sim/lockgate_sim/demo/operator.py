"""The demo's operator: a key made for this run, enrolled with the gateway, and the ``ctl.toml``
that pins the gateway's identity, so a newcomer can paste one ``lockgate ctl`` line that unlocks
a door of the running demo (and ``ctl`` checks that the answer is the gateway's).

What an installer does by hand (docs/install.md): ``lockgate ctl keygen`` on the operator's
machine, the printed ``[[operator]]`` entry into the gateway's operator keys, ``lockgate
identity`` on the gateway into the operator's ``ctl.toml``. The private key stays in the demo's
state directory (mode 600) and goes with it.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.secrets import create_secret_file
from gateway.mqtt.auth import private_key_pem, public_key_b64
from lockgate_sim.broker import Mosquitto

OPERATOR = "demo-operator"


@dataclass(frozen=True, slots=True)
class DemoOperator:
    keys_file: Path
    """The gateway's ``[mqtt] operator_keys``: the public half, role ``operator``."""
    ctl_config: Path
    """The operator's ``ctl.toml``: broker, key, and the gateway's identity pinned."""

    def ctl_command(self, *words: str) -> list[str]:
        return [_lockgate(), "ctl", "--config", str(self.ctl_config), *words]

    def ctl_line(self, *words: str) -> str:
        return shlex.join(self.ctl_command(*words))


def _lockgate() -> str:
    """``lockgate`` as this shell finds it, else the one beside this Python (the demo's venv)."""
    beside = Path(sys.executable).parent / "lockgate"
    found = shutil.which("lockgate")
    if found is not None and Path(found).resolve() == beside.resolve():
        return "lockgate"
    return str(beside) if beside.exists() else "lockgate"


def operator_keys(directory: Path) -> tuple[Path, Path]:
    """Make the operator's key and the gateway's operator keys file; returns both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private = directory / f"{OPERATOR}.pem"
    create_secret_file(private, private_key_pem(key))
    keys_file = directory / "operators.toml"
    keys_file.write_text(
        "[[operator]]\n"
        f'name = "{OPERATOR}"\n'
        f'public_key = "{public_key_b64(key.public_key())}"\n'
        'role = "operator"\n',
        encoding="utf-8",
    )
    return private, keys_file


def enrol(
    directory: Path,
    private: Path,
    keys_file: Path,
    gateway_id: str,
    identity: str,
    broker: Mosquitto,
) -> DemoOperator:
    """Write the operator's ``ctl.toml`` with the gateway's identity pinned."""
    ctl = directory / "ctl.toml"
    ctl.write_text(
        f'gateway_id = "{gateway_id}"\n'
        f'host = "{broker.host}"\n'
        f"port = {broker.port}\n"
        f'operator = "{OPERATOR}"\n'
        f'private_key = "{private}"\n'
        f'gateway_key = "{identity}"\n'
        f'known_gateways = "{directory / "known_gateways.toml"}"\n'
        "timeout_s = 10\n",
        encoding="utf-8",
    )
    return DemoOperator(keys_file, ctl)
