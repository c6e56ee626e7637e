"""The command line a person reads: plain help, one -c/--config convention, --version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LOCKGATE = str(Path(sys.executable).with_name("lockgate"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LOCKGATE, *args], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("lockgate ")


def test_top_level_help_is_plain_words_and_lists_commands() -> None:
    out = run("--help").stdout
    assert "``" not in out and ":class:" not in out and ":func:" not in out
    for command in ("run", "check-config", "ctl", "cloud", "doctor"):
        assert f"\n    {command}" in out


@pytest.mark.parametrize("command", [["run"], ["check-config"], ["cloud", "ls"], ["doctor"]])
def test_every_command_reading_the_config_takes_dash_c(command: list[str]) -> None:
    out = run(*command, "--help").stdout
    assert "-c FILE, --config FILE" in out
    assert "``" not in out


def test_check_config_still_takes_the_file_as_an_argument(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    by_flag, by_arg = run("check-config", "-c", str(missing)), run("check-config", str(missing))
    assert by_flag.returncode == by_arg.returncode == 2
    assert str(missing) in by_flag.stderr and str(missing) in by_arg.stderr
