"""The demo site, assembled in one :class:`contextlib.AsyncExitStack`.

Bottom-up: a state directory, a private Mosquitto, the virtual radio with the BLE lock and
Omar's phone, the fake cloud seeded with :mod:`~lockgate_sim.demo.scenario`, the RS-485 bus
behind a pty with two serial locks, then the installer's step (each serial and BLE lock
commissioned with the pairing secret on its label), an MQTT consumer, and the gateway itself,
configured as ``lockgate run`` would be, with the management plane on. Leaving the block
closes everything in the reverse order and says so.

The gateway does not know any of this is simulated: it gets a cloud URL and an API key file,
a serial port path, a BLE lock's device id, and a broker address. Only the BLE adapter is
handed over in code, through the BLE driver's ``adapters=`` hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drivers.base import DriverContext, LockDriver
from drivers.registry import DriverRegistry
from drivers.serial.driver import SerialDriver
from fakecloud.server import FakeCloudServer
from gateway.cloud.errors import CloudError
from gateway.config import GatewayConfig, parse_config
from gateway.daemon import Gateway
from gateway.extensions import gateway_extensions
from gateway.mqtt.identity import GatewayIdentity, load_or_create
from gateway.mqtt.sealed import KEYSTORE_ID
from gateway.mqtt.topics import Topics
from gateway.reconciler import LockReconciler
from gateway.secrets import SecretRef
from gateway.store.store import Store
from lockgate_sim.broker import BrokerUnavailable, Mosquitto
from lockgate_sim.demo.mqtt_watch import EventWatch, watching
from lockgate_sim.demo.operator import DemoOperator, enrol, operator_keys
from lockgate_sim.demo.scenario import LINK_LABEL, LOCKS, DemoLock, seed
from lockgate_sim.driver import SimDriver
from lockgate_sim.lock import SimLock, SimLockSpec
from lockgate_sim.serial_bus import SerialSite, serial_site
from lockgate_sim.serial_testing import serial_options

if TYPE_CHECKING:
    from lockgate_sim.demo.radio import BleSide

GATEWAY_ID = "demo"
BASE_TOPIC = "lockgate"
SYNC_TIMEOUT_S = 10.0
COMMISSION_TIMEOUT_S = 20.0
GOODBYE_TIMEOUT_S = 2.0

SERIAL_SPEC = SimLockSpec(max_batch=4)
"""Serial locks with small buffers: a batch of fourteen goes on in four round trips."""
SERIAL_BAUD = 19200
"""The simulated bus is paced like a real RS-485 line at this rate."""
SIM_WRITE_DELAY_S = 0.08
"""The in-process lock writes a slot this slowly, so a batch takes a moment to watch."""

Say = Callable[[str], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SiteOptions:
    state_dir: Path
    """Where the gateway's store, the locks' flash and the broker live (the caller owns it)."""
    serial: bool = True
    ble: bool = True
    mqtt: bool = True


@dataclass
class DemoSite:
    state_dir: Path
    cloud: FakeCloudServer
    gateway: Gateway
    locks: tuple[DemoLock, ...]
    """The locks in service (a link that could not start is left out)."""
    sims: dict[str, SimLock]
    """Each lock's simulated firmware: its memory, keypad and card reader."""
    serial: SerialSite | None = None
    ble: BleSide | None = None
    broker: Mosquitto | None = None
    watch: EventWatch | None = None
    topics: Topics = field(default_factory=lambda: Topics(BASE_TOPIC, GATEWAY_ID))
    left_out: dict[str, str] = field(default_factory=dict)
    """Parts of the site that did not start, and why."""
    serving: asyncio.Task[None] | None = None
    """The task running :meth:`Gateway.serve`: it ends only if the gateway fails."""
    operator: DemoOperator | None = None
    """The demo's operator key and ``ctl.toml`` (with MQTT only)."""

    def lock(self, lock_id: str) -> SimLock:
        return self.sims[lock_id]

    def reconciler(self, lock_id: str) -> LockReconciler:
        return self.gateway.locks[lock_id]

    def lock_ids(self, *links: str) -> list[str]:
        return [lock.lock_id for lock in self.locks if not links or lock.link in links]

    def held(self, lock_id: str) -> set[str]:
        return {c.credential_id for c in self.sims[lock_id].list_credentials()}

    async def sync(self) -> None:
        """A cloud sync now, instead of at the next poll."""
        async with asyncio.timeout(SYNC_TIMEOUT_S):
            await self.gateway.sync_loop.sync_now()


