"""One handler per command, and the router that checks a request before any handler runs.

Order of checks, each refusing with a typed error and changing nothing: size, JSON, known
command, envelope, arguments (strict, with the field path), signature and role, freshness and
replay; then the signer's replay floor is written to disk (one commit, off the event loop,
shared by the commands accepted meanwhile). Only then does the handler run. Driver calls go
through the lock's handle (one operation at a time, connected on demand; commissioning
without connecting first) and run within ``command_timeout_s``; driver and cloud errors
become typed errors from their ``code``. No handler returns or logs a secret: the PIN of
``test_credential`` and the pairing secret of ``commission`` arrive sealed to the gateway's
command key (:mod:`gateway.mqtt.sealed`), are opened only once the signature, role,
freshness and replay checks passed (a value that does not open is ``bad_payload`` and
changes nothing), and stay in :class:`~pydantic.SecretStr` until the one call that needs
them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from drivers.base import CredentialKind, LockStatus, TimeWindow
from drivers.errors import DriverError
from gateway.cloud.errors import CloudError
from gateway.handle import LockOps
from gateway.logs import set_level
from gateway.models import SeamNote
from gateway.mqtt.auth import Authoriser, Operator, Role
from gateway.mqtt.limits import RateLimit
from gateway.mqtt.payloads import (
    MUST_BE_SEALED,
    SEALED_LIMITS,
    Auth,
    CommandError,
    CommissionArgs,
    Envelope,
    ErrorCode,
    GrantArgs,
    JsonObject,
    LockArgs,
    LogLevelArgs,
    NoArgs,
    Response,
    Sealed,
    SyncArgs,
    TestCredentialArgs,
    UnlockArgs,
    bad_payload,
    parse_json,
    transaction_of,
)
from gateway.mqtt.sealed import Opener, SealError
from gateway.mqtt.state import StateView, iso
from gateway.store.db import StoreFullError
from gateway.sync_issues import issues_in

if TYPE_CHECKING:
    from gateway.managed import ManagedGateway
    from gateway.reconciler import LockReconciler

log = logging.getLogger(__name__)

RELOCK_MARGIN_S = 0.5
"""After a timed unlock, the bolt is read again this long after the hold should have ended."""

CALLER: ContextVar[Operator | None] = ContextVar("mqtt_caller", default=None)
"""Who signed the command being handled (``None``: unsigned). Each command runs in a task of
its own, so this is per command."""

A = TypeVar("A", bound=BaseModel)
T = TypeVar("T")

_DRIVER_CODES: dict[str, ErrorCode] = {
    "lock_offline": ErrorCode.LOCK_OFFLINE,
    "link_error": ErrorCode.LOCK_OFFLINE,
    "timeout": ErrorCode.TIMEOUT,
    "busy": ErrorCode.BUSY,
    "unauthorised": ErrorCode.LOCK_UNAUTHORISED,
    "unsupported": ErrorCode.UNSUPPORTED,
    "not_found": ErrorCode.NOT_FOUND,
}
_CLOUD_CODES: dict[str, ErrorCode] = {
    "cloud_unavailable": ErrorCode.CLOUD_UNAVAILABLE,
    "cloud_rate_limited": ErrorCode.CLOUD_UNAVAILABLE,
    "cloud_unauthorised": ErrorCode.CLOUD_UNAUTHORISED,
}


def from_driver(err: DriverError, lock_id: str) -> CommandError:
    code = _DRIVER_CODES.get(err.code, ErrorCode.DRIVER_ERROR)
    return CommandError(code, err.message, lock_id=err.lock_id or lock_id, cause=err.code)


def from_cloud(err: CloudError) -> CommandError:
    code = _CLOUD_CODES.get(err.code, ErrorCode.CLOUD_ERROR)
    return CommandError(code, str(err) or err.code, cause=err.code)


# --- what handlers are given ---------------------------------------------------------------
class CommandContext:
    def __init__(
        self,
        gw: ManagedGateway,
        view: StateView,
        *,
        timeout_s: float,
        commission_timeout_s: float,
        on_lock_removed: Callable[[str], Awaitable[None]],
        reread_status_after: Callable[[str, float], None] = lambda lock_id, delay: None,
    ) -> None:
        self.gw = gw
        self.view = view
        self.timeout_s = timeout_s
        self.commission_timeout_s = commission_timeout_s
        self.on_lock_removed = on_lock_removed
        self.reread_status_after = reread_status_after
        """Read the lock's status again after a delay (when a timed unlock should be over)."""

    def reconciler(self, lock_id: str) -> LockReconciler:
        rec = self.gw.locks.get(lock_id)
        if rec is None:
            raise CommandError(
                ErrorCode.UNKNOWN_LOCK, f"no lock {lock_id!r} on this gateway", lock_id=lock_id
            )
        return rec

    async def driver_op(
        self,
        lock_id: str,
        op: Callable[[LockOps], Awaitable[T]],
        *,
        timeout_s: float | None = None,
    ) -> T:
        """Run ``op`` in a session of the lock's handle (exclusive, connected), in time."""
        rec = self.reconciler(lock_id)

        async def run() -> T:
            async with rec.handle.session() as ops:
                return await op(ops)

        return await self.in_time(lock_id, run, timeout_s)

    async def in_time(
        self, lock_id: str, call: Callable[[], Awaitable[T]], timeout_s: float | None = None
    ) -> T:
        """Await ``call()`` within the command timeout; driver errors become command errors."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(limit):
                return await call()
        except DriverError as err:
            raise from_driver(err, lock_id) from err
        except TimeoutError:
            raise CommandError(
                ErrorCode.TIMEOUT,
                f"lock {lock_id} did not answer within {limit:g}s",
                lock_id=lock_id,
            ) from None

    async def read_status(self, lock_id: str) -> LockStatus:
        status = await self.driver_op(lock_id, lambda d: d.status())
        self.view.note_status(lock_id, status)
        return status


Handler = Callable[[CommandContext, A], Awaitable[object]]


@dataclass(frozen=True, slots=True)
class Command(Generic[A]):
    name: str
    args: type[A]
    role: Role | None
    """The role a signature must carry; ``None``: read-only, unsigned allowed (unless the
    config requires signed reads)."""
    handler: Handler[A]
    summary: str
    needs_trusted_clock: bool = False
    """Refused (``clock_untrusted``) while the gateway cannot trust its clock: a command that
    opens a door is not run on a freshness check that a stepped clock may have fooled."""
    rate_limited: bool = False
    """Counted against the signer's per-operator rate (``rate_limited`` beyond it)."""


