"""docs/osdp.md: its commands run, its config example loads, its numbers are the code's."""

from __future__ import annotations

import re
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from drivers.osdp.options import BAUD_RATES, OsdpOptions, parse_scbk
from drivers.registry import default_registry
from gateway.config import parse_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "osdp.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), re.S)


def test_the_key_making_commands_make_a_private_key_the_driver_reads(tmp_path: Path) -> None:
    script = next(b for b in blocks("sh") if "token_hex" in b)
    script = script.replace("/etc/lockgate", str(tmp_path / "etc"))
    subprocess.run(["sh", "-euc", script], check=True)
    key_file = tmp_path / "etc" / "osdp" / "front-door.scbk"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert len(parse_scbk(key_file.read_text())) == 16


def test_the_config_example_is_valid(tmp_path: Path) -> None:
    (example,) = blocks("toml")
    data = tomllib.loads(example)
    lock = data["locks"][0]
    config = parse_config(
        {
            "gateway_id": "docs",
            "cloud": {"api_key": {"file": str(tmp_path / "k")}},
            "locks": [lock],
        },
        default_registry(),
        "docs/osdp.md",
    )
    opts = config.locks[0].driver
    assert isinstance(opts, OsdpOptions)
    assert (opts.address, opts.baud, opts.strike_seconds) == (1, 9600, 5)
    assert opts.keypad.inter_key_timeout == 5


def test_baud_rates_and_revive_defaults_match_the_doc() -> None:
    text = DOC.read_text()
    for baud in BAUD_RATES:
        assert str(baud) in text
    fields = OsdpOptions.model_fields
    assert f"`revive_min` {fields['revive_min'].default:g} s" in text
    assert f"`revive_max` {fields['revive_max'].default:g} s" in text


@pytest.mark.parametrize("text", ["00" * 15, "zz" * 16, "00" * 17])
def test_a_bad_key_file_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(ValueError, match="SCBK") as err:
        parse_scbk(text)
    assert text not in str(err.value)
