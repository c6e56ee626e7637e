"""docs/nuki.md's configuration runs through ``lockgate check-config``; bad Nuki options fail
with the path of the field; the driver is registered like the others."""

from __future__ import annotations

import re
from pathlib import Path

from drivers.nuki.driver import NukiDriver
from drivers.registry import default_registry
from gateway.secrets import create_secret_file
from tests.doc_config import DOCS, check_config, documented_config


def _docs_config() -> str:
    return documented_config("nuki.md", "nuki")


_check = check_config


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
    blocks = re.findall(r"```toml\n(.*?)```", (DOCS / "nuki.md").read_text(), flags=re.S)
    [option] = [b for b in blocks if b.startswith("security_pin")]
    create_secret_file(tmp_path / "nuki-front-door-pin", b"123456")  # the credential it names
    done = _check(tmp_path, _docs_config() + option)
    assert done.returncode == 0, done.stderr
