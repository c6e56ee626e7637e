"""Conformance checks a driver author runs against their driver (and its lock or simulator).

Each check is an ``async`` function taking a started driver; it raises
:class:`ConformanceError` saying what broke the contract. :func:`check_driver` runs them all;
:class:`DriverConformance` turns them into pytest tests for a class that provides a ``driver``
fixture (with pytest-asyncio). The checks put and delete a few credentials of their own
(ids ``conformance-N``) and leave the lock as they found it.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from drivers.base import (
    BatchResult,
    Capabilities,
    CredentialKind,
    DriverOptions,
    EventPage,
    LockDriver,
    LockStatus,
    StoredCredential,
)
from drivers.errors import CredentialRejectedError, DriverError, UnsupportedError
from lockgate.testing.context import code_credential

T = TypeVar("T")


class ConformanceError(AssertionError):
    """The driver broke the contract; the message says where."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConformanceError(message)


async def _call(what: str, call: Callable[[], Awaitable[T]]) -> T:
    """Await a driver call; anything it raises must be a DriverError."""
    try:
        return await call()
    except DriverError:
        raise
    except Exception as err:
        raise ConformanceError(
            f"{what} raised {type(err).__name__}, not a DriverError (drivers.errors)"
        ) from err


# --- the class ---------------------------------------------------------------------------------
def check_driver_class(cls: type[LockDriver]) -> None:
    """``type_name`` and ``options_model`` are declared and agree with each other."""
    name = getattr(cls, "type_name", None)
    _require(isinstance(name, str) and bool(name), f"{cls.__name__}.type_name is not set")
    model = getattr(cls, "options_model", None)
    _require(
        isinstance(model, type) and issubclass(model, DriverOptions),
        f"{cls.__name__}.options_model is not a DriverOptions subclass",
    )
    assert model is not None
    field = model.model_fields.get("type")
    literal = typing.get_args(field.annotation) if field is not None else ()
    _require(
        literal == (name,),
        f"{model.__name__}.type must be Literal[{name!r}] (the config's discriminator)",
    )


# --- the lock ----------------------------------------------------------------------------------
async def check_link(driver: LockDriver) -> None:
    """``connect`` and ``disconnect`` are idempotent; ``connected`` follows them."""
    await _call("connect", driver.connect)
    await _call("connect (again)", driver.connect)
    _require(driver.connected, "connected is False right after connect()")
    await _call("disconnect", driver.disconnect)
    await _call("disconnect (again)", driver.disconnect)
    await _call("connect (after disconnect)", driver.connect)
    _require(driver.connected, "connected is False after connecting again")


async def check_capabilities(driver: LockDriver) -> Capabilities:
    """The lock declares capabilities the gateway can plan with."""
    caps = await _call("capabilities", driver.capabilities)
    _require(isinstance(caps, Capabilities), "capabilities() must return a Capabilities")
    _require(caps.max_batch >= 1, "max_batch must be at least 1")
    _require(caps.slots >= (1 if caps.has_slots else 0), "slots must be at least 1")
    _require(bool(caps.kinds), "kinds must name at least one CredentialKind")
    _require(all(isinstance(k, CredentialKind) for k in caps.kinds), "kinds holds a non-kind")
    if CredentialKind.CODE in caps.kinds:
        _require(
            1 <= caps.code_min_length <= caps.code_max_length,
            "code_min_length must be 1..code_max_length",
        )
        _require(len(set(caps.code_alphabet)) >= 2, "code_alphabet needs two symbols or more")
    return caps


async def _listing(driver: LockDriver) -> dict[str, StoredCredential]:
    held = await _call("list_credentials", driver.list_credentials)
    _require(isinstance(held, list), "list_credentials() must return a list")
    for c in held:
        _require(isinstance(c, StoredCredential), "list_credentials() holds a non-StoredCredential")
        _require(not hasattr(c, "secret"), "a listed credential must not carry its secret")
    return {c.credential_id: c for c in held}


def _batch(result: object, what: str) -> BatchResult:
    _require(isinstance(result, BatchResult), f"{what} must return a BatchResult")
    assert isinstance(result, BatchResult)
    for cid, err in result.failures.items():
        _require(isinstance(err, DriverError), f"{what}: failure of {cid} is not a DriverError")
    return result


