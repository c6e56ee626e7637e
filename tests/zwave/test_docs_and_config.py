"""docs/zwave.md's configuration runs through ``lockgate check-config``; bad Z-Wave options fail
with the path of the field; the driver is registered like the others."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from drivers.registry import default_registry
from drivers.zwave.driver import ZWaveDriver
from gateway.secrets import create_secret_file

HEAD = """
gateway_id = "site-1"
[cloud]
endpoint = "https://connect.example.com"
api_key = { credential = "seam-api-key" }
[store]
path = "/var/lib/lockgate/lockgate.db"
"""
DOC = Path(__file__).resolve().parents[2] / "docs" / "zwave.md"


def _docs_config() -> str:
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), flags=re.S)
    [block] = [b for b in blocks if 'type = "zwave"' in b]
    return block


def _check(tmp: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp / "lockgate.toml"
    path.write_text(HEAD.replace("/var/lib/lockgate", str(tmp)) + text)
    create_secret_file(tmp / "seam-api-key", b"seam_test")
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
    assert "front-door: zwave" in done.stdout


def test_a_bad_node_id_is_refused_with_its_path(tmp_path: Path) -> None:
    done = _check(tmp_path, _docs_config().replace("node_id = 5", "node_id = 1"))
    assert done.returncode == 2
    assert "locks.0.driver.zwave.node_id" in done.stderr


def test_registered_as_a_built_in_driver() -> None:
    assert default_registry().get("zwave") is ZWaveDriver