# --- handlers ------------------------------------------------------------------------------
async def cmd_status(ctx: CommandContext, args: NoArgs) -> object:
    state = ctx.view.gateway_state()
    state["time"] = state["clock"]["now"]  # the gateway's time, from the same reading
    return state


async def cmd_sync(ctx: CommandContext, args: SyncArgs) -> object:
    try:
        async with asyncio.timeout(ctx.timeout_s):
            report = await ctx.gw.sync_loop.sync_now(full=args.full)
    except CloudError as err:
        raise from_cloud(err) from err
    except TimeoutError:
        raise CommandError(
            ErrorCode.TIMEOUT, f"sync did not finish within {ctx.timeout_s:g}s"
        ) from None
    ctx.view.changed()
    return {
        "kind": report.kind,
        "grants": report.grants,
        "methods": report.methods,
        "deleted": report.deleted,
        "issues": len(report.issues),
        "sync_issues": [i.as_json() for i in issues_in(ctx.gw.store.cloud, report.issues)],
    }


async def cmd_locks(ctx: CommandContext, args: NoArgs) -> object:
    return [ctx.view.lock_state(lock_id, rec) for lock_id, rec in ctx.gw.locks.items()]


def wakes_a_sleeping_lock(ctx: CommandContext, lock_id: str) -> bool:
    """Whether reading ``lock_id`` now would bring its link up (a BLE lock's battery), for a
    caller who did not sign: anyone the broker lets publish must not drain it."""
    return CALLER.get() is None and not ctx.reconciler(lock_id).handle.awake


async def cmd_lock_state(ctx: CommandContext, args: LockArgs) -> object:
    """Read live when the link is up or the request is signed; an unsigned request for a lock
    whose link is down gets the last reading (``"live": false``) and wakes nothing."""
    live = not wakes_a_sleeping_lock(ctx, args.lock_id)
    if live:
        await ctx.read_status(args.lock_id)
    return {**ctx.view.lock_state(args.lock_id, ctx.reconciler(args.lock_id)), "live": live}


