"""The simulated lock's flash: one change written at a time, and a power cut at any point
leaves exactly the changes completed before it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lockgate_sim.flash import MIN_JOURNAL, read_image
from lockgate_sim.lock import LockRebooted, SimLock, SimLockSpec, Slot

from drivers.base import CredentialKind
from tests.fullfs import fill, small_tmpfs

ROOT = Path(__file__).resolve().parents[2]


def now() -> datetime:
    return datetime.now(UTC)


def slot(i: int, version: int = 0) -> Slot:
    return Slot(
        f"cred-{i:05d}",
        CredentialKind.CODE,
        f"{100000 + i}".encode(),
        bytes((version,)) + i.to_bytes(7, "big"),
        None,
    )


def held(lock: SimLock) -> dict[str, bytes]:
    return {c.credential_id: c.tag for c in lock.list_credentials()}


async def test_changes_survive_a_reboot_and_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "front.flash"
    lock = SimLock("front", SimLockSpec(slots=500), now=now, state_file=path)
    assert lock.put([slot(i) for i in range(40)]) == {}
    assert lock.put([slot(3, version=1)]) == {}
    assert lock.delete([slot(7).credential_id]) == {}
    for _ in range(5):
        await lock.enter_code("0000")
    lock.ack(3)
    lock.link_keys["k"] = "a2V5"
    lock.save_link_keys()
    expected = held(lock)
    assert len(expected) == 39 and expected[slot(3).credential_id] == slot(3, version=1).tag

    lock.reboot()
    assert held(lock) == expected
    again = SimLock("front", SimLockSpec(slots=500), now=now, state_file=path)
    assert held(again) == expected
    assert [e.seq for e in again.log] == [4, 5, 6]  # 6: the reboot
    assert again.last_seq == 6 and again.link_keys == {"k": "a2V5"}
    assert again.put_counts[(slot(3).credential_id, slot(3, version=1).tag)] == 1

    image = read_image(path)
    assert image is not None
    assert {s["id"] for s in image["slots"]} == set(expected)
    assert image["acked_seq"] == 3 and [e["seq"] for e in image["log"]] == [4, 5, 6]
    # a duplicate secret is still refused after the reload (the index is rebuilt from flash)
    dup = Slot("other", CredentialKind.CODE, slot(1).secret, b"t", None)
    assert again.put([dup]) == {"other": "duplicate"}


def test_a_write_appends_one_line_and_the_journal_is_compacted(tmp_path: Path) -> None:
    path = tmp_path / "front.flash"
    lock = SimLock("front", SimLockSpec(slots=5000, max_batch=5000), now=now, state_file=path)
    lock.put([slot(i) for i in range(10)])
    size = path.stat().st_size
    lock.put([slot(10)])
    line = path.read_bytes()[size:]
    assert line.count(b"\n") == 1 and b"cred-00010" in line and b"cred-00009" not in line

    # rewriting the same few slots over and over: the file stays bounded by a snapshot
    for round_ in range(1, 4 * MIN_JOURNAL // 10):
        lock.put([slot(i, version=round_ % 2) for i in range(10)])
    lines = path.read_bytes().count(b"\n")
    assert lines <= MIN_JOURNAL + 1
    assert read_image(path) is not None
    assert held(SimLock("front", now=now, state_file=path)) == held(lock)


def test_a_torn_last_record_is_dropped_and_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "front.flash"
    lock = SimLock("front", now=now, state_file=path)
    lock.put([slot(i) for i in range(5)])
    before = held(lock)
    complete = path.read_bytes()
    lock.put([slot(5)])
    torn = path.read_bytes()[: len(complete) + 30]  # the power went mid-line
    path.write_bytes(torn)

    rebooted = SimLock("front", now=now, state_file=path)
    assert held(rebooted) == before
    assert path.read_bytes() == torn  # loading alone changes nothing
    rebooted.put([slot(6)])
    assert path.read_bytes().startswith(complete)
    assert held(SimLock("front", now=now, state_file=path)) == {
        **before,
        slot(6).credential_id: slot(6).tag,
    }


def test_a_file_holding_a_single_json_object_reads_as_a_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "front.flash"
    path.write_text(
        '{"slots": [{"id": "a", "kind": "code", "secret": "MTIzNDU2", "tag": "01",'
        ' "window": null}], "log": [], "next_seq": 9, "acked_seq": 8, "link_keys": {},'
        ' "put_counts": [["a", "01", 1]]}'
    )
    lock = SimLock("front", now=now, state_file=path)
    assert held(lock) == {"a": b"\x01"} and lock.last_seq == 8
    lock.put([slot(1)])
    assert held(SimLock("front", now=now, state_file=path)) == {
        "a": b"\x01",
        slot(1).credential_id: slot(1).tag,
    }


def test_in_memory_flash_keeps_the_batch_prefix_across_a_reboot() -> None:
    lock = SimLock("front", SimLockSpec(slots=600, max_batch=600), now=now)
    lock.put([slot(i) for i in range(2 * MIN_JOURNAL)])  # crosses a compaction
    lock.faults.reboot_after_puts = 7
    with pytest.raises(LockRebooted):
        lock.put([slot(i) for i in range(1000, 1050)])
    got = held(lock)
    assert len(got) == 2 * MIN_JOURNAL + 7
    assert all(slot(i).credential_id in got for i in range(1000, 1007))
    assert slot(1007).credential_id not in got


WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
import pytest
from lockgate_sim.lock import LockRebooted, SimLock, SimLockSpec, Slot
from drivers.base import CredentialKind
lock = SimLock("front", SimLockSpec(slots=100000, max_batch=1),
               now=lambda: datetime.now(UTC), state_file=Path(sys.argv[1]))
for i in range(100000):
    lock.put([Slot(f"cred-{i:05d}", CredentialKind.CODE, str(100000 + i).encode(), b"t", None)])
    print(i, flush=True)
"""


async def test_sigkill_while_writing_leaves_a_prefix_of_the_writes(tmp_path: Path) -> None:
    path = tmp_path / "front.flash"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'firmware-sim'}"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(path), env=env, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    last = -1
    async with asyncio.timeout(30):
        while last < MIN_JOURNAL + 50:  # past a compaction: the kill lands among appends
            last = int(await proc.stdout.readline())
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    lock = SimLock("front", SimLockSpec(slots=100000), now=now, state_file=path)
    got = sorted(held(lock))
    assert len(got) > last  # every acknowledged write is there...
    assert got == [f"cred-{i:05d}" for i in range(len(got))]  # ...and nothing out of order
    assert lock.put([slot(99999)]) == {}
    assert len(held(SimLock("front", now=now, state_file=path))) == len(got) + 1


def test_a_full_disk_refuses_the_write_and_loses_nothing_written_before(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "fs", "1m") as fs:
        path = fs / "front.flash"
        spec = SimLockSpec(slots=5000, max_batch=5000)
        lock = SimLock("front", spec, now=now, state_file=path)
        lock.put([slot(i) for i in range(20)])
        filler = fill(fs)
        failed = 0
        for i in range(20, 200):  # part of a line may land before ENOSPC
            try:
                lock.put([slot(i)])
            except OSError:
                failed += 1
        assert failed
        filler.unlink()
        lock.put([slot(999)])
        stored = held(SimLock("front", spec, now=now, state_file=path))
        assert all(slot(i).credential_id in stored for i in range(20))
        assert slot(999).credential_id in stored
        assert set(stored) <= set(held(lock))
