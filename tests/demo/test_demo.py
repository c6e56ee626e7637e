"""The demo site end to end: ``lockgate-sim demo`` as a person (or CI) runs it, in a subprocess.

The walk-through's plain output is the evidence: each step says what it did and what happened
(``✓``) or what went wrong (``✗``). The demo must also end cleanly: exit status 0, the broker
process gone, the temporary state removed, on its own (``--duration``) and on SIGINT/SIGTERM,
even in the middle of starting up.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import signal
import sys
from pathlib import Path

import pytest
from lockgate_sim.cli import available_tools, build_parser, main
from lockgate_sim.demo.scenario import JANE_PIN, LI_CARD, OMAR_CARD, OMAR_PIN, mask, staff_pin

ROOT = Path(__file__).resolve().parents[2]
SECRETS = [JANE_PIN, OMAR_PIN, OMAR_CARD, LI_CARD, staff_pin(0)]


def command() -> list[str]:
    script = Path(sys.executable).parent / "lockgate-sim"
    if script.exists():
        return [str(script), "demo"]
    return [sys.executable, "-m", "lockgate_sim.cli", "demo"]


def env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), str(ROOT / "firmware-sim")])
    return dict(os.environ, PYTHONPATH=path, NO_COLOR="1")


async def start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *command(),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env(),
    )


async def read_until(proc: asyncio.subprocess.Process, marker: str, lines: list[str]) -> None:
    assert proc.stdout is not None
    while True:
        raw = await proc.stdout.readline()
        if not raw:
            raise AssertionError(f"the demo ended before {marker!r}:\n" + "".join(lines))
        lines.append(raw.decode())
        if marker in lines[-1]:
            return


def in_order(text: str, *needles: str) -> None:
    at = 0
    for needle in needles:
        found = text.find(needle, at)
        assert found >= 0, f"{needle!r} missing (after position {at}) in:\n{text}"
        at = found + len(needle)


def broker_gone(text: str) -> None:
    pid = re.search(r"mosquitto \(pid (\d+)\)", text)
    assert pid is not None, text
    assert not Path(f"/proc/{pid.group(1)}").exists(), "mosquitto outlived the demo"


def cleaned_up(text: str) -> None:
    """The broker process is gone and the temporary state directory removed."""
    broker_gone(text)
    removed = re.search(r"state removed \((\S+)\)", text)
    assert removed is not None, text
    assert not Path(removed.group(1)).exists()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_walk_through_runs_every_step_and_ends_cleanly() -> None:
    proc = await start("--duration", "0", "--no-live")
    async with asyncio.timeout(100):
        out_b, err_b = await proc.communicate()
    out, err = out_b.decode(), err_b.decode()
    assert proc.returncode == 0, out + err
    assert "✗" not in out, out
    pin = mask(JANE_PIN)
    in_order(
        out,
        "gateway demo started: 4 locks: front (sim), side (serial), gate (BLE), office (serial)",
        "✓ every lock holds what its grants say",
        f"creating a grant for Jane Doe, PIN {pin}, for Building A",
        "✓ gateway synced with the cloud",
        "✓ gate holds the PIN already, with its window",
        "✓ front, side: scheduled for",
        "Jane types her PIN at the front door",
        "✓ denied: outside_window (decided by the gateway)",
        "she tries it at the car-park gate",
        "✓ denied: outside_window (decided by the lock)",
        "Omar opens the car-park gate (gate, BLE) with his phone",
        "✓ allowed: valid (decided by the lock)",
        f"✓ PIN {pin} is on front (sim), side (serial), gate (BLE)",
        "Jane types her PIN at the front door (front, sim)",
        "✓ allowed: valid (decided by the lock)",
        "Jane types her PIN at the side door (side, serial)",
        "✓ allowed: valid (decided by the lock)",
        "Jane tries the office (office, serial), in Building B",
        "✓ denied: not_for_this_entrance (decided by the gateway)",
        "someone types 000000 at the side door",
        "✓ denied: unknown_credential (decided by the gateway)",
        "Omar holds his card to the reader of the side door",
        "✓ allowed: valid (decided by the lock)",
        "Li's grant for Building B is deleted in the cloud",
        "✓ Li's card left the office",
        "✓ denied: revoked (decided by the gateway)",
        "waiting for Jane's grant to end",
        f"✓ PIN {pin} left front, side, gate",
        "✓ denied: outside_window (decided by the gateway) — her grant has ended",
        "access events over MQTT",
        "received over MQTT",
        "every step went as expected",
        "gateway closed",
        "MQTT: the gateway's retained availability says offline",
        "serial bus closed (pty gone)",
        "broker stopped",
        "state removed",
    )
    # the access events as they happened, each with its reason
    in_order(
        out,
        f"event  front (sim)  denied  Jane Doe · PIN {pin}  outside_window",
        f"event  front (sim)  allowed  Jane Doe · PIN {pin}  valid",
        "event  side (serial)  denied  someone · an unknown PIN  unknown_credential",
    )
    assert f"event  office (serial)  denied  Jane Doe · PIN {pin}  not_for_this_entrance" in out
    assert "event  office (serial)  denied  Li Wei · card ••••55  revoked" in out
    recorded = re.search(r"(\d+) access events recorded by the gateway, (\d+) received", out)
    assert recorded is not None and int(recorded.group(1)) >= 9
    assert recorded.group(1) == recorded.group(2)
    for secret in SECRETS:
        assert secret not in out and secret not in err, f"a secret was shown: {secret}"
    cleaned_up(out)
    assert re.search(r"walk-through done in \d+ s: every step went as expected", out)


async def test_ctrl_c_while_running_closes_everything() -> None:
    proc = await start("--no-live")  # no --duration: it would stay up until stopped
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            await read_until(proc, "▶ 1.", lines)
    finally:
        proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(30):
        rest, err = await proc.communicate()
    out = "".join(lines) + rest.decode()
    assert proc.returncode == 0, out + err.decode()
    in_order(
        out,
        "gateway closed",
        "serial bus closed (pty gone)",
        "fake cloud stopped",
        "BLE radio off",
        "broker stopped",
        "stopped on SIGINT: everything is closed",
        "state removed",
    )
    assert "Traceback" not in err.decode()
    cleaned_up(out)


async def test_sigterm_during_start_up_keeps_the_state_when_asked(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = await start("--no-live", "--keep-state", str(state))
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            await read_until(proc, "fake cloud on", lines)
    finally:
        proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30):
        rest, err = await proc.communicate()
    out = "".join(lines) + rest.decode()
    assert proc.returncode == 0, out + err.decode()
    in_order(out, "fake cloud stopped", "broker stopped", "stopped on SIGTERM", "state kept")
    broker_gone(out)
    assert "demo.log" in os.listdir(state)


async def exited(pid: int) -> None:
    """Return when process ``pid`` (not ours to wait for) has exited: its pidfd turns readable."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    gone: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not gone.done():
            gone.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await gone
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def test_a_killed_demo_takes_its_broker_with_it() -> None:
    """SIGKILL runs none of the demo's cleanup: the kernel ends the broker (parent-death
    signal), so no Mosquitto is left holding a port."""
    proc = await start("--no-live")
    lines: list[str] = []
    try:
        async with asyncio.timeout(30):
            await read_until(proc, "broker: mosquitto (pid ", lines)
        broker = int(re.findall(r"mosquitto \(pid (\d+)\)", lines[-1])[0])
        assert alive(broker)
    finally:
        proc.kill()
        async with asyncio.timeout(30):
            await proc.communicate()
        state = re.search(r"state and log in (\S+) ", "".join(lines))
        if state is not None:  # nobody removed it: the demo was killed
            shutil.rmtree(state.group(1), ignore_errors=True)
    assert proc.returncode == -signal.SIGKILL
    async with asyncio.timeout(10):
        await exited(broker)
    assert not alive(broker)


def alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by its new parent, is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_keep_state_refuses_a_directory_in_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "something").write_text("x")
    assert main(["demo", "--no-live", "--duration", "0", "--keep-state", str(tmp_path)]) == 2
    assert "give an empty or new directory" in capsys.readouterr().err


def test_the_simulators_command_lines_are_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    tools = available_tools()
    assert "serial-bus" in tools
    help_text = build_parser(tools).format_help()
    assert "demo" in help_text and "python -m lockgate_sim.serial_bus" in help_text
    with pytest.raises(SystemExit) as exit_:
        main(["serial-bus", "--help"])  # passed on to the simulator's own parser
    assert exit_.value.code == 0
    assert "--state-dir" in capsys.readouterr().out


def test_secrets_are_masked() -> None:
    assert mask("482913") == "••••13"
    assert JANE_PIN not in mask(JANE_PIN)


@pytest.mark.slow
@pytest.mark.timeout(150)
async def test_the_printed_ctl_line_unlocks_a_door_of_the_running_demo() -> None:
    """The walk-through ends with a ``lockgate ctl`` line; pasted as printed, while the demo
    stays up, it unlocks the front door with the demo operator's signature and an answer that
    ``ctl`` verified against the pinned gateway identity."""
    proc = await start("--no-live")  # stays up after the walk-through until Ctrl-C
    lines: list[str] = []
    try:
        async with asyncio.timeout(110):
            await read_until(proc, "try it: unlock the front door", lines)
            await read_until(proc, " ctl ", lines)
        said = shlex.split(lines[-1])
        words = said[next(i for i, w in enumerate(said) if Path(w).name == "lockgate") :]
        assert words[1:3] == ["ctl", "--config"] and words[-2:] == ["unlock", "lock_id=front"]
        ctl = await asyncio.create_subprocess_exec(
            *words, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env()
        )
        async with asyncio.timeout(30):
            out_b, err_b = await ctl.communicate()
        answer = out_b.decode() + err_b.decode()
        assert ctl.returncode == 0, answer
        assert '"unlocked"' in answer and "front" in answer, answer
    finally:
        proc.send_signal(signal.SIGINT)
    async with asyncio.timeout(30):
        rest, _ = await proc.communicate()
    assert proc.returncode == 0
    assert "✗" not in "".join(lines), "".join(lines)
    cleaned_up("".join(lines) + rest.decode())


def test_events_show_in_the_order_they_happened_not_the_order_they_were_heard_of() -> None:
    """A BLE lock's own decision reaches the gateway at its next journal read, after a
    decision the gateway made later: the view lists them by ``occurred_at``."""
    from datetime import UTC, datetime, timedelta

    from lockgate_sim.demo.snapshot import EventRow, Label, in_time_order

    t0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
    who = Label("Jane Doe", "PIN ••••13")
    gateway_later = EventRow(1, t0 + timedelta(seconds=2), "front", "access_allowed", who, "", "")
    lock_earlier = EventRow(2, t0, "gate", "access_denied", who, "outside_window", "lock")
    undated = EventRow(3, None, "side", "access_denied", who, "", "")
    same_time = EventRow(4, t0, "side", "access_denied", who, "", "")
    assert [e.seq for e in in_time_order([gateway_later, lock_earlier, undated, same_time])] == [
        2,
        4,
        1,
        3,
    ]
