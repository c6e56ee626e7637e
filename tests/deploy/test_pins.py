"""Everything the tests install is pinned: each Python package in this venv is in
constraints.txt at the version installed (scripts/bootstrap.sh installs with ``-c``), and the
npm rigs are pinned by their lockfiles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pins() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            out[name.lower().replace("_", "-")] = version
    return out


def test_every_installed_package_is_pinned() -> None:
    frozen = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "freeze",
            "--exclude-editable",
            "--disable-pip-version-check",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    pinned = pins()
    loose = []
    for line in frozen.splitlines():
        name, sep, version = line.partition("==")
        if not sep or name.startswith("lockgate"):
            continue
        if pinned.get(name.lower().replace("_", "-")) != version:
            loose.append(line)
    assert loose == [], f"add these to constraints.txt (or install with -c): {loose}"


def test_bootstrap_installs_with_the_constraints() -> None:
    text = (REPO / "scripts" / "bootstrap.sh").read_text()
    assert "-c constraints.txt" in text


def test_npm_rigs_are_pinned_by_lockfiles() -> None:
    for folder in ("reference/seam-openapi", "firmware-sim/zwave"):
        lock = json.loads((REPO / folder / "package-lock.json").read_text())
        packages = lock["packages"]
        assert all(
            "integrity" in meta and "version" in meta
            for path, meta in packages.items()
            if path and not meta.get("link")
        ), folder
        assert "npm ci" in (REPO / "scripts" / "bootstrap.sh").read_text()
