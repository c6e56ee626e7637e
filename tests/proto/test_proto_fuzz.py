"""Property tests: arbitrary and mutated frames into both parsers (lock side, gateway side).

Whatever arrives: no exception escapes, nothing hangs, nothing that is not the untouched
original executes or is accepted, every refused frame shows in a counter, and a valid frame
after the garbage still goes through.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.errors import DriverError
from drivers.lockproto import datagrams as dgm
from drivers.lockproto.framing import Deframer, Frame, encode_frame
from drivers.lockproto.messages import MsgType, Request, encode_request
from tests.proto.pairs import Pair, make_pair

INDEX = st.integers(0, 4096)
MUTATION = st.one_of(
    st.tuples(st.just("flip"), INDEX, st.integers(0, 7)),
    st.tuples(st.just("cut"), INDEX),
    st.tuples(st.just("insert"), INDEX, st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("set"), INDEX, st.integers(0, 255)),
)
INPUT = st.one_of(
    st.tuples(st.just("noise"), st.binary(max_size=300)),
    st.tuples(st.just("wire"), st.lists(MUTATION, min_size=1, max_size=4)),
    st.tuples(st.just("datagram"), st.lists(MUTATION, min_size=1, max_size=4)),
    st.tuples(st.just("replay"), st.none()),
)
SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def mutate(data: bytes, ops: list[tuple[Any, ...]]) -> bytes:
    out = bytearray(data)
    for op in ops:
        i = op[1] % (len(out) + 1)
        if op[0] == "flip" and i < len(out):
            out[i] ^= 1 << op[2]
        elif op[0] == "cut":
            del out[i:]
        elif op[0] == "insert":
            out[i:i] = op[2]
        elif op[0] == "set" and i < len(out):
            out[i] = op[2]
    return bytes(out)


def sealed_request(pair: Pair, req_id: int) -> bytes:
    channel = pair.session._channel
    assert channel is not None
    return dgm.encode(channel.seal(encode_request(Request(MsgType.POLL, req_id))))


def carries(frames: list[Frame], datagram: bytes) -> bool:
    return any(f.datagram == datagram for f in frames)


@SETTINGS
@given(inputs=st.lists(INPUT, max_size=6))
async def test_lock_side_refuses_and_counts_everything_bad(inputs: list[tuple[Any, ...]]) -> None:
    pair = await make_pair()
    await pair.client.lock()  # a current session on both sides
    engine, deframer = pair.engine, Deframer()
    delivered: list[bytes] = []
    req_id = 100

    async def feed(stream: bytes) -> tuple[list[Frame], int]:
        frames = deframer.feed(stream)
        for frame in frames:
            if frame.address == 1 and not frame.from_lock:
                await engine.handle(frame.datagram)
        return frames, len(frames)

    for kind, arg in inputs:
        req_id += 1
        executed = engine.stats.requests
        refused = deframer.stats.refused_total + engine.refusals.total
        if kind == "noise":
            await feed(arg + b"\x00")
            assert engine.stats.requests == executed
            continue
        if kind == "replay":
            if not delivered:
                continue
            await feed(encode_frame(Frame(1, False, delivered[-1])))
            assert engine.stats.requests == executed
            assert engine.refusals.counts.get("replayed", 0) >= 1
            continue
        original = sealed_request(pair, req_id)
        if kind == "wire":
            stream = mutate(encode_frame(Frame(1, False, original)), arg)
            frames, _ = await feed(stream + b"\x00")
            intact = carries(frames, original)
            if not stream.strip(b"\x00"):
                refused -= 1  # nothing but delimiters arrived: a lost frame, nothing to count
        else:
            mutated = mutate(original, arg)
            intact = mutated == original
            if mutated:
                await feed(encode_frame(Frame(1, False, mutated)))
            else:
                refused -= 1  # an empty datagram cannot even be framed: nothing to count
        if intact:
            assert engine.stats.requests == executed + 1
            delivered.append(original)
        else:
            assert engine.stats.requests == executed
            assert deframer.stats.refused_total + engine.refusals.total > refused
    # the link recovers by itself
    executed = engine.stats.requests
    await feed(b"\x55\xaa" + encode_frame(Frame(1, False, sealed_request(pair, 9999))))
    assert engine.stats.requests == executed + 1


@SETTINGS
@given(inputs=st.lists(INPUT, max_size=6))
async def test_gateway_side_refuses_and_counts_everything_bad(
    inputs: list[tuple[Any, ...]],
) -> None:
    pair = await make_pair()
    await pair.client.lock()
    session, deframer = pair.session, Deframer()
    accepted: list[bytes] = []
    req_id = 100

    def parse(stream: bytes, want: int) -> list[tuple[bytes, object]]:
        results: list[tuple[bytes, object]] = []
        for frame in deframer.feed(stream):
            if not frame.from_lock:
                continue
            try:
                results.append((frame.datagram, session.accept_reply(frame.datagram,
                                                                      MsgType.POLL, want)))
            except DriverError as err:  # a (forged) plain ERROR: a hint, never a reply
                results.append((frame.datagram, err))
        return results

    for kind, arg in inputs:
        req_id += 1
        refused = deframer.stats.refused_total + session.stats.refused_total
        stale = session.stats.stale_replies
        if kind == "noise":
            results = parse(arg + b"\x00", req_id)
            assert not any(isinstance(r, object) and hasattr(r, "req_id") for _, r in results)
            continue
        if kind == "replay":
            if accepted:
                results = parse(encode_frame(Frame(1, True, accepted[-1])), req_id)
                assert all(r is None for _, r in results)
                assert session.stats.refused_total > refused - deframer.stats.refused_total
            continue
        reply = await pair.engine.handle(sealed_request(pair, req_id))
        assert reply is not None
        if kind == "wire":
            stream = mutate(encode_frame(Frame(1, True, reply)), arg)
            results = parse(stream + b"\x00", req_id)
            if not stream.strip(b"\x00"):
                refused -= 1  # a lost frame: nothing arrived to count
        else:
            mutated = mutate(reply, arg)
            results = parse(encode_frame(Frame(1, True, mutated)), req_id) if mutated else []
            if not mutated:
                refused -= 1
        good = [r for dg, r in results if dg == reply]
        bad = [r for dg, r in results if dg != reply]
        assert all(r is None or isinstance(r, DriverError) for r in bad)
        if good:
            assert good[0] is not None
            accepted.append(reply)
        else:
            counted = deframer.stats.refused_total + session.stats.refused_total
            errors = sum(isinstance(r, DriverError) for r in bad)
            assert counted + errors + session.stats.stale_replies - stale > refused
    # the link recovers by itself
    req_id += 1
    reply = await pair.engine.handle(sealed_request(pair, req_id))
    assert reply is not None
    results = parse(b"\x13\x37" + encode_frame(Frame(1, True, reply)), req_id)
    assert results[-1][1] is not None and not isinstance(results[-1][1], DriverError)
