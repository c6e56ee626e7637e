"""A new version's :class:`CloudView` made from the last one where few grants changed.

The hourly full sync of a site where 1% of the grants changed hands over every record, but
almost all of them are the very objects the last view indexed (the sync takes an unchanged
object's record from its memo). Indexing 10,000 grants and 30,000 methods again costs tens of
milliseconds; finding what is not the same object costs a few passes over the records that
run in C (``map``, ``compress``), and only the index entries those touch are made again. The
result is the view :meth:`CloudView.built` makes from the same records (same keys and values,
lists in the same order): the last view's dictionaries are copied (one C call each) and their
changed entries replaced, never changed in place, since the last view may still be in use.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from itertools import compress, filterfalse
from operator import attrgetter, is_not
from typing import TypeVar

from gateway.models import AccessMethod, Entrance, Grant
from gateway.planner import CloudView

UPDATE_MAX_SHARE = 0.25
"""Beyond this share of changed grants or methods the view is built afresh (as cheap, then)."""
_GRANT_ID = attrgetter("grant_id")
_METHOD_ID = attrgetter("method_id")
_REVOKED = attrgetter("revoked_at")
_SECRET = attrgetter("secret")

_Key = tuple[str, bytes]
_K = TypeVar("_K")


def update_steps(
    out: list[CloudView],
    old: CloudView,
    grants: dict[str, Grant],
    methods: list[AccessMethod],
    entrances: Iterable[Entrance],
    version: int,
    max_share: float = UPDATE_MAX_SHARE,
) -> Iterator[None]:
    """The view of ``version`` (``grants``: all its grants by id, ``methods`` all its
    methods, in the order :meth:`CloudView.built` would be given them), made from ``old`` and
    appended to ``out``; nothing appended if it is better built afresh. Yields between its
    passes over all the records (each a loop in C: ~1 ms for 30,000). ``max_share``: of
    grants or methods changed, beyond which it is built afresh."""
    old_grants, old_methods = old.grants, old.method_by_id
    if not old_grants or sum(map(len, old.by_grant.values())) != len(old_methods):
        return  # (nothing to start from, or the old lists hold a method twice)
    gids, records = list(grants), list(grants.values())
    changed_grants = set(compress(gids, map(is_not, map(old_grants.get, gids), records)))
    changed_grants.update(old_grants.keys() - grants.keys())
    yield None
    if all(map(_GRANT_ID, methods)) and not any(map(_REVOKED, methods)):
        indexed = methods  # every one (the usual case: the view takes the live ones)
    else:
        indexed = [m for m in methods if m.grant_id is not None and m.revoked_at is None]
    ids = list(map(_METHOD_ID, indexed))
    by_id = dict(zip(ids, indexed, strict=True))
    changed = set(compress(ids, map(is_not, map(old_methods.get, ids), indexed)))
    changed.update(old_methods.keys() - by_id.keys())
    yield None
    limit = max_share * max(len(grants), len(old_grants))
    if (
        len(indexed) != len(by_id)  # a method listed twice: its lists hold it twice
        or len(changed_grants) > limit
        or len(changed) > max_share * max(len(by_id), len(old_methods), 1)
        or not _same_order(old_methods, by_id, changed)
    ):
        return
    yield None
    lists: set[str] = set()
    """Grants whose list of methods may differ."""
    secret_keys: set[_Key] = set()
    """Secrets whose list of live methods may differ."""
    for mid in changed:
        for either in (old_methods.get(mid), by_id.get(mid)):
            if either is not None and either.grant_id is not None:
                lists.add(either.grant_id)
                if either.secret is not None:
                    secret_keys.add((either.mode, either.secret))
    for gid in changed_grants:  # whether a grant is live decides its methods' secrets
        for m in old.by_grant.get(gid, ()):
            if m.secret is not None:
                secret_keys.add((m.mode, m.secret))
    new_lists: dict[str, list[AccessMethod]] = {}
    for m in compress(indexed, map(lists.__contains__, map(_GRANT_ID, indexed))):
        assert m.grant_id is not None
        new_lists.setdefault(m.grant_id, []).append(m)
    yield None
    new_keys: dict[_Key, list[AccessMethod]] = {}
    secrets = {s for _, s in secret_keys}
    for m in compress(indexed, map(secrets.__contains__, map(_SECRET, indexed))):
        assert m.secret is not None
        assert m.grant_id is not None
        live = grants.get(m.grant_id)
        if (m.mode, m.secret) in secret_keys and live is not None and live.revoked_at is None:
            new_keys.setdefault((m.mode, m.secret), []).append(m)
    yield None
    view = CloudView.__new__(CloudView)
    view._start(version)
    view.grants = grants
    view.method_by_id = by_id
    view.by_grant = defaultdict(list, old.by_grant)
    _put(view.by_grant, lists, new_lists)
    view.by_secret = dict(old.by_secret)
    view.plain = {kind: dict(entries) for kind, entries in old.plain.items()}
    view.space_sets = dict(old.space_sets)
    for key in secret_keys:  # (every secret whose methods or their grants may differ)
        mode, secret = key
        view.by_secret.pop(key, None)
        plain = view.plain.get(mode)
        if plain is not None:
            plain.pop(secret, None)
        for m in new_keys.get(key, ()):
            assert m.grant_id is not None
            view._add_secret(m, secret, grants[m.grant_id])
    view.grant_of = dict(old.grant_of)
    for mid in changed:
        now = by_id.get(mid)
        if now is None or now.grant_id is None:
            view.grant_of.pop(mid, None)
        else:
            view.grant_of[mid] = now.grant_id
    yield None
    view.user_of = dict(old.user_of)
    for gid in changed_grants:
        now_g = grants.get(gid)
        if now_g is None:
            view.user_of.pop(gid, None)
        else:
            view.user_of[gid] = now_g.user_identity_id
    view.entrance_spaces = {e.entrance_id: e.space_ids for e in entrances}
    view.grants_by_space = _regrouped(old.grants_by_space, old_grants, grants, changed_grants, 0)
    view.grants_by_entrance = _regrouped(
        old.grants_by_entrance, old_grants, grants, changed_grants, 1
    )
    view.grants_by_device = _regrouped(
        old.grants_by_device, old_grants, grants, changed_grants, 2
    )
    view.changed_since = (old, frozenset(changed_grants | lists))
    out.append(view)


def _same_order(
    old: dict[str, AccessMethod], new: dict[str, AccessMethod], changed: set[str]
) -> bool:
    """Whether the methods in both (and not ``changed``) come in the same order in both: then
    a list of the old view that none of the changed methods touch is the list a build from
    scratch makes."""
    if not changed:
        return list(old) == list(new)
    return list(filterfalse(changed.__contains__, old)) == list(
        filterfalse(changed.__contains__, new)
    )


def _put(
    index: dict[_K, list[AccessMethod]], keys: set[_K], new: dict[_K, list[AccessMethod]]
) -> None:
    """Replace the lists of ``keys`` in ``index`` with ``new``'s (none: the key goes)."""
    for key in keys:
        got = new.get(key)
        if got:
            index[key] = got
        else:
            index.pop(key, None)


def _regrouped(
    old: dict[str, set[str]],
    old_grants: dict[str, Grant],
    grants: dict[str, Grant],
    changed: set[str],
    which: int,
) -> dict[str, set[str]]:
    """``old`` (grant ids by space, entrance or device: ``which`` 0, 1, 2) with the changed
    grants moved; a set that changes is copied first."""
    out: dict[str, set[str]] = defaultdict(set, old)
    copied: set[str] = set()
    for gid in changed:
        for g, add in ((old_grants.get(gid), False), (grants.get(gid), True)):
            if g is None or g.revoked_at is not None:
                continue
            for key in (g.space_ids, g.entrance_ids, g.device_ids)[which]:
                if key not in copied:
                    copied.add(key)
                    out[key] = set(old.get(key, ()))
                if add:
                    out[key].add(gid)
                else:
                    out[key].discard(gid)
    for key in copied:
        if not out[key]:
            del out[key]
    return out
