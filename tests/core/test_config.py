"""Typed configuration: a good file loads, a bad one fails with the path of the bad field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lockgate_sim.driver import SimDriver, SimOptions

from drivers.registry import DriverRegistry, default_registry
from gateway.config import ConfigError, load_config
from gateway.secrets import create_secret_file

GOOD = """
gateway_id = "site-1"
[cloud]
endpoint = "https://connect.example.com"
api_key = { credential = "seam-api-key" }
[store]
path = "/var/lib/lockgate/lockgate.db"
[[locks]]
id = "front-door"
space_ids = ["s-1"]
[locks.driver]
type = "sim"
slots = 50
"""


def write(tmp: Path, text: str) -> Path:
    path = tmp / "lockgate.toml"
    path.write_text(text)
    return path


def test_a_good_file_loads_typed_and_frozen(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), DriverRegistry([SimDriver]))
    lock = cfg.locks[0]
    assert isinstance(lock.driver, SimOptions) and lock.driver.slots == 50
    assert cfg.cloud.api_key.credential == "seam-api-key"
    with pytest.raises(ValueError, match="frozen"):
        lock.id = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "where", "what"),
    [
        (("slots = 50", 'slots = "many"'), "locks.0.driver.sim.slots", "valid integer"),
        (('type = "sim"', 'type = "zigbee"'), "locks.0.driver", "does not match any"),
        (('id = "front-door"', 'id = "front door!"'), "locks.0.id", "pattern"),
        (("[store]", "[store]\nsurprise = 1"), "store.surprise", "Extra inputs"),
        (
            ('api_key = { credential = "seam-api-key" }', 'api_key = "seam_live_abc"'),
            "cloud.api_key",
            "",
        ),
        (
            ("[store]", "[reconcile]\nretry_min_s = 10\nretry_max_s = 5\n[store]"),
            "reconcile",
            "retry_min_s above retry_max_s",
        ),
    ],
)
def test_a_bad_field_is_named(
    tmp_path: Path, change: tuple[str, str], where: str, what: str
) -> None:
    text = GOOD.replace(*change)
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), DriverRegistry([SimDriver]))
    locs = [loc for loc, _ in info.value.problems]
    assert where in locs, info.value.problems
    assert what in str(info.value)


def test_a_password_in_the_endpoint_is_refused_and_not_echoed(tmp_path: Path) -> None:
    text = GOOD.replace("https://connect.example.com", "https://op:hunter2-pw@connect.example.com")
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), DriverRegistry([SimDriver]))
    assert "cloud.endpoint" in [loc for loc, _ in info.value.problems]
    assert "user name or password" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_duplicate_lock_ids_and_syntax_errors(tmp_path: Path) -> None:
    twice = GOOD + GOOD[GOOD.index("[[locks]]") :]
    with pytest.raises(ConfigError, match="appears twice"):
        load_config(write(tmp_path, twice), DriverRegistry([SimDriver]))
    with pytest.raises(ConfigError, match="syntax"):
        load_config(write(tmp_path, "gateway_id = "), DriverRegistry([SimDriver]))


def test_drivers_from_entry_points_are_typed_too() -> None:
    registry = default_registry()
    assert "sim" in registry.types()  # the simulator joins through the entry point


def test_check_config_command(tmp_path: Path) -> None:
    lockgate = Path(sys.executable).with_name("lockgate")
    create_secret_file(tmp_path / "seam-api-key", b"seam_test")  # the credential GOOD names
    good = GOOD.replace("/var/lib/lockgate", str(tmp_path))
    ok = subprocess.run(
        [lockgate, "check-config", "-c", write(tmp_path, good), "--credentials-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "front-door: sim" in ok.stdout
    bad = subprocess.run(
        [lockgate, "check-config", "-c", write(tmp_path, GOOD.replace("slots = 50", "slots = -"))],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "(syntax)" in bad.stderr