async def cmd_lock(ctx: CommandContext, args: LockArgs) -> object:
    async def op(ops: LockOps) -> LockStatus:
        await ops.lock()
        return await ops.status()

    status = await ctx.driver_op(args.lock_id, op)
    ctx.view.note_status(args.lock_id, status)
    return {"lock_id": args.lock_id, "bolt": status.bolt.value}


async def cmd_unlock(ctx: CommandContext, args: UnlockArgs) -> object:
    async def op(ops: LockOps) -> LockStatus:
        await ops.unlock(args.hold_seconds)
        return await ops.status()

    status = await ctx.driver_op(args.lock_id, op)
    ctx.view.note_status(args.lock_id, status)
    if args.hold_seconds is not None:
        ctx.reread_status_after(args.lock_id, args.hold_seconds + RELOCK_MARGIN_S)
    return {"lock_id": args.lock_id, "bolt": status.bolt.value, "hold_seconds": args.hold_seconds}


def _window(w: TimeWindow | None) -> JsonObject | None:
    return None if w is None else {"starts_at": iso(w.starts_at), "ends_at": iso(w.ends_at)}


async def cmd_credentials(ctx: CommandContext, args: LockArgs) -> object:
    if wakes_a_sleeping_lock(ctx, args.lock_id):
        raise CommandError(
            ErrorCode.UNAUTHORISED,
            "the lock's link is down: reading it would wake it, so sign this request",
            lock_id=args.lock_id,
        )
    held = await ctx.driver_op(args.lock_id, lambda d: d.list_credentials())
    states = ctx.gw.store.sync_states.for_lock(args.lock_id)
    on_lock = []
    for c in held:
        s = states.get(c.credential_id)
        on_lock.append(
            {
                "credential_id": c.credential_id,
                "kind": c.kind.value,
                "window": _window(c.window),
                "sync_state": s.state.value if s else None,
                "matches_wanted": bool(s and s.tag == c.tag),
            }
        )
    held_ids = {c.credential_id for c in held}
    not_on_lock = [
        {"credential_id": mid, "sync_state": s.state.value, "error_code": s.error_code}
        for mid, s in sorted(states.items())
        if mid not in held_ids
    ]
    return {"lock_id": args.lock_id, "on_lock": on_lock, "not_on_lock": not_on_lock}


async def cmd_grant_sync_state(ctx: CommandContext, args: GrantArgs) -> object:
    cloud = ctx.gw.store.cloud
    grant = cloud.grant(args.grant_id)
    if grant is None:
        raise CommandError(ErrorCode.NOT_FOUND, f"no grant {args.grant_id!r} in the local copy")
    methods = cloud.methods_of_grant(args.grant_id)
    states = ctx.gw.store.sync_states.for_methods(m.method_id for m in methods)
    by_method: dict[str, list[JsonObject]] = {m.method_id: [] for m in methods}
    for s in states:
        by_method.setdefault(s.method_id, []).append(
            {
                "lock_id": s.lock_id,
                "state": s.state.value,
                "error_code": s.error_code,
                "error": s.error,
                "attempts": s.attempts,
                "updated_at": iso(s.updated_at),
            }
        )
    return {
        "grant_id": grant.grant_id,
        "user_identity_id": grant.user_identity_id,
        "starts_at": iso(grant.starts_at),
        "ends_at": iso(grant.ends_at),
        "revoked": grant.revoked_at is not None,
        "revoked_reason": grant.revoked_reason,
        "problem": grant.problem,
        "sync_issues": [i.as_json() for i in issues_in(cloud) if i.grant_id == grant.grant_id],
        "seam": _seam_notes(grant.seam_notes),
        "methods": [
            {
                "method_id": m.method_id,
                "mode": m.mode,
                "revoked": m.revoked_at is not None,
                "revoked_reason": m.revoked_reason,
                "problem": m.problem,
                "seam": {
                    "is_issued": m.issued,
                    "issued_at": (cloud.raw("access_method", m.method_id) or {}).get("issued_at"),
                    **_seam_notes(m.seam_notes),
                },
                "locks": by_method[m.method_id],
            }
            for m in methods
        ],
    }


