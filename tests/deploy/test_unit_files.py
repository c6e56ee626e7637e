"""The files a site installer gets: the unit, its users and D-Bus policy, the starter config,
the install and upgrade scripts. Checked with systemd's own tools where they exist."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from drivers.registry import default_registry
from gateway.config import load_config
from gateway.daemon import SHUTDOWN_GRACE_S
from tests.deploy.conftest import REPO

UNIT = REPO / "systemd" / "lockgate.service"
INSTALLED_BINARY = "/opt/lockgate/venv/bin/lockgate"
VENV_BINARY = Path(sys.executable).with_name("lockgate")
EXPOSURE_TARGET = 1.3

# What `systemd-analyze security` still counts against the unit, and why it has to stay.
ACCEPTED_EXPOSURE = {
    "PrivateNetwork=": "the cloud API and the MQTT broker are on the network",
    "RestrictAddressFamilies=~AF_(INET|INET6)": "same: TCP to the cloud and the broker",
    "RestrictAddressFamilies=~AF_UNIX": "BlueZ (system D-Bus), journald and sd_notify",
    "IPAddressDeny=": "the cloud endpoint's addresses are not fixed; a site may add a drop-in",
    "PrivateDevices=": "serial locks need /dev/ttyUSB*, ttyACM*, ttyAMA*, ttyS*",
    "DeviceAllow=": "... so a device ACL of exactly those tty classes instead",
    "SupplementaryGroups=": "dialout, the group of those tty devices",
    "RootDirectory=/RootImage=": "runs from the host's /usr python, read-only",
}

# scripts/bootstrap.sh installs systemd and shellcheck when missing: their absence is a failure.
analyze = shutil.which("systemd-analyze") or "systemd-analyze"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def unit_settings(path: Path = UNIT) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", "[")) and "=" in line:
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def seconds(span: str) -> float:
    number, unit = re.fullmatch(r"(\d+)\s*(s|min)", span).groups()  # type: ignore[union-attr]
    return float(number) * (60 if unit == "min" else 1)


# --- the unit --------------------------------------------------------------------------------


def test_unit_verifies_clean(tmp_path: Path) -> None:
    # As written, the unit names the installed binary; on a machine without an installation
    # that is the one complaint, and nothing else may be reported.
    as_written = run(str(analyze), "verify", str(UNIT))
    complaints = [
        line
        for line in (as_written.stdout + as_written.stderr).splitlines()
        if line.strip() and not (INSTALLED_BINARY in line and "is not executable" in line)
    ]
    assert complaints == [], as_written.stderr
    # The same unit with ExecStart on this checkout's venv (as install.sh links it): silent.
    assert VENV_BINARY.exists()
    copy = tmp_path / "lockgate.service"
    copy.write_text(UNIT.read_text().replace(INSTALLED_BINARY, str(VENV_BINARY)))
    result = run(str(analyze), "verify", str(copy))
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_unit_security_exposure(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(str(analyze), "security", "--offline=true", "--no-pager", str(UNIT))
    out = result.stdout + result.stderr
    found = re.search(r"Overall exposure level for lockgate\.service: (\d+\.\d+)", out)
    assert found, out
    exposure = float(found.group(1))
    with capsys.disabled():
        print(f"\nsystemd-analyze security lockgate.service: exposure {exposure} (target ≤ 2.0)")
    exposed = {
        line.split()[1] for line in out.splitlines() if line.startswith("✗") and len(line) > 2
    }
    assert exposed == set(ACCEPTED_EXPOSURE), out
    assert exposure <= EXPOSURE_TARGET, out


def test_unit_matches_what_the_gateway_does() -> None:
    unit = unit_settings()
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert unit["ExecStart"] == [f"{INSTALLED_BINARY} run --config /etc/lockgate/lockgate.toml"]
    # A stop waits SHUTDOWN_GRACE_S for lock operations; systemd must wait longer than that.
    assert seconds(unit["TimeoutStopSec"][0]) >= SHUTDOWN_GRACE_S + 10
    assert seconds(unit["WatchdogSec"][0]) >= 10
    assert unit["RestartPreventExitStatus"] == ["2"]  # `lockgate run` exits 2 on a bad config
    assert unit["User"] == ["lockgate"]
    assert unit["StateDirectory"] == ["lockgate"]
    # Nothing that BLE through BlueZ or a serial adapter would need is missing, nothing more.
    assert unit["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    assert sorted(unit["DeviceAllow"]) == [
        "char-ttyACM rw",
        "char-ttyAMA rw",
        "char-ttyS rw",
        "char-ttyUSB rw",
    ]


def test_credentials_in_the_unit_are_the_ones_the_starter_config_reads(tmp_path: Path) -> None:
    loaded = {c.split(":", 1)[0] for c in unit_settings()["LoadCredential"]}
    config = render_starter_config(tmp_path)
    cfg = load_config(config, default_registry())
    assert cfg.cloud.api_key.credential in loaded
    assert cfg.store.key.credential in loaded
    assert cfg.store.path.parent == Path("/var/lib/lockgate")  # the unit's StateDirectory
    assert cfg.locks == ()


# --- the other installed files ---------------------------------------------------------------


def render_starter_config(tmp_path: Path) -> Path:
    text = (REPO / "systemd" / "lockgate.toml.in").read_text()
    assert "@GATEWAY_ID@" in text
    out = tmp_path / "lockgate.toml"
    out.write_text(text.replace("@GATEWAY_ID@", "pi-lobby"))
    return out


def test_dbus_policy_opens_bluez_only() -> None:
    root = ET.parse(REPO / "systemd" / "lockgate-dbus.conf").getroot()
    policies = root.findall("policy")
    assert [p.attrib for p in policies] == [{"user": "lockgate"}]
    assert [r.attrib for r in policies[0]] == [{"send_destination": "org.bluez"}]


def test_sysusers_makes_the_user_with_serial_access(tmp_path: Path) -> None:
    conf = REPO / "systemd" / "lockgate.sysusers"
    (tmp_path / "etc").mkdir()
    result = run("systemd-sysusers", f"--root={tmp_path}", str(conf))
    assert result.returncode == 0, result.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text()
    assert re.search(
        r"^lockgate:x:\d+:\d+:[^:]*:/var/lib/lockgate:/usr/sbin/nologin$", passwd, re.M
    )
    group = (tmp_path / "etc" / "group").read_text()
    assert re.search(r"^dialout:x:\d+:lockgate$", group, re.M)


@pytest.mark.parametrize("script", ["install.sh", "upgrade.sh"])
def test_scripts_parse_and_pass_shellcheck(script: str) -> None:
    path = REPO / "scripts" / script
    assert path.stat().st_mode & 0o111, f"{script} is not executable"
    result = run("bash", "-n", str(path))
    assert result.returncode == 0, result.stderr
    assert shutil.which("shellcheck"), "shellcheck missing: run scripts/bootstrap.sh"
    result = run("shellcheck", str(path))
    assert result.returncode == 0, result.stdout


def test_install_script_installs_the_files_that_exist() -> None:
    text = (REPO / "scripts" / "install.sh").read_text()
    for name in re.findall(r"\$REPO/((?:systemd|docs)/[\w.-]+)", text):
        assert (REPO / name).is_file(), name
