"""What the demo site holds: two buildings, four locks on three kinds of link, a few people.

Everything here is data (and how to show it without giving a secret away); nothing runs.

=========  ============  =======  ==========================================================
lock       name          link     serves
=========  ============  =======  ==========================================================
front      Front door    sim      Building A (the in-process driver, no wire)
side       Side door     serial   Building A (RS-485 address 1, behind a pty)
gate       Car-park gate BLE      Building A and the gate entrance (enforces windows itself,
                                  takes mobile keys)
office     Office        serial   Building B (RS-485 address 2, same bus as the side door)
=========  ============  =======  ==========================================================

Standing grants at start: twelve staff PINs for Building A (enough to watch a batch go on),
Omar's PIN and card for Building A and his phone's key for the gate, Li's card for Building B.
The walk-through adds Jane's short grant and deletes Li's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Link = Literal["sim", "serial", "ble"]

BUILDING_A = "space-building-a"
BUILDING_B = "space-building-b"
GATE_ENTRANCE = "entrance-car-park-gate"

JANE = "user-jane"
OMAR = "user-omar"
LI = "user-li"

JANE_PIN = "482913"
OMAR_PIN = "730164"
OMAR_CARD = "0004417283"
LI_CARD = "0009921755"
WRONG_PIN = "000000"

OMAR_KEY_METHOD = "method-omar-phone"
LI_GRANT = "grant-li-building-b"

STAFF_GROUP = "staff"
STAFF_NAMES = (
    "Ana Lima", "Ben Okafor", "Chloe Martin", "Dev Patel", "Eva Novak", "Femi Adeyemi",
    "Gus Berg", "Hana Sato", "Ivan Petrov", "Jo Walsh", "Kai Müller", "Lena Costa",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DemoLock:
    lock_id: str
    name: str
    link: Link
    space_ids: tuple[str, ...]
    acs_entrance_ids: tuple[str, ...] = ()
    serial_address: int | None = None


LOCKS: tuple[DemoLock, ...] = (
    DemoLock("front", "Front door", "sim", (BUILDING_A,)),
    DemoLock("side", "Side door", "serial", (BUILDING_A,), serial_address=1),
    DemoLock("gate", "Car-park gate", "ble", (BUILDING_A,), (GATE_ENTRANCE,)),
    DemoLock("office", "Office", "serial", (BUILDING_B,), serial_address=2),
)
LOCK_BY_ID = {lock.lock_id: lock for lock in LOCKS}
LINK_LABEL: Mapping[Link, str] = {"sim": "sim", "serial": "serial", "ble": "BLE"}


def staff_pin(index: int) -> str:
    """Twelve distinct six-digit PINs, none of them one the walk-through uses."""
    return f"{510000 + index * 7331:06d}"


def seed(phone_public_key: str | None) -> dict[str, Any]:
    """The fake cloud's workspace at start (format: :mod:`fakecloud.seed`).

    ``phone_public_key`` is the public half of Omar's phone key; ``None`` leaves the phone's
    grant out (a site without BLE).
    """
    grants: list[dict[str, Any]] = [
        {
            "access_grant_id": f"grant-staff-{i + 1:02d}",
            "user_identity_id": f"user-staff-{i + 1:02d}",
            "name": f"{name} - Building A (staff)",
            "space_ids": [BUILDING_A],
            "starts_in_s": -86400,
            "requested_access_methods": [
                {
                    "mode": "code",
                    "code": staff_pin(i),
                    "access_method_id": f"method-staff-{i + 1:02d}",
                }
            ],
        }
        for i, name in enumerate(STAFF_NAMES)
    ]
    grants.append(
        {
            "access_grant_id": "grant-omar-building-a",
            "user_identity_id": OMAR,
            "name": "Omar - Building A",
            "space_ids": [BUILDING_A],
            "starts_in_s": -3600,
            "requested_access_methods": [
                {"mode": "code", "code": OMAR_PIN, "access_method_id": "method-omar-pin"},
                {"mode": "card", "card_number": OMAR_CARD, "access_method_id": "method-omar-card"},
            ],
        }
    )
    if phone_public_key is not None:
        grants.append(
            {
                "access_grant_id": "grant-omar-gate-phone",
                "user_identity_id": OMAR,
                "name": "Omar - car-park gate (phone)",
                "acs_entrance_ids": [GATE_ENTRANCE],
                "starts_in_s": -3600,
                "requested_access_methods": [
                    {
                        "mode": "mobile_key",
                        "access_method_id": OMAR_KEY_METHOD,
                        "extra": {"mobile_key": {"public_key": phone_public_key}},
                    }
                ],
            }
        )
    grants.append(
        {
            "access_grant_id": LI_GRANT,
            "user_identity_id": LI,
            "name": "Li - Building B",
            "space_ids": [BUILDING_B],
            "starts_in_s": -3600,
            "requested_access_methods": [
                {"mode": "card", "card_number": LI_CARD, "access_method_id": "method-li-card"}
            ],
        }
    )
    users: list[dict[str, Any]] = [
        {"user_identity_id": JANE, "full_name": "Jane Doe", "user_identity_key": "jane"},
        {"user_identity_id": OMAR, "full_name": "Omar Haddad", "user_identity_key": "omar"},
        {"user_identity_id": LI, "full_name": "Li Wei", "user_identity_key": "li"},
    ]
    users += [
        {"user_identity_id": f"user-staff-{i + 1:02d}", "full_name": name}
        for i, name in enumerate(STAFF_NAMES)
    ]
    return {
        "spaces": [
            {"space_id": BUILDING_A, "name": "Building A", "space_key": "building-a"},
            {"space_id": BUILDING_B, "name": "Building B", "space_key": "building-b"},
        ],
        "acs_entrances": [
            {
                "acs_entrance_id": GATE_ENTRANCE,
                "display_name": "Car-park gate",
                "space_ids": [BUILDING_A],
            }
        ],
        "user_identities": users,
        "access_grants": grants,
    }


def group_of(grant_name: str) -> str | None:
    """Credentials of a group (the staff) are shown as one line per lock."""
    return STAFF_GROUP if grant_name.endswith("(staff)") else None


# --- showing credentials without their secrets -----------------------------------------------
def mask(secret: str, shown: int = 2) -> str:
    """``482913`` -> ``••••13``: enough to tell PINs apart, not enough to use one."""
    return "•" * 4 + secret[-shown:] if len(secret) > shown else "•" * 4


def method_text(mode: str, secret: bytes | None) -> str:
    """A credential as the demo shows it: ``PIN ••••13``, ``card ••••83``, ``phone key``."""
    if mode == "mobile_key":
        return "phone key"
    shown = mask(secret.decode("ascii", "replace")) if secret else "••••"
    return {"code": f"PIN {shown}", "card": f"card {shown}"}.get(mode, mode)