def _seam_notes(notes: tuple[SeamNote, ...]) -> JsonObject:
    """Seam's own errors, warnings and pending mutations, as Seam names them."""
    out: JsonObject = {"errors": [], "warnings": [], "pending_mutations": []}
    for n in notes:
        out[f"{n.kind}s"].append({"code": n.code, "message": n.message})
    return out


async def cmd_test_credential(ctx: CommandContext, args: TestCredentialArgs) -> object:
    """The decision for a credential, as a dry run that is still accounted for (see
    :meth:`gateway.validator.Validator.decide`). Only an admin learns whose credential it is:
    the method, grant and user are left out of an operator's answer."""
    ctx.reconciler(args.lock_id)
    caller = CALLER.get()
    secret = args.secret.secret().get_secret_value().encode("utf-8")
    d = ctx.gw.decide(
        CredentialKind(args.kind),
        secret,
        args.lock_id,
        dry_run=True,
        tested_by=caller.name if caller else None,
    )
    data: JsonObject = {
        "lock_id": args.lock_id,
        "dry_run": True,
        "allow": d.allow,
        "reason": d.reason,
        "event_id": d.event_id,
    }
    if caller is not None and caller.role >= Role.ADMIN:
        data |= {
            "detail": d.detail or None,
            "access_method_id": d.access_method_id,
            "access_grant_id": d.access_grant_id,
            "user_identity_id": d.user_identity_id,
        }
    return data


async def cmd_repush(ctx: CommandContext, args: LockArgs) -> object:
    ctx.reconciler(args.lock_id).repush()
    return {"lock_id": args.lock_id, "queued": True}


async def cmd_commission(ctx: CommandContext, args: CommissionArgs) -> object:
    ctx.reconciler(args.lock_id)
    secret = args.pairing_secret.secret().get_secret_value()
    limit = ctx.commission_timeout_s
    # Not a driver_op: a fresh lock refuses the session driver_op would open first.
    await ctx.in_time(
        args.lock_id, lambda: ctx.gw.commission(args.lock_id, secret, timeout_s=limit), limit
    )
    return {"lock_id": args.lock_id, "commissioned": True}


async def cmd_remove_lock(ctx: CommandContext, args: LockArgs) -> object:
    ctx.reconciler(args.lock_id)
    try:
        async with asyncio.timeout(ctx.timeout_s):
            await ctx.gw.remove_lock(args.lock_id)
    except TimeoutError:
        raise CommandError(
            ErrorCode.TIMEOUT, "the lock was busy; removal did not finish", lock_id=args.lock_id
        ) from None
    await ctx.on_lock_removed(args.lock_id)
    return {"lock_id": args.lock_id, "removed": True}


async def cmd_log_level(ctx: CommandContext, args: LogLevelArgs) -> object:
    if args.logger is None:
        set_level(args.level)
    else:
        logging.getLogger(args.logger).setLevel(args.level)
    return {"level": args.level, "logger": args.logger or "root"}


COMMANDS: Mapping[str, Command[Any]] = {
    c.name: c
    for c in (
        Command("status", NoArgs, None, cmd_status, "gateway state"),
        Command("locks", NoArgs, None, cmd_locks, "every lock's state"),
        Command("lock_state", LockArgs, None, cmd_lock_state, "one lock, read live"),
        Command("credentials", LockArgs, None, cmd_credentials, "what a lock holds (redacted)"),
        Command("grant_sync_state", GrantArgs, None, cmd_grant_sync_state, "a grant per lock"),
        Command("sync", SyncArgs, Role.OPERATOR, cmd_sync, "sync with the cloud now"),
        Command("lock", LockArgs, Role.OPERATOR, cmd_lock, "lock a lock"),
        Command(
            "unlock",
            UnlockArgs,
            Role.OPERATOR,
            cmd_unlock,
            "unlock a lock",
            needs_trusted_clock=True,
        ),
        Command("repush", LockArgs, Role.OPERATOR, cmd_repush, "write every credential again"),
        Command(
            "test_credential",
            TestCredentialArgs,
            Role.OPERATOR,
            cmd_test_credential,
            "dry-run decision",
            rate_limited=True,
        ),
        Command("commission", CommissionArgs, Role.ADMIN, cmd_commission, "pair a lock"),
        Command("remove_lock", LockArgs, Role.ADMIN, cmd_remove_lock, "stop serving a lock"),
        Command("log_level", LogLevelArgs, Role.ADMIN, cmd_log_level, "set the log level"),
    )
}