async def _check_stores_nothing(driver: LockDriver, caps: Capabilities) -> None:
    """A lock that holds no credentials (``stores_credentials`` False, a reader): it lists
    none, and a put is refused per credential with ``UnsupportedError``, leaving none."""
    _require(not await _listing(driver), "a lock that stores no credentials listed some")
    c = code_credential(caps, 0, credential_id="conformance-reader")
    result = _batch(await _call("put (reader)", lambda: driver.put_credentials([c])), "put")
    _require(
        isinstance(result.failures.get(c.credential_id), UnsupportedError),
        "a lock that stores no credentials must refuse a put with UnsupportedError",
    )
    _require(not await _listing(driver), "a refused put left a credential listed")


async def check_credentials(driver: LockDriver) -> None:
    """Put, list (tags, no secrets), replace, delete, and delete again (already done)."""
    caps = await check_capabilities(driver)
    if CredentialKind.CODE not in caps.kinds:
        return
    if not caps.stores_credentials:
        await _check_stores_nothing(driver, caps)
        return
    before = await _listing(driver)
    room = caps.slots - len(before) if caps.has_slots else caps.max_batch
    n = max(1, min(caps.max_batch, 3, room))
    creds = [code_credential(caps, i) for i in range(n)]
    _require(
        all(c.credential_id not in before for c in creds), "the lock already holds conformance-*"
    )
    result = _batch(await _call("put_credentials", lambda: driver.put_credentials(creds)), "put")
    _require(result.ok, f"put of {n} fitting codes failed: {dict(result.failures)}")
    held = await _listing(driver)
    for c in creds:
        got = held.get(c.credential_id)
        _require(got is not None, f"{c.credential_id} not listed after put")
        assert got is not None
        _require(got.tag == c.tag, f"{c.credential_id}: listed tag differs from the put one")
        _require(got.kind is c.kind, f"{c.credential_id}: listed kind differs")
        _require(
            c.secret.decode() not in repr(got), f"{c.credential_id}: the PIN shows in the listing"
        )
    other = code_credential(caps, n + 10, credential_id=creds[0].credential_id)
    result = _batch(await _call("put (replace)", lambda: driver.put_credentials([other])), "put")
    _require(result.ok, f"replacing {other.credential_id} failed: {dict(result.failures)}")
    got = (await _listing(driver)).get(other.credential_id)
    _require(got is not None and got.tag == other.tag, "a put with the same id must replace")
    ids = [c.credential_id for c in creds]
    result = _batch(await _call("delete", lambda: driver.delete_credentials(ids)), "delete")
    _require(result.ok, f"delete failed: {dict(result.failures)}")
    after = await _listing(driver)
    _require(not set(ids) & after.keys(), "deleted credentials are still listed")
    result = _batch(await _call("delete (again)", lambda: driver.delete_credentials(ids)), "delete")
    _require(result.ok, "deleting ids the lock does not hold must count as done")
    _require(after.keys() == before.keys(), "the checks changed credentials they did not put")


async def check_code_rules(driver: LockDriver) -> None:
    """A PIN that breaks the lock's rules is refused per credential, and not stored."""
    caps = await check_capabilities(driver)
    if CredentialKind.CODE not in caps.kinds or not caps.stores_credentials:
        return
    bad = code_credential(
        caps, 0, credential_id="conformance-too-long", code=caps.code_alphabet[0] * 33
    )
    try:
        result = _batch(await _call("put (bad)", lambda: driver.put_credentials([bad])), "put")
    except CredentialRejectedError:
        pass
    else:
        err = result.failures.get(bad.credential_id)
        _require(
            isinstance(err, CredentialRejectedError),
            "a 33-symbol PIN must be refused with a CredentialRejectedError",
        )
    held = await _listing(driver)
    _require(bad.credential_id not in held, "a refused PIN is listed")


