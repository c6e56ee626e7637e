"""Walk docs/install.md's road, command by command, from a fresh box to a code on two locks.

Every ``sh road`` block of the page runs in order, as written, in ``bash`` (``sudo`` is a shell
function that runs its arguments: the test runs as root or as the box's only user). Against:
the fake cloud (the demo workspace), a real Mosquitto configured by the doc's own commands
(its ACL, its password file, its TLS certificate), a simulated serial lock behind a pty linked
at the doc's ``/dev/serial/by-id`` path, and a simulated BLE lock on the bumble radio over
HCI/TCP. One lock is commissioned with ``lockgate commission`` on the box, the other with
``lockgate ctl commission`` through the broker (the serial lock on the box as the doc has it,
then the other way round); a grant made in the cloud then reaches both, and its code opens
both.

What the test stands in for, and nothing else (see :class:`tests.deploy.road.Box`):

- system paths (``/etc/lockgate``, ``/etc/mosquitto``, ``/etc/systemd/system``,
  ``/run/lockgate``, ``/var/lib/lockgate``, ``/dev/serial``) live under a temporary root; the
  installer's commands find the config and credentials there through ``$LOCKGATE_CONFIG`` and
  ``$CREDENTIALS_DIRECTORY`` (their built-in defaults are the ``/etc`` paths);
- ports 1883 and 8883 are free ports; the box's name ``acme-hq-1.local`` is ``localhost``;
  Seam's endpoint is the fake cloud;
- ``scripts/install.sh`` (root, systemd, pip into /opt) is replaced by the part of it that
  lays out the config and the secrets, and the test checks the script still does exactly that;
- ``apt-get install`` checks the packages are there; ``systemctl restart mosquitto`` starts
  ``mosquitto`` on a main config like Debian's (persistence, logging, ``include_dir`` of the
  ``conf.d`` the doc wrote into); ``systemctl restart lockgate`` does what systemd does with
  the unit and its drop-ins: copies the ``LoadCredential=`` files into a private credentials
  directory, runs ``ExecStart`` with ``$NOTIFY_SOCKET`` and returns at ``READY=1``;
- ``sudoedit`` makes the edit the doc asks for: uncomments the starter config's ``[mqtt]``
  block (which must equal the doc's) and appends the doc's ``[[locks]]`` blocks, the BLE lock
  given the simulated radio as its adapter;
- what the installer types (the operators' broker password, a lock label's pairing secret)
  is piped into the command that asks; the lock's BLE device id and the grant's id are the
  ones this run has;
- the box and the laptop share one working directory and one user.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest
from lockgate_sim.broker import Mosquitto, free_port

from fakecloud import DEMO_SEED, FakeCloudServer
from gateway.mqtt.connection import BrokerOptions, is_auth_refusal, make_client
from gateway.mqtt.topics import mosquitto_acl
from tests.deploy.conftest import NotifySocket
from tests.deploy.road import INSTALL_MD, REPO, Box, road, toml_block
from tests.e2e.daemon_proc import DaemonProcess
from tests.mqtt.fresh_locks import FreshLocks, fresh_serial_and_ble_locks

VENV_BIN = Path(sys.executable).parent
SEED = json.loads(DEMO_SEED.read_text())
OPERATORS_PASSWORD = "op-Zq81-road-test"  # typed by the installer at mosquitto_passwd
PIN = "735102"  # the first grant's code
PRELUDE = 'set -euo pipefail\nsudo() { "$@"; }\n'
WAIT = 30.0
EXEC_START = "/opt/lockgate/venv/bin/lockgate run --config /etc/lockgate/lockgate.toml"


STANDINS = (
    (r"^sudo scripts/install\.sh ", "install_sh"),
    (r"^sudo apt-get install -y ", "apt_get"),
    (r"^sudo systemctl restart mosquitto$", "restart_mosquitto"),
    (r"^sudo systemctl daemon-reload$", "daemon_reload"),
    (r"^sudo systemctl restart lockgate$", "restart_lockgate"),
    (r"^sudoedit /etc/lockgate/lockgate\.toml$", "sudoedit"),
)
"""Commands the test does itself (see the module docstring), by the doc's text."""


@dataclass
class Ran:
    command: str
    rc: int
    out: str
    err: str