# --- the router ----------------------------------------------------------------------------
class CommandRouter:
    def __init__(
        self,
        ctx: CommandContext,
        authoriser: Authoriser,
        *,
        max_payload_bytes: int,
        require_signed_reads: bool,
        clock_trusted: Callable[[], bool],
        rate: RateLimit | None = None,
        opener: Opener | None = None,
        commands: Mapping[str, Command[Any]] = COMMANDS,
    ) -> None:
        self.ctx = ctx
        self._clock_trusted = clock_trusted
        self._rate = rate or RateLimit(6)
        self._auth = authoriser
        self._opener = opener
        self._max = max_payload_bytes
        self._signed_reads = require_signed_reads
        self._commands = commands

    async def handle(self, command: str, topic: str, payload: bytes) -> Response:
        """Answer one request; never raises except for cancellation."""
        too_large = len(payload) > self._max
        parsed: object = None
        parse_error: CommandError | None = None
        if not too_large:
            try:
                parsed = parse_json(payload)
            except CommandError as err:
                parse_error = err
        transaction = transaction_of(parsed)
        try:
            data = await self._answer(command, topic, len(payload), parsed, parse_error)
        except CommandError as err:
            self._log_refusal(command, err)
            return Response.fail(err, transaction)
        except StoreFullError:
            return Response.fail(
                CommandError(ErrorCode.STORE_FULL, "the gateway's disk is full; free space"),
                transaction,
            )
        except Exception:
            log.exception("command %s failed unexpectedly", command)
            return Response.fail(
                CommandError(ErrorCode.INTERNAL_ERROR, "internal error; see the gateway log"),
                transaction,
            )
        return Response.ok(data, transaction)

    async def _answer(
        self,
        command: str,
        topic: str,
        size: int,
        parsed: object,
        parse_error: CommandError | None,
    ) -> object:
        if size > self._max:
            raise CommandError(
                ErrorCode.PAYLOAD_TOO_LARGE, f"payload of {size} bytes exceeds {self._max}"
            )
        spec = self._commands.get(command)
        if spec is None:
            raise CommandError(ErrorCode.UNKNOWN_COMMAND, f"no command {command[:64]!r}")
        if parse_error is not None:
            raise parse_error
        if not isinstance(parsed, dict):
            raise CommandError(ErrorCode.BAD_PAYLOAD, "payload is not a JSON object")
        return await self._run(spec, topic, parsed)

    async def _run(self, spec: Command[Any], topic: str, parsed: dict[str, Any]) -> object:
        try:
            envelope = Envelope.model_validate(parsed)
        except ValidationError as err:
            raise bad_payload(err) from None
        try:
            args = spec.args.model_validate(envelope.args)
        except ValidationError as err:
            raise bad_payload(err, "args") from None
        needed = spec.role or (Role.VIEWER if self._signed_reads else None)
        if envelope.auth is not None and not self._auth.operators:
            raise CommandError(
                ErrorCode.UNAUTHORISED,
                "this gateway trusts no operator keys (mqtt.operator_keys is not set)",
            )
        opened: list[BaseModel] = [args]

        def open_sealed(auth: Auth | None) -> None:
            if spec.needs_trusted_clock and not self._clock_trusted():
                raise CommandError(
                    ErrorCode.CLOCK_UNTRUSTED,
                    f"{spec.name} refused: the gateway cannot trust its clock now "
                    "(see clock.reasons in status); lock still works",
                )
            if spec.rate_limited and auth is not None:
                wait = self._rate.wait_s(auth.operator)
                if wait > 0:
                    raise CommandError(
                        ErrorCode.RATE_LIMITED,
                        f"{spec.name}: at most {self._rate.per_minute:g} a minute per operator; "
                        f"try again in {wait:.0f}s",
                    )
            opened[0] = self._open_sealed(spec.name, args, auth)
            if spec.rate_limited and auth is not None:
                self._rate.take(auth.operator)

        operator = self._auth.check(
            spec.name, envelope.args, envelope.auth, topic, needed, accept=open_sealed
        )
        if operator is not None:
            # Its floor on disk first: a door opens only once a restart would refuse a replay.
            await self._auth.record()
        args = opened[0]
        who = operator.name if operator else "anonymous"
        token = CALLER.set(operator)
        try:
            data = await spec.handler(self.ctx, args)
        finally:
            CALLER.reset(token)
        lock_id = vars(args).get("lock_id")  # not getattr: a miss costs pydantic a raise
        log.log(
            logging.INFO if spec.role is not None else logging.DEBUG,
            "command %s by %s: ok",
            spec.name,
            who,
            extra={"lock": lock_id} if lock_id else None,
        )
        return data

    def _open_sealed(self, command: str, args: BaseModel, auth: Auth | None) -> BaseModel:
        """``args`` with each :class:`Sealed` argument opened; ``bad_payload`` if one won't."""
        update: dict[str, Sealed] = {}
        for name in _may_be_sealed(type(args)):
            value = getattr(args, name)
            if not isinstance(value, Sealed):
                continue
            field = f"args.{name}"
            if auth is None or self._opener is None:
                raise CommandError(ErrorCode.BAD_PAYLOAD, f"{field}: {MUST_BE_SEALED}", field=field)
            try:
                secret = self._opener.open(
                    value.blob(), command=command, field=name, nonce=auth.nonce
                )
            except SealError:
                raise CommandError(
                    ErrorCode.BAD_PAYLOAD,
                    f"{field}: cannot be opened (sealed to another key, request or command?)",
                    field=field,
                ) from None
            limit = SEALED_LIMITS.get((command, name), 256)
            if not 1 <= len(secret) <= limit:
                raise CommandError(
                    ErrorCode.BAD_PAYLOAD,
                    f"{field}: must be 1 to {limit} characters once opened",
                    field=field,
                )
            update[name] = value.opened(secret)
        return args.model_copy(update=update) if update else args

    def _log_refusal(self, command: str, err: CommandError) -> None:
        level = (
            logging.WARNING
            if err.code
            in {ErrorCode.UNAUTHORISED, ErrorCode.FORBIDDEN, ErrorCode.REPLAYED, ErrorCode.STALE}
            else logging.INFO
        )
        log.log(
            level,
            "command %r refused: %s (%s)",
            command[:64],
            err.code.value,
            err.message,
            extra={"lock": err.lock_id} if err.lock_id else None,
        )


