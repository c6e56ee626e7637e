"""Typed configuration: one TOML file, validated by pydantic v2, frozen.

The lock list is a discriminated union on the driver ``type``, built from the driver registry at
load time so that third-party drivers get typed options too. A bad file fails at start with the
path of each bad field (``locks.1.driver.serial.baud: Input should be a valid integer``).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, Self, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from drivers.base import DriverOptions
from drivers.registry import DriverRegistry
from gateway.secrets import SecretRef


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CloudConfig(_Model):
    endpoint: HttpUrl = HttpUrl("https://connect.getseam.com")
    api_key: SecretRef
    poll_interval_s: float = Field(5.0, gt=0)
    """How often to ask ``/events/list`` what changed."""
    full_resync_interval_s: float = Field(3600.0, gt=0)
    """The safety net: a whole snapshot this often even when events say nothing changed."""
    request_timeout_s: float = Field(10.0, gt=0)
    page_size: int = Field(500, gt=0, le=10000)
    max_retries: int = Field(5, ge=0)

    @field_validator("endpoint")
    @classmethod
    def _no_credentials_in_url(cls, url: HttpUrl) -> HttpUrl:
        if url.username or url.password:
            # The API key is the credential (api_key, a secret reference); a password in the
            # URL would sit in plain text in the config and in every log line that names it.
            raise ValueError("must not carry a user name or password: put the key in api_key")
        return url


class StoreConfig(_Model):
    path: Path = Path("/var/lib/lockgate/lockgate.db")
    key: SecretRef = SecretRef(file=Path("/var/lib/lockgate/store.key"))
    """The key that encrypts PIN codes and key material at rest; kept apart from the database."""


class TimeConfig(_Model):
    policy: Literal["deny_time_bounded", "allow_within_tolerance"] = "deny_time_bounded"
    """While the clock is not trusted: refuse credentials that have a window, or accept them
    when the window holds with ``tolerance_s`` of slack on both sides."""
    tolerance_s: float = Field(300.0, ge=0)
    max_cloud_skew_s: float = Field(60.0, gt=0)
    """The clock is untrusted when it differs from the cloud's ``Date`` by more than this."""
    require_kernel_sync: bool = True
    max_jump_s: float = Field(2.0, gt=0)
    """A step of the wall clock larger than this (measured against the monotonic clock) makes
    it untrusted until a witness vouches for it again."""


class ReconcileConfig(_Model):
    lead_time_s: float = Field(3600.0, ge=0)
    """Codes go onto locks that enforce windows themselves this long before ``starts_at``."""
    retry_min_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(300.0, gt=0)
    event_poll_s: float = Field(30.0, gt=0)
    """Seconds between passes that read a lock's credentials back (drift: codes changed at the
    lock or in a vendor app) when nothing else woke the reconciler."""
    verify_s: float = Field(900.0, gt=0)
    """The same for locks whose credentials only the gateway can change
    (``Capabilities.written_only_by_gateway``: the Lockgate protocol's serial and BLE locks),
    which are also read back after every reconnection (never more often than
    ``event_poll_s``)."""
    connect_timeout_s: float = Field(30.0, gt=0)
    """How long bringing a lock's link up may take before it counts as a failed attempt."""
    op_timeout_s: float = Field(60.0, gt=0)
    """How long one driver operation (a batch, a listing, a page of the audit log) may take."""

    @model_validator(mode="after")
    def _retry_range(self) -> Self:
        if self.retry_min_s > self.retry_max_s:
            raise ValueError("retry_min_s above retry_max_s")
        return self


class ValidatorConfig(_Model):
    """Brute-force limits on the gateway's decisions (docs/offline-decisions.md)."""

    lockout_failures: int = Field(5, ge=1)
    """After this many failed PINs at one lock within ``lockout_window_s`` ..."""
    lockout_window_s: float = Field(300.0, gt=0)
    lockout_base_s: float = Field(30.0, gt=0)
    """... the keypad is locked out this long, doubling on each further lockout ..."""
    lockout_max_s: float = Field(3600.0, gt=0)
    """... up to this."""
    lockout_decay_s: float = Field(3600.0, gt=0)
    """Each this long without a new lockout forgives one doubling (a success does not)."""
    card_lockout_failures: int = Field(10, ge=1)
    """The card reader's own threshold: unknown card numbers at one lock within the window."""
    site_lockout_failures: int = Field(20, ge=1)
    """Failures of one kind (PIN or card) at all locks together within
    ``site_lockout_window_s`` lock that kind out at every lock."""
    site_lockout_window_s: float = Field(3600.0, gt=0)


