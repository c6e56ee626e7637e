"""Retained state documents: published on real change, and once per heartbeat otherwise."""

from __future__ import annotations

from gateway.mqtt.state import RetainedState


class Broker:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def __call__(self, topic: str, body: bytes, retain: bool) -> None:
        assert retain
        self.sent.append((topic, body))


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def doc(bolt: str, synced: str) -> dict[str, object]:
    return {"bolt": bolt, "cloud": {"reachable": True, "last_sync_at": synced}}


async def test_a_moving_timestamp_alone_waits_for_the_heartbeat() -> None:
    clock, broker = Clock(), Broker()
    state = RetainedState(heartbeat=300, monotonic=clock)
    assert await state.publish(broker, {"t": doc("locked", "10:00:00")}) == 1
    clock.t += 30
    assert await state.publish(broker, {"t": doc("locked", "10:00:30")}) == 0  # a poll
    clock.t += 30
    assert await state.publish(broker, {"t": doc("unlocked", "10:01:00")}) == 1  # real change
    assert b'"unlocked"' in broker.sent[-1][1] and b"10:01:00" in broker.sent[-1][1]
    clock.t += 299
    assert await state.publish(broker, {"t": doc("unlocked", "10:05:59")}) == 0
    clock.t += 1
    assert await state.publish(broker, {"t": doc("unlocked", "10:06:00")}) == 1  # heartbeat
    assert b"10:06:00" in broker.sent[-1][1]


async def test_a_new_connection_gets_everything_again() -> None:
    clock, broker = Clock(), Broker()
    state = RetainedState(monotonic=clock)
    docs = {"a": doc("locked", "x"), "b": doc("locked", "x")}
    assert await state.publish(broker, docs) == 2
    assert await state.publish(broker, docs) == 0
    state.reset()
    assert await state.publish(broker, docs) == 2


async def test_clear_forgets_the_topic() -> None:
    clock, broker = Clock(), Broker()
    state = RetainedState(monotonic=clock)
    await state.publish(broker, {"a": doc("locked", "x")})
    await state.clear(broker, "a")
    assert broker.sent[-1] == ("a", b"")
    assert await state.publish(broker, {"a": doc("locked", "x")}) == 1


async def test_the_gateway_clock_reading_alone_waits_for_the_heartbeat() -> None:
    # clock.now and clock.wall move on every rebuild: without this, the gateway's state was
    # signed and sent again on every rebuild (each lock's pass asks for one).
    clock, broker = Clock(), Broker()
    state = RetainedState(heartbeat=300, monotonic=clock)

    def gw(now: str, trusted: bool = True) -> dict[str, object]:
        return {"clock": {"trusted": trusted, "now": now, "wall": now}}

    assert await state.publish(broker, {"s": gw("10:00:00")}) == 1
    clock.t += 10
    assert await state.publish(broker, {"s": gw("10:00:10")}) == 0
    clock.t += 10
    assert await state.publish(broker, {"s": gw("10:00:20", trusted=False)}) == 1
