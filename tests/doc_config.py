"""Run a driver's documented configuration through ``lockgate check-config``, as an installer
would: the ``[[locks]]`` example from the driver's page in docs/, under a minimal gateway head."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from gateway.secrets import create_secret_file

DOCS = Path(__file__).resolve().parents[1] / "docs"
HEAD = """
gateway_id = "site-1"
[cloud]
endpoint = "https://connect.example.com"
api_key = { credential = "seam-api-key" }
[store]
path = "/var/lib/lockgate/lockgate.db"
"""


def documented_config(page: str, driver_type: str) -> str:
    """The one TOML block of ``docs/<page>`` that configures a ``driver_type`` lock."""
    blocks: list[str] = re.findall(r"```toml\n(.*?)```", (DOCS / page).read_text(), flags=re.S)
    [block] = [b for b in blocks if f'type = "{driver_type}"' in b]
    return block


def check_config(tmp: Path, text: str) -> subprocess.CompletedProcess[str]:
    """``lockgate check-config`` on the head plus ``text``, with the API key check-config reads."""
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
