"""pyNukiBT (PyPI ``pynukibt`` 0.0.20, written by others for Home Assistant) against the
simulated lock, over the real bleak API and the virtual radio.

pyNukiBT calls ``bleak_retry_connector.establish_connection`` without a ``backend=`` and has
no parameter to pass one; the test hands it the same function with the simulated radio's
backend bound (pytest's ``monkeypatch``, undone after the test). Everything else is
pyNukiBT unmodified. It has no keypad commands beyond Add Keypad Code: listing runs through its
own message layer (``_send_encrypted_command``), with the replies it leaves unregistered
registered from its own ``KeypadCodeEntry`` struct (:class:`KeypadLockConst`).
"""

from __future__ import annotations

import functools
import os
from datetime import timedelta

import pyNukiBT
import pytest
from bleak import BleakScanner
from bleak_retry_connector import establish_connection
from construct import Bytes, Int16ul, Struct
from lockgate_sim.nuki.gatt import NukiBleLock

from drivers.nuki import crypto
from drivers.nuki.messages import LockState
from gateway.clock import FakeClock
from tests.ble.conftest import Adapter
from tests.nuki.conftest import SECURITY_PIN

WAIT = 5.0


async def _paired_client(
    phone: Adapter, nuki: NukiBleLock, monkeypatch: pytest.MonkeyPatch
) -> pyNukiBT.NukiDevice:
    monkeypatch.setattr(
        pyNukiBT.nuki,
        "establish_connection",
        functools.partial(establish_connection, backend=phone.backends.client),
    )
    device = await BleakScanner.find_device_by_address(
        nuki.address, timeout=WAIT, backend=phone.backends.scanner
    )
    assert device is not None
    private = os.urandom(32)
    client = pyNukiBT.NukiDevice(
        nuki.address,
        None,
        None,
        crypto.public_key(private),
        private,
        0x1234,
        "HA",
        ble_device=device,
    )
    client.command_response_timeout = WAIT
    client.response_retry = 1
    await client.connect()  # pair() needs a connection (it picks the device type there)
    result = await client.pair()
    assert result["auth_id"] == (2).to_bytes(4, "little")
    return client


async def test_pynukibt_pairs_and_reads_the_state(
    phone: Adapter, nuki: NukiBleLock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await _paired_client(phone, nuki, monkeypatch)
    try:
        assert nuki.model.auths[2].name == "HA"
        await client.update_state()
        assert client.keyturner_state["lock_state"] == LockState.LOCKED.name
        assert client.battery_percentage == nuki.model.battery_percent
        assert client.keyturner_state["door_sensor_state"] == "DOOR_CLOSED"
        assert client.config["name"] == "Front"
        await client.unlock()
        assert nuki.model.lock_state == LockState.UNLOCKED
    finally:
        await client.disconnect()


class KeypadLockConst(type(pyNukiBT.NukiLockConst)):  # type: ignore[misc]
    """pyNukiBT's lock constants with the keypad replies it leaves commented out, built from
    its own structs (``KeypadCodeEntry``) and the spec's fields."""

    @functools.cached_property
    def message_types(self) -> dict[object, object]:
        types = dict(super().message_types)
        cmd = self.NukiCommand
        types[cmd.KEYPAD_CODE_ID] = Struct("code_id" / Int16ul, "date_created" / self.NukiDateTime)
        types[cmd.REQUEST_KEYPAD_CODES] = Struct(
            "offset" / Int16ul,
            "count" / Int16ul,
            "nonce" / Bytes(32),
            "security_pin" / self.NukiSecurityPinDataType,
        )
        types[cmd.KEYPAD_CODE_COUNT] = Struct("count" / Int16ul)
        types[cmd.KEYPAD_CODE] = self.KeypadCodeEntry
        return types


async def test_pynukibt_adds_and_lists_a_keypad_code(
    phone: Adapter, nuki: NukiBleLock, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    client = await _paired_client(phone, nuki, monkeypatch)
    client._const = KeypadLockConst()
    cmd = client._const.NukiCommand
    now = clock.now().replace(microsecond=0, tzinfo=None)
    try:
        challenge = await client._send_encrypted_command(
            cmd.REQUEST_DATA, {"command": cmd.CHALLENGE}, expected_response=cmd.CHALLENGE
        )
        await client._send_encrypted_command(
            cmd.ADD_KEYPAD_CODE,
            {
                "code": 482913,
                "name": "Guest",
                "time_limited": 1,
                "allowed_from_date": now - timedelta(hours=1),
                "allowed_until_date": now + timedelta(hours=1),
                "allowed_weekdays": dict.fromkeys(_DAYS, 0),
                "allowed_from_time": {"hour": 0, "minute": 0},
                "allowed_until_time": {"hour": 0, "minute": 0},
                "nonce": challenge.nonce,
                "security_pin": SECURITY_PIN,
            },
            aggregate_messages=[cmd.KEYPAD_CODE_ID],
            expected_response=cmd.STATUS,
        )
        [code_id] = client._messages
        assert [(e.code_id, e.code) for e in nuki.model.codes.values()] == [
            (code_id.code_id, 482913)
        ]

        challenge = await client._send_encrypted_command(
            cmd.REQUEST_DATA, {"command": cmd.CHALLENGE}, expected_response=cmd.CHALLENGE
        )
        await client._send_encrypted_command(
            cmd.REQUEST_KEYPAD_CODES,
            {"offset": 0, "count": 10, "nonce": challenge.nonce, "security_pin": SECURITY_PIN},
            aggregate_messages=[cmd.KEYPAD_CODE_COUNT, cmd.KEYPAD_CODE],
            expected_response=cmd.STATUS,
        )
        count, entry = client._messages
        assert count.count == 1
        assert (entry.code_id, entry.code, entry.name) == (code_id.code_id, 482913, "Guest")
        assert entry.time_limited == 1
        assert entry.allowed_from_date == now - timedelta(hours=1)
        assert entry.allowed_until_date == now + timedelta(hours=1)
        # the lock enforces the window it was given
        assert nuki.type_code("482913")
        clock.advance(hours=2)
        assert not nuki.type_code("482913")
    finally:
        await client.disconnect()


_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
