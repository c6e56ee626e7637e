"""``python -m fakecloud`` runs standalone, prints its URL and never its key."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


async def _start(*args: str) -> tuple[asyncio.subprocess.Process, str, list[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fakecloud",
        "--port",
        "0",
        *args,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(20):
        while True:
            line = (await process.stdout.readline()).decode()
            assert line, f"fakecloud exited early: {await process.stderr.read()!r}"  # type: ignore[union-attr]
            lines.append(line)
            if "listening on" in line:
                return process, line.rsplit(" ", 1)[-1].strip(), lines


async def _stop(process: asyncio.subprocess.Process) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    async with asyncio.timeout(10):
        out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


async def test_standalone_with_control_plane(tmp_path: Path) -> None:
    key_file, token_file = tmp_path / "api_key", tmp_path / "control_token"
    process, url, lines = await _start(
        "--api-key-file", str(key_file), "--control-token-file", str(token_file)
    )
    try:
        key = key_file.read_text().strip()
        token = token_file.read_text().strip()
        assert key.startswith("seam_")
        assert oct(key_file.stat().st_mode & 0o777) == "0o600"
        async with httpx.AsyncClient(base_url=url) as client:
            spaces = await client.get("/spaces/list", headers={"Authorization": f"Bearer {key}"})
            outage = await client.post(
                "/_control/outage",
                json={"mode": "refuse"},
                headers={"Authorization": f"Bearer {token}"},
            )
            refused = await client.get("/spaces/list", headers={"Authorization": f"Bearer {key}"})
    finally:
        code, rest = await _stop(process)
    assert [s["name"] for s in spaces.json()["spaces"]] == ["Main Building", "Workshop Annex"]
    assert (outage.status_code, refused.status_code) == (200, 503)
    printed = "".join(lines) + rest
    assert key not in printed
    assert token not in printed
    assert code == 0


async def test_standalone_reuses_a_key_file_and_can_run_without_control(tmp_path: Path) -> None:
    key_file = tmp_path / "api_key"
    key_file.write_text("seam_given_key_1234\n")
    process, url, lines = await _start("--api-key-file", str(key_file))
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            ok = await client.get(
                "/devices/list", headers={"Authorization": "Bearer seam_given_key_1234"}
            )
            control = await client.post("/_control/outage", json={"mode": "refuse"})
    finally:
        code, rest = await _stop(process)
    assert ok.status_code == 200
    assert control.status_code == 401
    assert "seam_given_key_1234" not in "".join(lines) + rest
    assert code == 0