@dataclass
class Walk:
    """The test's side of the road: the stand-ins, and what each command printed."""

    box: Box
    home: Path
    work: Path
    cloud: FakeCloudServer
    locks: FreshLocks
    notify: NotifySocket
    stack: AsyncExitStack
    tmp: Path
    broker: Mosquitto | None = None
    daemon: DaemonProcess | None = None
    ran: list[Ran] = field(default_factory=list)
    grant_id: str = ""

    # --- the box's files ---------------------------------------------------------------------
    @property
    def etc(self) -> Path:
        return self.box.path("/etc/lockgate")

    @property
    def config(self) -> Path:
        return self.etc / "lockgate.toml"

    @property
    def credentials(self) -> Path:
        return self.etc / "credentials"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"NOTIFY_SOCKET", "JOURNAL_STREAM"}}
        return env | {
            "HOME": str(self.home),
            "PATH": f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
            "LOCKGATE_CONFIG": str(self.config),
            "CREDENTIALS_DIRECTORY": str(self.credentials),
        }

    # --- running a command as the installer types it ----------------------------------------
    async def shell(self, command: str, typed: str | None = None) -> Ran:
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            PRELUDE + self.box.text(command),
            cwd=self.work,
            env=self.env(),
            stdin=asyncio.subprocess.PIPE if typed is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):
            out, err = await proc.communicate(typed.encode() if typed is not None else None)
        ran = Ran(command, proc.returncode or 0, out.decode(), err.decode())
        self.ran.append(ran)
        assert ran.rc == 0, f"{command!r} exited {ran.rc}:\n{ran.out}\n{ran.err}"
        return ran

    def typed(self, command: str) -> str | None:
        """What the installer types at this command (the doc's comment says what)."""
        if re.search(r"mosquitto_passwd \S+ operator", command):
            return f"{OPERATORS_PASSWORD}\n{OPERATORS_PASSWORD}\n"
        if "cat > ~/.config/lockgate/mqtt.pass" in command:
            return f"{OPERATORS_PASSWORD}\n"
        label = re.search(r"cat > ([\w-]+)\.secret", command)
        if label is not None:
            return self.locks.secrets[label.group(1)] + "\n"
        return None

    # --- stand-ins for what needs root and systemd ------------------------------------------
    def install_sh(self, command: str) -> None:
        script = (REPO / "scripts" / "install.sh").read_text()
        # The part of install.sh done here, as the script does it:
        for step in (
            'sed "s/@GATEWAY_ID@/$GATEWAY_ID/g" "$REPO/systemd/lockgate.toml.in"',
            'head -c 32 /dev/urandom > "$CREDS/store-key.new"',
            'tr -d \'\\r\\n\' < "$API_KEY_FILE" > "$CREDS/seam-api-key"',
            'install -m 0644 "$REPO/systemd/lockgate.service" "$UNIT"',
            'install -d -m 0700 -o root -g root "$CREDS"',
            "systemctl restart lockgate.service",  # with the API key: started, no lock yet
        ):
            assert step in script, f"install.sh no longer does {step!r}: update this stand-in"
        words = shlex.split(command.replace("~", str(self.home)))
        gateway_id = words[words.index("--gateway-id") + 1]
        api_key_file = Path(words[words.index("--api-key-file") + 1])
        template = (REPO / "systemd" / "lockgate.toml.in").read_text()
        self.etc.mkdir(parents=True, mode=0o750)
        self.credentials.mkdir(mode=0o700)
        self.config.write_text(self.box.text(template.replace("@GATEWAY_ID@", gateway_id)))
        for name, value in (
            ("store-key", os.urandom(32)),
            ("seam-api-key", api_key_file.read_bytes().replace(b"\r", b"").replace(b"\n", b"")),
        ):
            fd = os.open(self.credentials / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(value)
        units = self.box.path("/etc/systemd/system")
        units.mkdir(parents=True)
        shutil.copy(REPO / "systemd" / "lockgate.service", units / "lockgate.service")

    def apt_get(self, command: str) -> None:
        for tool in ("mosquitto", "mosquitto_passwd", "mosquitto_pub"):
            assert shutil.which(tool) or Path("/usr/sbin", tool).exists(), f"{tool} missing"
        for d in ("conf.d", "certs"):  # what the package ships
            self.box.path(f"/etc/mosquitto/{d}").mkdir(parents=True, exist_ok=True)

    async def restart_mosquitto(self, command: str) -> None:
        if self.broker is None:
            self.broker = Mosquitto(
                self.tmp / "mosquitto",
                port=self.box.broker_port,
                include_dir=self.box.path("/etc/mosquitto/conf.d"),
            )
            await self.stack.enter_async_context(self.broker)
        else:
            await self.broker.restart()

    def daemon_reload(self, command: str) -> None:
        """Nothing to do: the unit and its drop-ins are read at each restart below."""

    async def restart_lockgate(self, command: str) -> None:
        if self.daemon is not None:
            self.daemon.kill(signal.SIGTERM)
            assert await self.daemon.wait_exit() == 0
        units = self.box.path("/etc/systemd/system")
        unit = (units / "lockgate.service").read_text()
        assert f"ExecStart={EXEC_START}\n" in unit
        dropins = sorted((units / "lockgate.service.d").glob("*.conf"))
        loaded = self.tmp / "credentials.lockgate"  # systemd's private copy
        shutil.rmtree(loaded, ignore_errors=True)
        loaded.mkdir(mode=0o700)
        for text in [unit, *(p.read_text() for p in dropins)]:
            for name, source in re.findall(r"^LoadCredential=([^:\s]+):(\S+)$", text, re.M):
                shutil.copy(self.box.text(source), loaded / name)
                (loaded / name).chmod(0o400)
        for state in ("/var/lib/lockgate", "/run/lockgate"):  # StateDirectory, RuntimeDirectory
            self.box.path(state).mkdir(parents=True, mode=0o700, exist_ok=True)
        self.notify.queued()
        self.daemon = DaemonProcess(
            self.config,
            env={"CREDENTIALS_DIRECTORY": str(loaded), "NOTIFY_SOCKET": self.notify.address},
        )
        daemon = await self.stack.enter_async_context(self.daemon)
        # systemctl returns at READY=1, or when the service failed.
        ready = asyncio.create_task(
            self.notify.until(lambda m: m.get("READY") == "1", within=WAIT), name="ready"
        )
        exited = asyncio.create_task(daemon.wait_exit(), name="exited")
        await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        for task in (ready, exited):
            task.cancel()
        await asyncio.wait({ready, exited})
        if exited.done() and not exited.cancelled():
            tail = "\n".join(daemon.lines[-15:])
            raise AssertionError(f"lockgate.service failed ({exited.result()}):\n{tail}")
        ready.result()
        if "\n[mqtt]\n" in self.config.read_text():
            await self.daemon.wait_for_line(r"MQTT connected to", within=WAIT)

    def sudoedit(self, command: str) -> None:
        doc = INSTALL_MD.read_text()
        lines = self.config.read_text().splitlines(keepends=True)
        start = lines.index("# [mqtt]\n")
        end = start
        while lines[end].startswith("# "):
            end += 1
        mqtt = "".join(line[2:] for line in lines[start:end])
        assert mqtt == self.box.text(toml_block(doc, "[mqtt]")), "starter [mqtt] differs"
        ble = self.locks.drivers["side-door"]
        radio = f'backend = "{ble["backend"]}"\nadapter = "{ble["adapter"]}"\n'
        locks = re.sub(
            r"^(device_id = .*\n)",
            lambda m: m.group(1) + radio,  # the simulated radio stands in for BlueZ's hci0
            self.box.text(toml_block(doc, "[[locks]]")),
            flags=re.M,
        )
        text = "".join(lines[:start]) + mqtt + "".join(lines[end:]) + "\n" + locks
        self.config.write_text(text)

    async def step(self, command: str) -> Ran | None:
        for pattern, name in STANDINS:
            if re.search(pattern, command):
                handler: Callable[[str], Awaitable[None] | None] = getattr(self, name)
                done = handler(command)
                if done is not None:
                    await done
                if name == "install_sh":  # it ends by starting the service (it has the key)
                    await self.restart_lockgate("systemctl restart lockgate.service")
                return None
        return await self.shell(command, self.typed(command))

    # --- the first grant ---------------------------------------------------------------------
    def make_grant(self) -> None:
        """ "Give someone a grant in Seam": the installer does it in Seam's console."""
        entrances = [e["acs_entrance_id"] for e in SEED["acs_entrances"]]
        grant = self.cloud.state.grants.create(
            user_identity_id=SEED["user_identities"][0]["user_identity_id"],
            acs_entrance_ids=[entrances[0], entrances[2]],  # the doc's two locks
            requested_access_methods=[{"mode": "code", "code": PIN}],
            starts_at=datetime.now(UTC) - timedelta(minutes=5),
            name="first grant",
        )
        self.grant_id = str(grant["access_grant_id"])
        self.box.values["ag_123"] = self.grant_id

    async def until_applied(self, command: str) -> Ran:
        """Run ``grant_sync_state`` until every lock says applied, waiting between runs for
        a reconciler pass of a lock that did not (the log line comes after the pass)."""
        assert self.daemon is not None
        while True:
            passes = {lock: self.daemon.count(rf"{lock}: pass done") for lock in LOCKS}
            ran = await self.shell(command)
            answer = json.loads(ran.out)["data"]
            states = {
                lock["lock_id"]: lock["state"] for m in answer["methods"] for lock in m["locks"]
            }
            late = [lock for lock in LOCKS if states.get(lock) != "applied"]
            if not late:
                return ran
            assert not any(states.get(lock) == "failed" for lock in LOCKS), answer
            await self.daemon.wait_for_line(
                rf"{late[0]}: pass done", times=passes[late[0]] + 1, within=WAIT
            )


LOCKS = ("front-door", "side-door")


async def checks(walk: Walk, command: str, ran: Ran | None) -> None:
    """What the doc says each command shows, checked on what it printed."""
    if "lockgate cloud ls" in command:
        assert ran is not None
        for entrance in SEED["acs_entrances"]:
            assert f"{entrance['acs_entrance_id']}  {entrance['display_name']}" in ran.out
    elif "/etc/mosquitto/lockgate.acl" in command and "tee" in command:
        assert walk.box.path("/etc/mosquitto/lockgate.acl").read_text() == mosquitto_acl()
    elif "restart mosquitto" in command:
        await nobody_gets_in_without_a_password(walk)
    elif "lockgate check-config" in command:
        assert ran is not None and "OK — gateway acme-hq-1, 2 locks" in ran.out
    elif "restart lockgate" in command:
        assert walk.daemon is not None
        for lock in LOCKS:  # fresh locks: the journal names the command that pairs them
            await walk.daemon.wait_for_line(rf"'lockgate commission {lock} --secret-file FILE'")
    elif "lockgate doctor" in command:
        assert ran is not None
        lines = ran.out.splitlines()
        assert re.fullmatch(r"(\d+) of \1 checks passed", lines[-1]), ran.out
        assert all(line.startswith("ok") for line in lines[:-1]), ran.out
    elif "lockgate identity" in command:
        pin = (walk.work / "acme-hq-1.pin").read_text()
        assert 'gateway_id = "acme-hq-1"' in pin and "gateway_key = " in pin
    elif re.search(r"lockgate ctl (status|sync)", command):
        assert ran is not None and json.loads(ran.out)["status"] == "ok"
        if command.startswith("lockgate ctl status") and walk.grant_id:
            data = json.loads(ran.out)["data"]  # counts, and every sync issue, as the doc says
            assert data["counts"]["credentials"]["applied"] >= len(LOCKS), data["counts"]
            # The demo workspace's mobile keys lack Lockgate's extension: a sync issue each.
            assert data["sync_issues"], data
            assert all(i["reason"] and i["message"] for i in data["sync_issues"])
    elif on_box := re.search(r"sudo lockgate commission ([\w-]+)", command):
        assert ran is not None and f"{on_box.group(1)}: commissioned" in ran.out
    elif remote := re.search(r"lockgate ctl commission lock_id=([\w-]+)", command):
        assert ran is not None
        assert json.loads(ran.out)["data"] == {"lock_id": remote.group(1), "commissioned": True}


async def nobody_gets_in_without_a_password(walk: Walk) -> None:
    """The doc's broker, from the attacker's side: no anonymous login on either listener, no
    wrong password."""
    cert = walk.box.path("/etc/mosquitto/certs") / "lockgate-broker.pem"
    loopback = BrokerOptions(host="127.0.0.1", port=walk.box.broker_port)
    tls = BrokerOptions(host="localhost", port=walk.box.tls_port, tls=True, ca_file=cert)
    for opts in (
        loopback,
        tls,
        replace(tls, username="operator", password="not-the-password"),
        replace(loopback, username="acme-hq-1", password="not-the-password"),
    ):
        with pytest.raises(aiomqtt.MqttError) as refused:
            async with make_client(opts, "road-intruder", timeout_s=5):
                pass
        assert is_auth_refusal(refused.value), (opts.port, opts.username, refused.value)
    # The operators' password is let in there, over TLS with the doc's certificate and its
    # name checked (a mosquitto listener speaks TLS or not, never both).
    async with make_client(replace(tls, username="operator", password=OPERATORS_PASSWORD), "op"):
        pass


def paired_the_other_way(command: str) -> str:
    """The installer's choice of which lock to pair on the box and which from the laptop,
    turned round: the serial lock through ``ctl``, the BLE lock with ``lockgate commission``."""
    if not re.search(r"commission|\.secret", command):
        return command
    return (
        command.replace("front-door", "\0")
        .replace("side-door", "front-door")
        .replace("\0", "side-door")
    )


@asynccontextmanager
async def the_site(tmp: Path, box: Box) -> AsyncIterator[tuple[FakeCloudServer, FreshLocks]]:
    """The cloud workspace and the two locks, fresh from the box."""
    port = re.search(
        r'^port = "(/dev/serial/[^"]+)"', toml_block(INSTALL_MD.read_text(), "[[locks]]"), re.M
    )
    assert port is not None
    link = box.path(port.group(1))
    link.parent.mkdir(parents=True)
    async with (
        FakeCloudServer(seed=DEMO_SEED) as cloud,
        fresh_serial_and_ble_locks(
            tmp / "locks", serial_id="front-door", ble_id="side-door", serial_link=link
        ) as locks,
    ):
        yield cloud, locks


@pytest.mark.timeout(240)
@pytest.mark.parametrize("swap", [False, True], ids=["serial-on-the-box", "ble-on-the-box"])
async def test_the_install_road_from_a_fresh_box_to_a_code_on_two_locks(
    tmp_path: Path, short_dir: Path, notify_socket: NotifySocket, swap: bool
) -> None:
    commands = [paired_the_other_way(c) if swap else c for c in road()]
    assert len(commands) > 20, commands
    box = Box(short_dir / "box", broker_port=free_port(), tls_port=free_port())
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    (tmp_path / "locks").mkdir()
    async with the_site(tmp_path, box) as (cloud, locks), AsyncExitStack() as stack:
        home.mkdir()
        api_key = home / "seam-api-key"
        api_key.write_text(cloud.api_key + "\n")
        api_key.chmod(0o600)
        box.values["https://connect.getseam.com"] = cloud.url
        box.values["a1b2c3d4e5f60718"] = locks.drivers["side-door"]["device_id"]
        walk = Walk(box, home, work, cloud, locks, notify_socket, stack, tmp_path)
        for command in commands:
            if command.startswith("lockgate ctl sync"):
                walk.make_grant()
            if "lockgate ctl grant_sync_state" in command:
                ran: Ran | None = await walk.until_applied(command)
            else:
                ran = await walk.step(command)
            await checks(walk, command, ran)
        assert walk.grant_id, "the road never synced a grant"

        # The first grant's code is on both locks, and opens both.
        method_ids = {m["access_method_id"] for m in cloud.state.methods.of_grant(walk.grant_id)}
        assert method_ids
        for lock_id, sim in locks.sims.items():
            assert method_ids <= {c.credential_id for c in sim.list_credentials()}, lock_id
            assert await sim.enter_code(PIN), lock_id

        # Nothing the installer typed or the box holds ever showed.
        assert walk.daemon is not None
        shown = "\n".join(r.out + r.err for r in walk.ran) + "\n".join(walk.daemon.lines)
        secrets = [
            PIN,
            OPERATORS_PASSWORD,
            cloud.api_key,
            (walk.credentials / "mqtt-password").read_text().strip(),
            *locks.secrets.values(),
        ]
        for secret in secrets:
            assert secret not in shown
        walk.daemon.kill(signal.SIGTERM)
        assert await walk.daemon.wait_exit() == 0
