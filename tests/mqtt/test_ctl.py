"""``lockgate ctl`` as an operator runs it: a separate process, a key file, a settings file."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from drivers.base import BoltState
from gateway.ctl import CtlError, parse_args_list
from gateway.mqtt.auth import load_operator_keys, private_key_pem, public_key_b64
from tests.mqtt.harness import Site

REPO = Path(__file__).resolve().parents[2]


async def lockgate(*args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    """Run ``lockgate`` with a ``$HOME`` of its own: nothing read from or written to the real
    one (``lockgate ctl`` keeps the gateway identities it trusted on first use there)."""
    with tempfile.TemporaryDirectory(prefix="lockgate-home-") as home:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            *args,
            cwd=REPO,
            env={**os.environ, "HOME": home},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(20):
            out, err = await proc.communicate(stdin)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def private(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


@pytest.fixture
def ctl_config(tmp_path: Path, site: Site) -> Path:
    key = private(tmp_path / "olga.pem", private_key_pem(site.operators.keys["olga"]))
    path = tmp_path / "ctl.toml"
    path.write_text(
        f'gateway_id = "{site.topics.gateway_id}"\n'
        f'host = "{site.broker.host}"\nport = {site.broker.port}\n'
        f'operator = "olga"\nprivate_key = "{key}"\ntimeout_s = 5.0\n'
        f'known_gateways = "{tmp_path / "known_gateways.toml"}"\n'
    )
    return path


async def test_ctl_signs_and_sends(site: Site, ctl_config: Path, tmp_path: Path) -> None:
    code, out, err = await lockgate("ctl", "--config", str(ctl_config), "status")
    assert code == 0, err
    assert json.loads(out)["data"]["gateway_id"] == "gw-test"

    code, out, err = await lockgate(
        "ctl", "--config", str(ctl_config), "unlock", "lock_id=front", "hold_seconds:=30"
    )
    assert code == 0, err
    assert json.loads(out)["data"]["bolt"] == "unlocked"
    assert site.bolt() is BoltState.UNLOCKED

    code, out, err = await lockgate(
        "ctl", "--config", str(ctl_config), "--unsigned", "lock", "lock_id=front"
    )
    assert code == 1 and json.loads(out)["error"]["code"] == "unauthorised"
    assert "lockgate ctl keygen" in err and "--private-key" in err  # what to do next
    assert site.bolt() is BoltState.UNLOCKED


async def test_ctl_takes_secrets_from_files_or_stdin_never_argv(
    site: Site, ctl_config: Path, tmp_path: Path
) -> None:
    code, _, err = await lockgate(
        "ctl", "--config", str(ctl_config), "test_credential", "lock_id=front", "secret=1234"
    )
    assert code == 2 and "never taken from the command line" in err
    pin_file = private(tmp_path / "pin", b"5678\n")
    code, out, err = await lockgate(
        "ctl",
        "--config",
        str(ctl_config),
        "--secret-file",
        str(pin_file),
        "test_credential",
        "lock_id=front",
    )
    assert code == 0, err
    assert json.loads(out)["data"]["reason"] == "unknown_credential"
    assert "5678" not in out
    code, out, err = await lockgate(
        "ctl", "--config", str(ctl_config), "test_credential", "lock_id=front", stdin=b"5678\n"
    )
    assert code == 0, err
    assert "5678" not in out


async def test_ctl_v311_mode_and_no_answer(site: Site, ctl_config: Path) -> None:
    code, out, err = await lockgate("ctl", "--config", str(ctl_config), "--v311", "locks")
    assert code == 0, err
    assert [lock["lock_id"] for lock in json.loads(out)["data"]] == ["front"]
    code, _, err = await lockgate(
        "ctl", "--config", str(ctl_config), "--gateway", "nobody", "--timeout", "0.3", "status"
    )
    assert code == 3 and "no answer" in err


async def test_keygen_writes_a_private_key_and_prints_the_entry(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "carl.pem"
    code, out, err = await lockgate("ctl", "keygen", str(key), "--name", "carl", "--role", "admin")
    assert code == 0, err
    assert key.stat().st_mode & 0o777 == 0o600
    snippet = "\n".join(line for line in out.splitlines() if not line.startswith("#"))
    (tmp_path / "ops.toml").write_text(snippet)
    ops = load_operator_keys(tmp_path / "ops.toml")
    assert ops["carl"].role.name == "ADMIN"
    before = key.read_bytes()
    code, again, err = await lockgate("ctl", "keygen", str(key), "--name", "carl")
    assert code == 0, err
    assert key.read_bytes() == before  # never overwrites a key ...
    assert "exists" in again  # ... and prints the entry of the key it has again
    public = [line for line in out.splitlines() if line.startswith("public_key")]
    assert public and public[0] in again.splitlines()


async def test_ctl_lists_its_commands() -> None:
    code, out, _ = await lockgate("ctl", "commands")
    assert code == 0
    for line in ("unlock            operator", "status            -", "commission        admin"):
        assert line in out
    _, help_text, _ = await lockgate("ctl", "--help")
    assert "unlock            operator" in help_text and "``" not in help_text


def test_args_syntax() -> None:
    assert parse_args_list(["lock_id=007", "hold_seconds:=5", "full:=true", "x=a=b"]) == {
        "lock_id": "007",
        "hold_seconds": 5,
        "full": True,
        "x": "a=b",
    }
    with pytest.raises(CtlError):
        parse_args_list(["n:=nope"])
    with pytest.raises(CtlError):
        parse_args_list(["novalue"])


async def test_ctl_verifies_answers_against_the_pinned_gateway_key(
    site: Site, ctl_config: Path
) -> None:
    right = site.plane.identity.public_b64
    code, out, err = await lockgate(
        "ctl", "--config", str(ctl_config), "--gateway-key", right, "status"
    )
    assert code == 0, err
    assert "trusted on first use" not in err
    wrong = public_key_b64(Ed25519PrivateKey.generate().public_key())
    code, out, err = await lockgate(
        "ctl", "--config", str(ctl_config), "--gateway-key", wrong, "--timeout", "1", "status"
    )
    assert code == 4 and out == "", (code, out, err)
    assert "identity changed" in err