class MqttConfig(_Model):
    enabled: bool = False
    host: str = "localhost"
    port: int = Field(1883, gt=0, lt=65536)
    transport: Literal["tcp", "unix"] = "tcp"
    unix_socket: Path | None = None
    base_topic: str = "lockgate"
    username: str | None = None
    password: SecretRef | None = None
    tls: bool = False
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: SecretRef | None = None
    operator_keys: Path | None = None
    """A TOML file of trusted operator public keys and their roles (see docs/mqtt.md)."""
    homeassistant_discovery: bool = False
    max_payload_bytes: int = Field(16384, gt=0)
    # --- added with the management plane (gateway/mqtt, docs/mqtt.md) ---
    client_id: str | None = None
    """Defaults to ``lockgate-<gateway_id>``; must stay the same for the persistent session."""
    keepalive_s: int = Field(30, ge=5, le=3600)
    session_expiry_s: int = Field(7 * 24 * 3600, ge=0)
    """How long the broker keeps the gateway's session (subscriptions, queued requests)."""
    reconnect_min_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(60.0, gt=0)
    command_timeout_s: float = Field(15.0, gt=0)
    """Bound on one command: waiting for the lock, the driver call, a sync."""
    commission_timeout_s: float = Field(120.0, gt=0)
    command_max_age_s: float = Field(30.0, gt=0)
    """Signed commands whose timestamp is further than this from the gateway's clock are stale."""
    require_signed_reads: bool = False
    """Also require a viewer signature on read-only commands (status, locks, ...)."""
    max_concurrent_commands: int = Field(8, ge=1)
    test_credential_per_minute: float = Field(6.0, gt=0)
    """Dry runs (``test_credential``) one operator may make a minute (a burst of as many)."""
    state_interval_s: float = Field(10.0, gt=0)
    """How often retained state is rebuilt (and republished only when it changed)."""
    lock_status_interval_s: float = Field(300.0, gt=0)
    """How often bolt and battery are read from connected locks for the retained state."""
    homeassistant_prefix: str = "homeassistant"
    homeassistant_unlock: bool = False
    """Honour UNLOCK from Home Assistant's unsigned command topic (LOCK is always honoured
    when discovery is on). Only safe when the broker ACL lets nobody but HA write there."""

    @field_validator("base_topic", "homeassistant_prefix")
    @classmethod
    def _topic_prefix(cls, value: str) -> str:
        levels = value.split("/")
        if any(not level or any(c in level for c in "#+\x00") for level in levels):
            raise ValueError("must be non-empty topic levels without '#', '+' or '//'")
        return value


class LockConfigBase(_Model):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str | None = None
    space_ids: tuple[str, ...] = ()
    acs_entrance_ids: tuple[str, ...] = ()
    device_ids: tuple[str, ...] = ()
    driver: DriverOptions

    @property
    def display_name(self) -> str:
        return self.name or self.id


class GatewayConfigBase(_Model):
    gateway_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    cloud: CloudConfig
    store: StoreConfig = StoreConfig()
    time: TimeConfig = TimeConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    validator: ValidatorConfig = ValidatorConfig()
    mqtt: MqttConfig = MqttConfig()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    control_socket: Path | None = Path("/run/lockgate/control.sock")
    """The local control socket ``lockgate commission`` talks to (``None``: none)."""
    locks: tuple[LockConfigBase, ...] = ()

    @field_validator("locks")
    @classmethod
    def _unique_ids(cls, locks: tuple[LockConfigBase, ...]) -> tuple[LockConfigBase, ...]:
        seen: set[str] = set()
        for lock in locks:
            if lock.id in seen:
                raise ValueError(f"lock id {lock.id!r} appears twice")
            seen.add(lock.id)
        return locks


# What the rest of the gateway sees: the concrete models below subclass these.
LockConfig = LockConfigBase
GatewayConfig = GatewayConfigBase


class ConfigError(Exception):
    """The configuration cannot be used. ``problems`` lists ``(field path, message)``."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {loc}: {msg}" for loc, msg in problems)
        super().__init__(f"{source}: invalid configuration\n{lines}")


def config_model(registry: DriverRegistry) -> type[GatewayConfigBase]:
    """The config model for the drivers this registry knows, with a typed union of options."""
    models = registry.option_models()
    if not models:
        raise ConfigError("registry", [("locks", "no lock drivers are installed")])
    union: Any = models[0] if len(models) == 1 else Union[tuple(models)]  # noqa: UP007
    driver_type: Any = Annotated[union, Field(discriminator="type")]
    lock_model = create_model("LockConfig", __base__=LockConfigBase, driver=(driver_type, ...))
    locks_type: Any = tuple[lock_model, ...]
    return create_model("GatewayConfig", __base__=GatewayConfigBase, locks=(locks_type, ()))


def parse_config(data: dict[str, Any], registry: DriverRegistry, source: str) -> GatewayConfig:
    model = config_model(registry)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = [(".".join(str(p) for p in e["loc"]) or "(top)", e["msg"]) for e in err.errors()]
        raise ConfigError(source, problems) from None


def load_config(path: Path, registry: DriverRegistry) -> GatewayConfig:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(str(path), [("(file)", err.strerror or str(err))]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), [("(syntax)", str(err))]) from None
    return parse_config(data, registry, str(path))
