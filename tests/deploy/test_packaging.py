"""What a gateway installs: the `lockgate` wheel holds the gateway and its drivers, and no
simulator (those are the separate `lockgate-sim` distribution in firmware-sim/)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_gateway_wheel_holds_no_simulator(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--disable-pip-version-check",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("lockgate-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_text = zf.read(entry_points).decode()
    tops = {n.split("/", 1)[0] for n in names}
    assert {"gateway", "drivers", "lockgate"} <= tops
    assert "lockgate/drivers.py" in names and "lockgate/testing/conformance.py" in names
    assert not tops & {"lockgate_sim", "fakecloud", "tests", "firmware-sim"}, tops
    assert "lockgate_sim" not in entry_text and "lockgate-sim" not in entry_text
    assert "lockgate = gateway.cli:main" in entry_text
