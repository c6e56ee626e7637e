"""docs/nuki.md's configuration runs through ``lockgate check-config``; bad Nuki options fail
with the path of the field; the driver is registered like the others."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from drivers.nuki.driver import NukiDriver
from drivers.registry import default_registry
from gateway.secrets import create_secret_file

HEAD = """
gateway_id = "site-1"
[cloud]
endpoint = "https://connect.example.com"
api_key = { credential = "seam-api-key" }
[store]
path = "/var/lib/lockgate/lockgate.db"
"""
DOC = Path(__file__).resolve().parents[2] / "docs" / "nuki.md"


def _docs_config() -> str:
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), flags=re.S)
    [block] = [b for b in blocks if 'type = "nuki"' in b]
    return block


def _check(tmp: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp / "lockgate.toml"
    path.write_text(HEAD.replace("/var/lib/lockgate", str(tmp)) + text)
    create_secret_file(tmp / "seam-api-key", b"seam_test")  # check-config reads the secrets
    lockgate = Path(sys.executable).with_name("lockgate")
    return subprocess.run(
        [lockgate, "check-config", "-c", str(path), "--credentials-dir", str(tmp)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_documented_configuration_checks(tmp_path: Path) -> None:
    done = _check(tmp_path, _docs_config())
    assert done.returncode == 0, done.stderr
    assert "front-door: nuki" in done.stdout


def test_a_nuki_lock_without_an_address_is_refused_with_its_path(tmp_path: Path) -> None:
    text = _docs_config().replace('address = "54:D2:72:AB:CD:EF"', "")
    done = _check(tmp_path, text)
    assert done.returncode == 2
    assert "locks.0.driver.nuki" in done.stderr
    assert "needs its address" in done.stderr


def test_registered_as_a_built_in_driver() -> None:
    assert default_registry().get("nuki") is NukiDriver


def test_the_documented_security_pin_option_checks(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), flags=re.S)
    [option] = [b for b in blocks if b.startswith("security_pin")]
    create_secret_file(tmp_path / "nuki-front-door-pin", b"123456")  # the credential it names
    done = _check(tmp_path, _docs_config() + option)
    assert done.returncode == 0, done.stderr