@functools.cache
def _may_be_sealed(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields of ``model`` whose value may be :class:`Sealed` (by their type), so that a
    command without any costs no look at each of its arguments."""
    return tuple(name for name, f in model.model_fields.items() if _mentions_sealed(f.annotation))


def _mentions_sealed(annotation: object) -> bool:
    if annotation is Sealed or annotation is Any or annotation is object:
        return True
    if isinstance(annotation, type) and issubclass(annotation, Sealed):
        return True
    return any(_mentions_sealed(a) for a in get_args(annotation))


# --- Home Assistant's unsigned lock entity -------------------------------------------------
async def ha_set(ctx: CommandContext, lock_id: str, payload: bytes, *, allow_unlock: bool) -> None:
    """``LOCK`` / ``UNLOCK`` from Home Assistant's command topic (no response is read)."""
    text = payload.decode("utf-8", "replace").strip()
    try:
        ctx.reconciler(lock_id)
        if text == "LOCK":
            await cmd_lock(ctx, LockArgs(lock_id=lock_id))
        elif text == "UNLOCK" and allow_unlock:
            await cmd_unlock(ctx, UnlockArgs(lock_id=lock_id))
        elif text == "UNLOCK":
            log.warning(
                "UNLOCK from Home Assistant refused: homeassistant_unlock is off",
                extra={"lock": lock_id},
            )
            return
        else:
            log.info("unknown Home Assistant payload ignored (%d bytes)", len(payload))
            return
        log.info("%s from Home Assistant done", text, extra={"lock": lock_id})
    except CommandError as err:
        log.warning(
            "%s from Home Assistant failed: %s", text, err.code.value, extra={"lock": lock_id}
        )
    finally:
        ctx.view.changed()
