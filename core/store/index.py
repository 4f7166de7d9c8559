"""The metadata index: one row per model version, plus tags and aliases, through SQLAlchemy.

A SQLite file inside the store folder by default; any SQLAlchemy URL otherwise. The columns
that lists sort and filter on are real, indexed columns, so the first page of 10,000 versions
is one indexed query with ``LIMIT``; the full record rides along as JSON and is parsed only
for the rows shown. Listing never opens a model file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, String, bindparam, delete, func, insert, literal, select, union_all, update

from core.errors import ConflictError, InvalidParameterError, NotFoundError, StoreMismatchError
from core.record import VersionRecord
from core.store import migrations
from core.store.engine import index_where, open_engine, read_only, translated
from core.store.locking import insert_new, lock_name
from core.store.migrations import schema_newer, schema_older
from core.store.schema import (
    SCHEMA_VERSION,
    aliases,
    contains,
    info_value,
    names,
    schema_of,
    tags,
    verified_files,
    versions,
)
from core.store.schema_tasks import find_version, select_versions, sort_column, task_clause

SORTS = ("created", "accuracy", "name", "score")
#: ``(conn, version ids)``: rewrite those versions' metadata files in the transaction that changed them.
ChangeHook = Callable[[Connection, Sequence[int]], None]
#: ``(conn)``: bring the artifact files up to date with an index being upgraded (marker, metadata files).
UpgradeHook = Callable[[Connection], None]


#: Tags and aliases of some versions in one query (one round trip fewer per page drawn), built
#: once: SQLAlchemy builds and keys a statement in about as long as SQLite runs this one.
_IDS = bindparam("ids", type_=Integer, expanding=True)
_TAGGED = select(tags.c.version_id, literal("tag", String).label("kind"), tags.c.tag.label("label"))
_ALIASED = select(aliases.c.version_id, literal("alias", String).label("kind"), aliases.c.alias.label("label"))
_STAMP = select(verified_files.c.stamp).where(
    verified_files.c.version_id == bindparam("id"), verified_files.c.sha256 == bindparam("sha256")
)
_LINKS = union_all(_TAGGED.where(tags.c.version_id.in_(_IDS)), _ALIASED.where(aliases.c.version_id.in_(_IDS)))
#: A save's statements, built once too (bound names other than the columns' for INSERT/UPDATE).
_NAME = bindparam("b_name", type_=String)
_HELD = (  # the name's next number, locked, and its highest version: one round trip
    select(names.c.next_version, select(func.max(versions.c.version)).where(versions.c.name == _NAME).scalar_subquery())
    .where(names.c.name == _NAME)
    .with_for_update(of=names)
)
_NEXT = update(names).where(names.c.name == _NAME).values(next_version=bindparam("b_next"))
_SAME = select(func.max(versions.c.version)).where(versions.c.name == _NAME, versions.c.sha256 == bindparam("b_sha"))
_INSERT_VERSION = insert(versions)


@dataclass
class Row:
    """One version as the index knows it: the columns plus its tags and aliases."""

    id: int
    name: str
    version: int
    created_at: str
    format: str
    path: str
    size_bytes: int
    sha256: str
    estimator: str | None
    accuracy: float | None
    sklearn_version: str | None
    origin: str
    owner: str | None
    note: str
    record_json: str
    tags: list[str]
    aliases: list[str]
    stored_bytes: int = 0
    task: str | None = None
    score: float | None = None
    score_name: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    def record(self) -> VersionRecord:
        """The full metadata record, with the mutable parts (note, tags, aliases) filled in."""
        record = json.loads(self.record_json)
        record.update(note=self.note, tags=self.tags, aliases=self.aliases)
        return record  # json.loads gives Any: the JSON this store wrote from a VersionRecord


def name_taken(name: str) -> ConflictError:
    return ConflictError(f"the name {name} belongs to another visitor; choose another name")


def gone(row: Row) -> NotFoundError:
    return NotFoundError(f"{row.ref} is no longer in the store")


class MetadataIndex:
    """Reads and writes of the metadata index. Writes happen inside ``writing()`` transactions.

    Opening only reads (``schema``, one query: None for an index without tables); an older schema
    is upgraded before the first write (SQLite) or refused until ``index upgrade`` (a server), with
    ``on_upgrade`` bringing the artifact files along; ``before_first_write`` checks the artifact root.
    ``on_change`` rewrites a version's metadata file in each transaction that changes the version.
    """

    def __init__(self, url: str, *, busy_timeout_s: float = 5.0, location: str | None = None) -> None:
        self.url = url
        self.location = location or url
        self.where = index_where(self.location, url)
        self.engine, self.read_only, self.snapshot = open_engine(url, busy_timeout_s, self.location)
        self._writer = self.engine.execution_options(write=True)
        self._durable = self.engine.execution_options(write=True, durable=True)
        self.on_change: ChangeHook | None = None
        self.on_upgrade: UpgradeHook | None = None
        #: Where this index's files are, as it records them (``core.store.layout`` sets it), and a check of it.
        self.artifact_root: str | None = None
        self.before_first_write: UpgradeHook | None = None
        self.root_checked = False
        with self.reading() as conn:
            self.schema: int | None = schema_of(conn)

    def store_id(self) -> str | None:
        """The store id the index keeps (None before schema 3, or without tables)."""
        if self.schema is None:
            return None
        with self.reading() as conn:
            return info_value(conn, "store_id")

    def create(self, store_id: str, before: UpgradeHook, after: UpgradeHook) -> None:
        """Make the tables of a new store at once, unless another process just did (``migrations.create``).

        ``before`` may refuse (a lost index over existing versions); ``after`` writes the marker.
        """
        if self.read_only:
            raise read_only(self.location)
        migrations.create(self._durable, self.location, self.where, store_id, self.artifact_root, (before, after))
        with self.reading() as conn:
            self.schema = schema_of(conn)

    def upgrade(self) -> tuple[int, int]:
        """Bring the index to this release's schema in a transaction of its own (``core.store.migrations``);
        ``(from, to)`` schema numbers, equal when there was nothing to do."""
        if self.read_only:
            raise read_only(self.location)
        with translated(self.location, self.where):
            done = migrations.upgrade_index(
                self._durable, self.where, self.location, self.artifact_root, self.on_upgrade
            )
        self.schema = SCHEMA_VERSION
        return done

    def _up_to_date(self) -> None:
        """Before a write: a SQLite index upgrades itself; one on a server waits for ``index upgrade``."""
        if self.engine.dialect.name == "sqlite":
            self.upgrade()
            return
        with self.reading() as conn:
            self.schema = schema_of(conn)  # maybe upgraded since this process opened it
        if self.schema is not None and self.schema != SCHEMA_VERSION:
            newer = self.schema > SCHEMA_VERSION
            raise (schema_newer(self.location, self.schema) if newer else schema_older(self.where, self.schema))

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def writing(self, durable: bool = False) -> Iterator[Connection]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``, so version numbers are handed out one at a time).

        ``durable``: it publishes a version, so its commit waits for the disk (``synchronous=FULL``).
        The index is brought up to date first; the first write of this process checks the artifact root.
        """
        if self.read_only:
            raise read_only(self.location)
        if self.schema != SCHEMA_VERSION:
            self._up_to_date()
        with translated(self.location, self.where), (self._durable if durable else self._writer).begin() as conn:
            if not self.root_checked and self.before_first_write is not None:
                self.before_first_write(conn)
            yield conn
        self.root_checked = True

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with translated(self.location, self.where), self.engine.connect() as conn:
            yield conn

    def _changed(self, conn: Connection, ids: Sequence[int]) -> None:
        if self.on_change is not None and ids:
            self.on_change(conn, list(dict.fromkeys(ids)))

    @staticmethod
    def check_exists(conn: Connection, row: Row) -> None:
        """Refuse a change to a version deleted since it was looked up (in the changing transaction).

        By name and number too: SQLite hands a deleted row's id to the next insert, and a number is
        never handed out twice, so only the same version matches all three. The row stays locked
        (``FOR UPDATE``) until the commit, so changes to one version on a server database queue up.
        """
        same = (versions.c.id == row.id) & (versions.c.name == row.name) & (versions.c.version == row.version)
        if conn.execute(select(versions.c.id).where(same).with_for_update()).first() is None:
            raise gone(row)

    # -- writes -------------------------------------------------------------------------------

    @staticmethod
    def claim_number(conn: Connection, name: str) -> int:
        """Take the next number of ``name`` (its row locked; ``claim_name`` made it): never handed out again.

        Numbers continue after the highest version too, for versions written around the store.
        """
        held = conn.execute(_HELD, {"b_name": name}).one()  # indexed: unpacked, mypy types the columns object
        number = max(int(held[0] or 1), int(held[1] or 0) + 1)
        conn.execute(_NEXT, {"b_name": name, "b_next": number + 1})
        return number

    @staticmethod
    def same_bytes(conn: Connection, name: str, sha256: str) -> int | None:
        """The latest version of ``name`` whose file has this sha256 (asked in the saving transaction)."""
        return conn.execute(_SAME, {"b_name": name, "b_sha": sha256}).scalar()

    @staticmethod
    def high_water(conn: Connection) -> dict[str, int]:
        """The last number each name has handed out (what the store's marker file keeps)."""
        rows = conn.execute(select(names.c.name, names.c.next_version)).all()
        return {r.name: int(r.next_version) - 1 for r in rows if int(r.next_version) > 1}

    @staticmethod
    def claim_name(conn: Connection, name: str, owner: str | None, created_at: str) -> None:
        """Make ``name`` ``owner``'s if nobody holds it; refuse a visitor a name someone else holds.

        The names row is made if missing (``INSERT ... ON CONFLICT DO NOTHING``: two first saves of
        one name on a server database both go on) and then locked (``FOR UPDATE``) until the commit,
        so savers of one name take their numbers one at a time, with no retry that could starve.
        ``owner=None`` (the operator) may add versions under any name; it claims only free ones.
        A name stays claimed when its last version is deleted.
        """
        held = lock_name(conn, name)
        if held is None:
            # Versions without a claim (written around the store, e.g. by SQL) keep their first maker's name.
            oldest = select(versions.c.owner).where(versions.c.name == name).order_by(versions.c.id).limit(1)
            first = conn.execute(oldest).first()
            maker = owner if first is None else first.owner
            insert_new(conn, names, {"name": name, "owner": maker, "created_at": created_at, "next_version": 1})
            held = lock_name(conn, name)
            assert held is not None  # inserted above, or by a transaction that committed it
        if owner is not None and held.owner != owner:
            raise name_taken(name)

    @staticmethod
    def usage(conn: Connection, owner: str | None = None) -> tuple[int, int]:
        """``(versions, stored bytes)`` of one owner, or of the whole store when ``owner`` is None."""
        query = select(func.count(), func.sum(versions.c.stored_bytes))
        if owner is not None:
            query = query.where(versions.c.owner == owner)
        counts = conn.execute(query).one()  # indexed: mypy types an unpacked Core row's columns as object
        return int(counts[0] or 0), int(counts[1] or 0)

    @staticmethod
    def add_stored_bytes(conn: Connection, row_id: int, delta: int) -> None:
        if delta:
            conn.execute(
                update(versions).where(versions.c.id == row_id).values(stored_bytes=versions.c.stored_bytes + delta)
            )

    def name_owner(self, name: str) -> tuple[bool, str | None]:
        """``(claimed, owner)`` of a name (owner None: the operator's, or nobody's when unclaimed)."""
        with self.reading() as conn:
            held = conn.execute(select(names.c.owner).where(names.c.name == name)).first()
        return (False, None) if held is None else (True, held.owner)

    @staticmethod
    def insert_version(conn: Connection, values: dict[str, Any], tag_list: Sequence[str]) -> int:
        key = conn.execute(_INSERT_VERSION, values).inserted_primary_key
        assert key is not None  # an INSERT's result always has one
        if tag_list:
            conn.execute(insert(tags), [{"version_id": key[0], "tag": t} for t in dict.fromkeys(tag_list)])
        return int(key[0])

    def set_alias(self, row: Row, alias: str) -> None:
        """Point the alias at ``row``; both its new and its old version's metadata files are rewritten."""
        with self.writing() as conn:
            lock_name(conn, row.name)  # alias moves of one name queue up (no two inserts of one alias)
            self.check_exists(conn, row)
            where = (aliases.c.name == row.name, aliases.c.alias == alias)
            before = conn.execute(select(aliases.c.version_id).where(*where)).scalar()
            conn.execute(delete(aliases).where(*where))
            conn.execute(insert(aliases).values(name=row.name, alias=alias, version_id=row.id))
            self._changed(conn, [row.id] + ([int(before)] if before is not None else []))

    def remove_alias(self, name: str, alias: str) -> bool:
        with self.writing() as conn:
            lock_name(conn, name)
            where = (aliases.c.name == name, aliases.c.alias == alias)
            holder = conn.execute(select(aliases.c.version_id).where(*where)).scalar()
            conn.execute(delete(aliases).where(*where))
            if holder is not None:
                self._changed(conn, [int(holder)])
            return holder is not None

    def update_tags(self, row: Row, add: Sequence[str] = (), remove: Sequence[str] = ()) -> int:
        """Add and remove tags of one version in ONE transaction; returns how many were removed."""
        with self.writing() as conn:
            self.check_exists(conn, row)  # locks the version: the tags read next stay current until the commit
            held: set[str] = set(conn.scalars(select(tags.c.tag).where(tags.c.version_id == row.id)).all())
            new = [t for t in dict.fromkeys(add) if t not in held and t not in remove]
            removed = 0
            if remove:
                gone_tags = [t for t in dict.fromkeys(remove) if t in held]
                result = conn.execute(delete(tags).where(tags.c.version_id == row.id, tags.c.tag.in_(list(remove))))
                removed = result.rowcount or 0
                self.add_stored_bytes(conn, row.id, -sum(len(t.encode()) for t in gone_tags))
            if new:
                conn.execute(insert(tags), [{"version_id": row.id, "tag": t} for t in new])
                self.add_stored_bytes(conn, row.id, sum(len(t.encode()) for t in new))
            if removed or new:
                self._changed(conn, [row.id])
        return int(removed)

    def set_note(self, row: Row, note: str) -> None:
        with self.writing() as conn:
            self.check_exists(conn, row)
            old = conn.execute(select(versions.c.note).where(versions.c.id == row.id)).scalar() or ""
            conn.execute(update(versions).where(versions.c.id == row.id).values(note=note))
            self.add_stored_bytes(conn, row.id, len(note.encode()) - len(old.encode()))
            self._changed(conn, [row.id])

    def merge_record_section(self, row: Row, section: str, values: dict[str, Any]) -> dict[str, Any]:
        """Merge ``values`` into one section of a version's record (read and write in ONE transaction).

        The record is otherwise written once; this is for facts learned later about the same
        bytes, such as its exports (``{"onnx": {...}, "json": {...}}``).
        """
        with self.writing() as conn:
            locked = select(versions.c.record).where(versions.c.id == row.id).with_for_update()
            text = conn.execute(locked).scalar()  # locked: concurrent merges queue up, none is lost
            if text is None:
                raise gone(row)
            record = json.loads(text)
            merged = dict(record.get(section) or {})
            merged.update(values)
            record[section] = merged
            new_text = json.dumps(record)
            conn.execute(update(versions).where(versions.c.id == row.id).values(record=new_text))
            self.add_stored_bytes(conn, row.id, len(new_text.encode()) - len(text.encode()))
            self._changed(conn, [row.id])
            return merged

    def delete_version(self, row: Row, force: bool) -> None:
        """Remove the row (its files go after the commit: their folder is its own). The name's next
        number is kept, so the number is never handed out again."""
        with self.writing() as conn:
            self.check_exists(conn, row)
            held: Sequence[str] = conn.scalars(select(aliases.c.alias).where(aliases.c.version_id == row.id)).all()
            if held and not force:
                raise ConflictError(
                    f"{row.ref} is aliased as {', '.join('@' + a for a in held)}; remove the alias or delete with force"
                )
            conn.execute(delete(aliases).where(aliases.c.version_id == row.id))
            conn.execute(delete(tags).where(tags.c.version_id == row.id))
            conn.execute(delete(verified_files).where(verified_files.c.version_id == row.id))
            conn.execute(delete(versions).where(versions.c.id == row.id))

    def record_verified(self, row: Row, stamp: str) -> None:
        """Remember that the file of ``row`` hashed to its recorded sha256 while its stat read ``stamp``.

        A read-only store skips it (loads stay correct, only slower), as does one whose artifact root
        is not the index's: a load is a read, and only a write is refused for that."""
        if self.read_only or self.schema != SCHEMA_VERSION:  # an old store is upgraded by a real write only
            return
        with suppress(StoreMismatchError), self.writing() as conn:
            conn.execute(delete(verified_files).where(verified_files.c.version_id == row.id))
            conn.execute(insert(verified_files).values(version_id=row.id, sha256=row.sha256, stamp=stamp))

    def rows_by_id(self, conn: Connection, ids: Sequence[int]) -> list[Row]:
        """Versions by row id, on the caller's connection (inside its transaction)."""
        found: list[Row] = []
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            found += self._attach(conn, conn.execute(select(versions).where(versions.c.id.in_(chunk))).all())
        return found

    # -- reads --------------------------------------------------------------------------------

    def verified_stamp(self, row: Row) -> str | None:
        """The stat recorded when the file of ``row`` last hashed to its sha256 (None if never)."""
        with self.reading() as conn:
            return conn.execute(_STAMP, {"id": row.id, "sha256": row.sha256}).scalar()

    def _attach(self, conn: Connection, rows: Sequence[Any]) -> list[Row]:
        ids = [r.id for r in rows]
        tag_map: dict[int, list[str]] = {i: [] for i in ids}
        alias_map: dict[int, list[str]] = {i: [] for i in ids}
        kinds = {"tag": tag_map, "alias": alias_map}
        for start in range(0, len(ids), 500):
            for link in conn.execute(_LINKS.order_by("label"), {"ids": ids[start : start + 500]}):
                kinds[link.kind][link.version_id].append(link.label)
        return [
            Row(
                **{k: v for k, v in r._mapping.items() if k not in ("record", "stored_bytes")},  # Row's own names
                record_json=r.record,
                tags=tag_map[r.id],
                aliases=alias_map[r.id],
                stored_bytes=int(r.stored_bytes or 0),
            )
            for r in rows
        ]

    def find(self, name: str, version: int | None = None, alias: str | None = None) -> Row | None:
        """One version by number, by alias, or the latest of a name."""
        by = "alias" if alias is not None else "version" if version is not None else "latest"
        values = {"name": name, "version": version, "alias": alias}
        with self.reading() as conn:
            found = conn.execute(find_version(self.schema, by), values).first()
            return self._attach(conn, [found])[0] if found else None

    def _filtered(self, query: Any, name: str | None, tag: str | None, owner: str | None, task: str | None) -> Any:
        if task:
            query = query.where(task_clause(task, self.schema))
        if name:  # name and tag alike: partial and case-insensitive
            query = query.where(contains(versions.c.name, name))
        if tag:
            query = query.where(versions.c.id.in_(select(tags.c.version_id).where(contains(tags.c.tag, tag))))
        if owner:
            query = query.where(versions.c.owner == owner)
        return query

    def rows(
        self,
        name: str | None = None,
        tag: str | None = None,
        sort: str = "created",
        limit: int | None = None,
        offset: int = 0,
        owner: str | None = None,
        descending: bool | None = None,
        task: str | None = None,
    ) -> list[Row]:
        """A page of versions, filtered and sorted in SQL (newest first by default)."""
        if sort not in SORTS:
            raise InvalidParameterError(f"Invalid value {sort!r} for sort: choose one of: " + ", ".join(SORTS))
        if limit is not None and limit < 0:
            raise InvalidParameterError(f"Invalid value {limit!r} for limit: expected an integer >= 0")
        query = self._filtered(select_versions(self.schema), name, tag, owner, task)
        if sort == "name":
            desc = False if descending is None else descending
            name_col = versions.c.name.desc() if desc else versions.c.name.asc()
            query = query.order_by(name_col, versions.c.version.desc())
        else:
            column = sort_column(sort, self.schema)
            desc = True if descending is None else descending
            if desc:
                query = query.order_by(column.desc().nulls_last(), versions.c.id.desc())
            else:
                query = query.order_by(column.asc().nulls_last(), versions.c.id.asc())
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        with self.reading() as conn:
            return self._attach(conn, conn.execute(query).all())

    def count(
        self, name: str | None = None, tag: str | None = None, owner: str | None = None, task: str | None = None
    ) -> int:
        query = self._filtered(select(func.count()).select_from(versions), name, tag, owner, task)
        with self.reading() as conn:
            return int(conn.execute(query).scalar() or 0)

    def totals(self) -> tuple[int, int, int]:
        """``(versions, names, bytes)`` in the whole store: for a status line."""
        query = select(func.count(), func.count(func.distinct(versions.c.name)), func.sum(versions.c.size_bytes))
        with self.reading() as conn:
            counts = conn.execute(query).one()  # indexed, not unpacked: see usage()
            return int(counts[0] or 0), int(counts[1] or 0), int(counts[2] or 0)

    def versions(self, name: str) -> list[int]:
        query = select(versions.c.version).where(versions.c.name == name).order_by(versions.c.version.desc())
        with self.reading() as conn:
            return list(conn.execute(query).scalars())

    def names(self) -> list[str]:
        with self.reading() as conn:
            return list(conn.execute(select(versions.c.name).distinct().order_by(versions.c.name)).scalars())