async def check_optional(driver: LockDriver) -> None:
    """What ``Capabilities`` denies is refused with ``UnsupportedError`` or a harmless default;
    what it declares works."""
    caps = await check_capabilities(driver)
    status = await _call("status", driver.status)
    _require(isinstance(status, LockStatus), "status() must return a LockStatus")
    page = await _call("fetch_events", lambda: driver.fetch_events(0, 10))
    _require(isinstance(page, EventPage), "fetch_events() must return an EventPage")
    _require(page.next_seq >= 0, "EventPage.next_seq must not go below after_seq")
    if not caps.has_audit_log:
        _require(not page.events, "a lock without an audit log returned events")
    else:
        seqs = [e.seq for e in page.events]
        _require(seqs == sorted(seqs), "events must come in seq order")
        _require(all(s > 0 for s in seqs), "events after seq 0 must have seq above 0")
    await _call("ack_events", lambda: driver.ack_events(page.next_seq))
    await check_log_origin(driver, page)
    if caps.has_clock:
        await _call("set_time", lambda: driver.set_time(datetime.now(UTC)))
    else:
        await _unsupported_or_default("set_time", lambda: driver.set_time(datetime.now(UTC)))
    if caps.remote_actuation:
        await _call("lock", driver.lock)
    else:
        await _unsupported_or_default("lock", driver.lock)
        await _unsupported_or_default("unlock", lambda: driver.unlock(1.0))


async def check_log_origin(driver: LockDriver, page: EventPage) -> None:
    """``log_origin()`` names the log in a short text (or ``None``), the same while the lock
    is the same; ``log_head()`` is ``None`` or not below any ``seq`` the lock returned."""
    origin = await _call("log_origin", driver.log_origin)
    _require(
        origin is None or (isinstance(origin, str) and 0 < len(origin) <= 200),
        "log_origin() must return None or a non-empty str of at most 200 characters",
    )
    again = await _call("log_origin", driver.log_origin)
    _require(again == origin, "log_origin() changed while the lock stayed the same")
    head = await _call("log_head", driver.log_head)
    _require(
        head is None or (isinstance(head, int) and head >= 0), "log_head() must be None or >= 0"
    )
    if head is not None and page.events:
        _require(head >= page.events[-1].seq, "log_head() is below a seq the lock returned")


async def _unsupported_or_default(what: str, call: Callable[[], Awaitable[object]]) -> None:
    try:
        await _call(what, call)
    except UnsupportedError:
        pass
    except DriverError as err:
        raise ConformanceError(
            f"{what} on a lock that lacks it must raise UnsupportedError, not {err.code}"
        ) from err


async def check_no_secret_in_repr(driver: LockDriver) -> None:
    """The driver's repr does not show what it was given (a PIN it holds, its options' keys)."""
    caps = await check_capabilities(driver)
    if CredentialKind.CODE not in caps.kinds or not caps.stores_credentials:
        return
    c = code_credential(caps, 20, credential_id="conformance-repr")
    _require(c.secret.decode() not in repr(c), "Credential repr shows the secret")
    await _call("put_credentials", lambda: driver.put_credentials([c]))
    try:
        _require(c.secret.decode() not in repr(driver), "the driver's repr shows a PIN")
    finally:
        await _call("delete", lambda: driver.delete_credentials([c.credential_id]))


CHECKS: tuple[Callable[[LockDriver], Awaitable[object]], ...] = (
    check_link,
    check_capabilities,
    check_credentials,
    check_code_rules,
    check_optional,
    check_no_secret_in_repr,
)


async def check_driver(driver: LockDriver) -> None:
    """Every check above, in order, on a started driver."""
    check_driver_class(type(driver))
    for check in CHECKS:
        await check(driver)


class DriverConformance:
    """Mix into a pytest test class that has a ``driver`` fixture yielding a started driver::

        class TestMyLock(DriverConformance):
            @pytest.fixture
            async def driver(self):
                async with MyDriver("door", MyOptions(...), make_context()) as d:
                    yield d

    Each check becomes one test (run with pytest-asyncio, ``asyncio_mode = "auto"``).
    """

    def test_driver_class(self, driver: LockDriver) -> None:
        check_driver_class(type(driver))

    async def test_link(self, driver: LockDriver) -> None:
        await check_link(driver)

    async def test_capabilities(self, driver: LockDriver) -> None:
        await check_link(driver)
        await check_capabilities(driver)

    async def test_credentials(self, driver: LockDriver) -> None:
        await check_link(driver)
        await check_credentials(driver)

    async def test_code_rules(self, driver: LockDriver) -> None:
        await check_link(driver)
        await check_code_rules(driver)

    async def test_optional_members(self, driver: LockDriver) -> None:
        await check_link(driver)
        await check_optional(driver)

    async def test_no_secret_in_repr(self, driver: LockDriver) -> None:
        await check_link(driver)
        await check_no_secret_in_repr(driver)
