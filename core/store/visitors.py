"""The public demo's rules: which versions a visitor may change, and how much visitors may keep.

Versions saved with an ``owner`` (a demo visitor) are changed only by that owner, under names the
owner holds; the quota is checked inside the write transaction that would exceed it, which then
stores nothing. Without an owner (the operator) anything goes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from core.errors import ConflictError, InvalidParameterError
from core.store.index import MetadataIndex, Row, name_taken
from core.text import human_bytes


@dataclass(frozen=True)
class Quota:
    """Public-demo limits on what owned saves may add: per visitor, and for the whole store.

    Checked in the write transaction that would exceed them, which then stores nothing; nothing is
    ever evicted to make room. Saves without an owner (the operator) are not limited.
    """

    max_versions: int
    max_bytes: int
    visitor_max_versions: int
    visitor_max_bytes: int

    def __post_init__(self) -> None:
        for label, value in dataclasses.asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidParameterError(f"Invalid value {value!r} for {label}: expected an integer >= 0")


def check_room(
    index: MetadataIndex, quota: Quota | None, conn: Any, owner: str | None, versions: int, size: int
) -> None:
    """Refuse (ConflictError) what would take an owner or the store past the quota; never evict."""
    if quota is None or owner is None or (versions <= 0 and size <= 0):
        return
    n, used = index.usage(conn, owner)
    if n + versions > quota.visitor_max_versions or used + size > quota.visitor_max_bytes:
        raise ConflictError(
            f"Your demo quota is full: you keep {n} of {quota.visitor_max_versions} versions and "
            f"{human_bytes(used)} of {human_bytes(quota.visitor_max_bytes)}, and this needs "
            f"{human_bytes(size)} more; delete one of your versions to make room"
        )
    n, used = index.usage(conn)
    if n + versions > quota.max_versions or used + size > quota.max_bytes:
        raise ConflictError(
            f"The demo store is full ({n} of {quota.max_versions} versions, {human_bytes(used)} of "
            f"{human_bytes(quota.max_bytes)}); nothing was saved"
        )


def room_to_grow(index: MetadataIndex, quota: Quota | None, row: Row, size: int) -> None:
    """Refuse growing an owned version by ``size`` bytes past its owner's or the store's quota."""
    if quota is not None and row.owner is not None and size > 0:
        with index.reading() as conn:
            check_room(index, quota, conn, row.owner, 0, size)


def refusal(index: MetadataIndex, row: Row, owner: str | None) -> ConflictError | None:
    """Why ``owner`` may not change ``row`` (None: it may). No owner (the operator): anything."""
    if owner is None:
        return None
    claimed, holder = index.name_owner(row.name)
    if claimed and holder != owner:
        return name_taken(row.name)
    if row.owner != owner:
        return ConflictError(f"{row.ref} was not made in this session; here you may change only your own versions")
    return None