def _write_secret(path: Path, value: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return path


def _lock_table(lock: DemoLock, driver: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": lock.lock_id,
        "name": lock.name,
        "space_ids": list(lock.space_ids),
        "acs_entrance_ids": list(lock.acs_entrance_ids),
        "driver": driver,
    }


def gateway_config(
    state: Path,
    cloud_url: str,
    api_key_file: Path,
    locks: list[dict[str, Any]],
    registry: DriverRegistry,
    broker: Mosquitto | None,
    operator_keys_file: Path | None = None,
) -> GatewayConfig:
    """The gateway's configuration, as ``lockgate run`` would read it from TOML."""
    data: dict[str, Any] = {
        "gateway_id": GATEWAY_ID,
        "control_socket": str(api_key_file.parent / "control.sock"),
        "cloud": {
            "endpoint": cloud_url,
            "api_key": {"file": str(api_key_file)},
            "poll_interval_s": 2.0,
            "request_timeout_s": 5.0,
            "max_retries": 1,
        },
        "store": {
            "path": str(state / "lockgate.db"),
            "key": {"file": str(state / "store.key")},
        },
        "reconcile": {
            "lead_time_s": 600,
            "retry_min_s": 0.5,
            "retry_max_s": 5.0,
            "event_poll_s": 5.0,
        },
        "locks": locks,
    }
    if broker is not None:
        data["mqtt"] = {
            "enabled": True,
            "host": broker.host,
            "port": broker.port,
            "base_topic": BASE_TOPIC,
            "state_interval_s": 2.0,
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 2.0,
            "operator_keys": str(operator_keys_file) if operator_keys_file else None,
        }
    return parse_config(data, registry, "demo")


async def _goodbye(watch: EventWatch, say: Say) -> None:
    """After the gateway closed: what its retained availability says now (its goodbye)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(GOODBYE_TIMEOUT_S):
            await watch.until(lambda: watch.availability == "offline")
    say(f"MQTT: the gateway's retained availability says {watch.availability}")


async def _commission(driver: LockDriver, pairing_secret: str) -> None:
    """What an installer does once per lock (``commission()`` opens the link it needs)."""
    try:
        async with asyncio.timeout(COMMISSION_TIMEOUT_S):
            await driver.commission(pairing_secret)
    finally:
        await driver.close()


async def _broker(
    stack: contextlib.AsyncExitStack, state: Path, say: Say, left_out: dict[str, str]
) -> Mosquitto | None:
    broker = Mosquitto(state / "broker")
    try:
        await broker.start()
    except BrokerUnavailable as err:
        left_out["MQTT"] = str(err)
        say(f"MQTT left out: {err}")
        return None
    stack.callback(say, "broker stopped")
    stack.push_async_callback(broker.stop)
    say(f"broker: mosquitto (pid {broker.pid}) on {broker.host}:{broker.port}")
    return broker


async def _ble(
    stack: contextlib.AsyncExitStack, state: Path, say: Say, left_out: dict[str, str]
) -> BleSide | None:
    lock_id = next((lock.lock_id for lock in LOCKS if lock.link == "ble"), None)
    if lock_id is None:
        return None
    try:
        from lockgate_sim.demo.radio import ble_side
    except ImportError as err:  # bumble comes with lockgate-sim (firmware-sim/)
        left_out["BLE"] = f"the BLE simulator cannot be loaded: {err}"
        say(f"BLE left out: {left_out['BLE']}")
        return None
    stack.callback(say, "BLE radio off")
    ble = await stack.enter_async_context(ble_side(lock_id, now=_utcnow, state_dir=state / "ble"))
    say(f"BLE: virtual radio up; lock {lock_id} advertising as {ble.gate.address}")
    return ble


async def _serial(stack: contextlib.AsyncExitStack, state: Path, say: Say) -> SerialSite | None:
    lock_ids = [lock.lock_id for lock in LOCKS if lock.link == "serial"]
    if not lock_ids:
        return None
    stack.callback(say, "serial bus closed (pty gone)")
    serial = await stack.enter_async_context(
        serial_site(
            lock_ids=lock_ids, state_dir=state / "serial", spec=SERIAL_SPEC, baud=SERIAL_BAUD
        )
    )
    on_bus = ", ".join(f"{i} (address {a})" for i, a in serial.addresses.items())
    say(f"serial: RS-485 bus at {SERIAL_BAUD} baud on {serial.path}: {on_bus}")
    return serial


async def _install(
    locks: tuple[DemoLock, ...],
    state: Path,
    serial: SerialSite | None,
    ble: BleSide | None,
    say: Say,
) -> tuple[list[dict[str, Any]], str]:
    """Each lock's ``[[locks]]`` table; serial and BLE locks commissioned into the gateway's
    store with the pairing secret on their label, as an installer does before the first start.
    Also the gateway's MQTT identity (as ``lockgate identity`` prints it), for operators to pin."""
    gw_state = state / "gateway"
    tables: list[dict[str, Any]] = []
    with Store.open(gw_state / "lockgate.db", SecretRef(file=gw_state / "store.key")) as store:
        identity = GatewayIdentity(load_or_create(store.keystore(KEYSTORE_ID)), GATEWAY_ID)
        for lock in locks:
            ctx = DriverContext(now=_utcnow, keystore=store.keystore(lock.lock_id))
            installer: LockDriver | None = None
            if lock.link == "sim":
                driver: dict[str, Any] = {
                    "type": "sim",
                    "state_file": str(state / "sim" / f"{lock.lock_id}.json"),
                    "write_delay_s": SIM_WRITE_DELAY_S,
                }
            elif lock.link == "serial":
                assert serial is not None
                serial_opts = serial_options(serial, lock.lock_id, poll_interval=0.1)
                driver = serial_opts.model_dump(mode="json")
                installer = SerialDriver(lock.lock_id, serial_opts, ctx)
                secret = serial.pairing_secret(lock.lock_id)
            else:
                assert ble is not None
                ble_opts = ble.options()
                driver = ble_opts.model_dump(mode="json")
                installer = ble.driver_class(lock.lock_id, ble_opts, ctx)
                secret = ble.gate.pairing_secret
            tables.append(_lock_table(lock, driver))
            if installer is not None:
                await _commission(installer, secret)
                link = LINK_LABEL[lock.link]
                say(f"commissioned {lock.lock_id} ({link}) with the pairing secret on its label")
    return tables, identity.public_b64


def _sims(
    gw: Gateway, locks: tuple[DemoLock, ...], serial: SerialSite | None, ble: BleSide | None
) -> dict[str, SimLock]:
    sims: dict[str, SimLock] = {}
    for lock in locks:
        if lock.link == "sim":
            driver = gw.locks[lock.lock_id].handle.driver
            assert isinstance(driver, SimDriver)
            sims[lock.lock_id] = driver.sim
        elif lock.link == "serial":
            assert serial is not None
            sims[lock.lock_id] = serial.locks[lock.lock_id]
        else:
            assert ble is not None
            sims[lock.lock_id] = ble.gate.lock
    return sims


@contextlib.asynccontextmanager
async def open_site(opts: SiteOptions, say: Say) -> AsyncIterator[DemoSite]:
    """Start the whole site; leave the block to stop it (in the reverse order)."""
    async with contextlib.AsyncExitStack() as stack:
        state = opts.state_dir
        for part in ("serial", "sim", "ble", "gateway"):
            (state / part).mkdir(parents=True, exist_ok=True)
        left_out: dict[str, str] = {}
        for part, wanted in (("MQTT", opts.mqtt), ("BLE", opts.ble), ("serial", opts.serial)):
            if not wanted:
                left_out[part] = f"--no-{part.lower()}"
                say(f"{part} left out (--no-{part.lower()})")

        broker = await _broker(stack, state, say, left_out) if opts.mqtt else None
        ble = await _ble(stack, state, say, left_out) if opts.ble else None
        cloud = FakeCloudServer(seed=seed(ble.phone.public_key_text if ble else None))
        stack.callback(say, "fake cloud stopped")
        await stack.enter_async_context(cloud)
        api_key = _write_secret(state / "gateway" / "cloud-api-key", cloud.api_key)
        grants, people = len(cloud.state.access_grants), len(cloud.state.user_identities)
        say(f"fake cloud on {cloud.url}: {grants} grants, {people} people")
        serial = await _serial(stack, state, say) if opts.serial else None

        locks = tuple(
            lock
            for lock in LOCKS
            if lock.link == "sim"
            or (lock.link == "serial" and serial is not None)
            or (lock.link == "ble" and ble is not None)
        )
        drivers: list[type[LockDriver]] = [SimDriver, SerialDriver]
        if ble is not None:
            drivers.append(ble.driver_class)
        registry = DriverRegistry(drivers)
        tables, identity = await _install(locks, state, serial, ble, say)
        operator: DemoOperator | None = None
        keys_file: Path | None = None
        if broker is not None:
            private, keys_file = operator_keys(state / "ctl")
            operator = enrol(state / "ctl", private, keys_file, GATEWAY_ID, identity, broker)
        cfg = gateway_config(
            state / "gateway", cloud.url, api_key, tables, registry, broker, keys_file
        )

        watch: EventWatch | None = None
        topics = Topics(BASE_TOPIC, GATEWAY_ID)
        if broker is not None:
            watch = await stack.enter_async_context(watching(broker.host, broker.port, topics))
            say(f"MQTT: a consumer subscribed to {topics.events}")
            stack.push_async_callback(_goodbye, watch, say)
        stack.callback(say, "gateway closed")
        gw = await stack.enter_async_context(
            Gateway(cfg, registry, extra_tasks=gateway_extensions(cfg))
        )
        stop = asyncio.Event()
        serving = asyncio.create_task(gw.serve(stop), name="lockgate-serve")

        async def stop_serving() -> None:
            stop.set()
            await asyncio.wait({serving})

        stack.push_async_callback(stop_serving)
        await _until_ready(gw, serving)
        names = ", ".join(f"{lock.lock_id} ({LINK_LABEL[lock.link]})" for lock in locks)
        plural = "s" if len(locks) != 1 else ""
        say(f"gateway {GATEWAY_ID} started: {len(locks)} lock{plural}: {names}")

        sims = _sims(gw, locks, serial, ble)
        site = DemoSite(
            state,
            cloud,
            gw,
            locks,
            sims,
            serial,
            ble,
            broker,
            watch,
            topics,
            left_out,
            serving,
            operator,
        )
        try:
            await site.sync()
        except (CloudError, TimeoutError) as err:
            say(f"first cloud sync failed: {err}; the gateway keeps trying")
        else:
            say("first cloud sync done")
        yield site


async def _until_ready(gw: Gateway, serving: asyncio.Task[None]) -> None:
    ready = asyncio.create_task(gw.ready.wait(), name="lockgate-ready")
    await asyncio.wait({ready, serving}, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if serving.done():
        serving.result()  # why the gateway could not start
