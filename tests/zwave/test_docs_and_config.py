"""docs/zwave.md's configuration runs through ``lockgate check-config``; bad Z-Wave options fail
with the path of the field; the driver is registered like the others."""

from __future__ import annotations

from pathlib import Path

from drivers.registry import default_registry
from drivers.zwave.driver import ZWaveDriver
from tests.doc_config import check_config, documented_config


def _docs_config() -> str:
    return documented_config("zwave.md", "zwave")


_check = check_config


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
