"""A file the config names is wrong: ``lockgate run`` (a real process) refuses to start with one
line naming the file and what to do, exit status 2 (the unit's ``RestartPreventExitStatus``:
systemd does not restart it), no traceback; ``lockgate check-config`` finds the same fault and
exits 2. The same files, intact, pass ``check-config`` and ``run`` starts with them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.secrets import SecretRef
from gateway.store.store import Store
from tests.deploy.test_unit_files import unit_settings
from tests.e2e.daemon_proc import DaemonProcess
from tests.e2e.site import write_secret
from tests.mqtt.harness import write_operator_keys

LOCKGATE = Path(sys.executable).with_name("lockgate")


@dataclass
class Files:
    config: Path
    db: Path
    key: Path
    api_key: Path
    operators: Path


@pytest.fixture
def files(tmp_path: Path) -> Files:
    """A gateway's files, all good: a store written with its key, secrets 0600, operators."""
    db, key = tmp_path / "state" / "lockgate.db", tmp_path / "state" / "store.key"
    Store.open(db, SecretRef(file=key)).close()
    api_key = write_secret(tmp_path / "api-key", "seam_test_key")
    operators = write_operator_keys(tmp_path).path
    config = tmp_path / "lockgate.toml"
    config.write_text(
        f"""
gateway_id = "faults"
control_socket = "{tmp_path / "control.sock"}"
[cloud]
endpoint = "http://127.0.0.1:9"
api_key = {{ file = "{api_key}" }}
[store]
path = "{db}"
key = {{ file = "{key}" }}
[time]
require_kernel_sync = false
[mqtt]
enabled = true
host = "127.0.0.1"
port = 9
operator_keys = "{operators}"
[[locks]]
id = "front"
space_ids = ["space-a"]
[locks.driver]
type = "sim"
"""
    )
    return Files(config, db, key, api_key, operators)


def corrupt_database(f: Files) -> Path:
    for suffix in ("-wal", "-shm"):
        Path(f"{f.db}{suffix}").unlink(missing_ok=True)
    f.db.write_bytes(b"not a database, a torn write " * 200)
    return f.db


def missing_store_key(f: Files) -> Path:
    f.key.unlink()
    return f.key


def wrong_store_key(f: Files) -> Path:
    f.key.unlink()
    write_secret(f.key, "0123456789abcdef0123456789abcdef")  # 32 bytes, another key
    return f.key


def short_store_key(f: Files) -> Path:
    f.key.write_bytes(b"too short")
    return f.key


def exposed_store_key(f: Files) -> Path:
    f.key.chmod(0o644)
    return f.key


def exposed_api_key(f: Files) -> Path:
    f.api_key.chmod(0o644)
    return f.api_key


def missing_api_key(f: Files) -> Path:
    f.api_key.unlink()
    return f.api_key


def damaged_page(f: Files) -> Path:
    for suffix in ("-wal", "-shm"):
        Path(f"{f.db}{suffix}").unlink(missing_ok=True)
    with f.db.open("r+b") as fh:  # a valid header, one b-tree page overwritten
        fh.seek(4096 * 3)
        fh.write(b"\xff" * 4096)
    return f.db


def unknown_role(f: Files) -> Path:
    f.operators.write_text(f.operators.read_text().replace('role = "viewer"', 'role = "janitor"'))
    return f.operators


FAULTS: dict[str, tuple[Callable[[Files], Path], str]] = {
    "corrupt database": (corrupt_database, "restore it from a backup"),
    "damaged database page": (damaged_page, "restore it from a backup"),
    "missing store key": (missing_store_key, "restore the key file"),
    "wrong store key": (wrong_store_key, "restore the right key file"),
    "short store key": (short_store_key, "restore the right key file"),
    "store key mode 0644": (exposed_store_key, "chmod 600"),
    "api key mode 0644": (exposed_api_key, "chmod 600"),
    "missing api key": (missing_api_key, "create it with mode 0600"),
    "unknown operator role": (unknown_role, "roles: viewer, operator, admin"),
}


def lockgate(*args: str) -> subprocess.CompletedProcess[str]:
    unset = ("NOTIFY_SOCKET", "CREDENTIALS_DIRECTORY")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [str(LOCKGATE), *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("fault", list(FAULTS))
def test_run_refuses_with_one_line_and_status_2(files: Files, fault: str) -> None:
    spoil, fix = FAULTS[fault]
    path = spoil(files)
    run = lockgate("run", "-c", str(files.config))
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    said = lines(run.stderr)
    assert len(said) == 1, run.stderr
    assert said[0].startswith(f"lockgate: {path}: "), said[0]
    assert fix in said[0]

    check = lockgate("check-config", "-c", str(files.config))
    assert check.returncode == 2, check.stdout + check.stderr
    assert said[0] in lines(check.stderr)
    assert "Traceback" not in check.stderr


def test_nothing_secret_is_printed(files: Files) -> None:
    wrong_store_key(files)
    exposed_api_key(files)
    check = lockgate("check-config", "-c", str(files.config))
    assert check.returncode == 2 and len(lines(check.stderr)) == 2  # every fault, one line each
    for secret in ("seam_test_key", "0123456789abcdef"):
        assert secret not in check.stdout + check.stderr


def test_a_first_start_needs_no_store_yet(files: Files) -> None:
    files.db.unlink()
    files.key.unlink()
    check = lockgate("check-config", "-c", str(files.config))
    assert check.returncode == 0, check.stderr
    assert not files.db.exists() and not files.key.exists()  # checking writes nothing


async def test_the_same_files_intact_pass_and_run_starts(files: Files) -> None:
    check = lockgate("check-config", "-c", str(files.config))
    assert check.returncode == 0, check.stderr
    assert "OK" in check.stdout
    async with DaemonProcess(files.config) as daemon:
        await daemon.wait_for_line(r"serving 1 locks")
        daemon.kill(signal.SIGTERM)
        assert await daemon.wait_exit() == 0


def test_the_unit_does_not_restart_status_2_and_the_docs_say_so() -> None:
    assert unit_settings()["RestartPreventExitStatus"] == ["2"]
    install = (Path(__file__).parents[2] / "docs" / "install.md").read_text()
    assert re.search(r"exits with status 2 and is not restarted", install)
