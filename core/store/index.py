"""The metadata index: one row per model version, plus tags and aliases, through SQLAlchemy.

A SQLite file inside the store folder by default; any SQLAlchemy URL otherwise. The columns
that lists sort and filter on are real, indexed columns, so the first page of 10,000 versions
is one indexed query with ``LIMIT``; the full record rides along as JSON and is parsed only
for the rows shown. Listing never opens a model file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError as SAIntegrityError
from sqlalchemy.exc import OperationalError

from core.errors import ConflictError, InvalidParameterError, NotFoundError
from core.record import VersionRecord, stored_bytes

SCHEMA_VERSION = 2  # 2: names (who owns a name) and versions.stored_bytes
SORTS = ("created", "accuracy", "name")

metadata_obj = MetaData()

versions = Table(
    "versions",
    metadata_obj,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("format", String(16), nullable=False),
    Column("path", Text, nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("estimator", String(200)),
    Column("accuracy", Float),
    Column("sklearn_version", String(40)),
    Column("origin", String(16), nullable=False, default="trained"),
    Column("owner", String(64)),
    Column("note", Text, nullable=False, default=""),
    Column("record", Text, nullable=False),
    # Every byte kept for the version: model file, evaluation set, export files, record, note, tags.
    Column("stored_bytes", Integer, nullable=False, default=0, server_default="0"),
    UniqueConstraint("name", "version", name="uq_name_version"),
)
Index("ix_versions_created", versions.c.created_at, versions.c.id)
Index("ix_versions_accuracy", versions.c.accuracy, versions.c.id)
Index("ix_versions_owner", versions.c.owner)

tags = Table(
    "tags",
    metadata_obj,
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(64), primary_key=True),
)
Index("ix_tags_tag", tags.c.tag)

aliases = Table(
    "aliases",
    metadata_obj,
    Column("name", String(128), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), nullable=False),
)
Index("ix_aliases_version", aliases.c.version_id)

#: A model file's stat at the moment its sha256 was last verified in full (core.store.artifacts.stamp_of):
#: while the file's stat is unchanged, a load need not hash it again.
verified_files = Table(
    "verified_files",
    metadata_obj,
    Column("version_id", Integer, ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("stamp", String(200), nullable=False),
)

#: Who owns a name: whoever made its first version (NULL: the operator). Its aliases go with it.
#: Claimed in the transaction that inserts the first version; released when the last one goes.
names = Table(
    "names",
    metadata_obj,
    Column("name", String(128), primary_key=True),
    Column("owner", String(64)),
    Column("created_at", String(40), nullable=False),
)
Index("ix_names_owner", names.c.owner)

store_info = Table(
    "store_info",
    metadata_obj,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


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


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Own the transactions (so writers can BEGIN IMMEDIATE), let readers run beside a writer
    # (WAL) and let concurrent writers wait for each other instead of failing.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")


def _upgrade_to_2(conn: Connection) -> None:
    """Schema 1 -> 2, in place and in the caller's write transaction: count every version's bytes,
    and give each name to the owner of its oldest surviving version (the only trace of who made it)."""
    if "stored_bytes" not in {c["name"] for c in inspect(conn).get_columns("versions")}:
        conn.execute(text("ALTER TABLE versions ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0"))
    tag_map: dict[int, list[str]] = {}
    for link in conn.execute(select(tags.c.version_id, tags.c.tag)):  # by name, not unpacked: see usage()
        tag_map.setdefault(link.version_id, []).append(link.tag)
    for row in conn.execute(select(versions.c.id, versions.c.record, versions.c.note)).all():
        size = stored_bytes(json.loads(row.record), row.record, row.note or "", tag_map.get(row.id, []))
        conn.execute(update(versions).where(versions.c.id == row.id).values(stored_bytes=size))
    first = select(func.min(versions.c.id)).group_by(versions.c.name)
    claimed = select(names.c.name)
    rows = conn.execute(
        select(versions.c.name, versions.c.owner, versions.c.created_at).where(
            versions.c.id.in_(first), versions.c.name.not_in(claimed)
        )
    ).all()
    if rows:
        conn.execute(insert(names), [{"name": n, "owner": o, "created_at": c} for n, o, c in rows])


class MetadataIndex:
    """Reads and writes of the metadata index. Writes happen inside ``writing()`` transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)
        self._writer = self.engine.execution_options(write=True)
        self._create()

    def _create(self) -> None:
        for attempt in range(5):
            try:
                with self._writer.begin() as conn:
                    had_versions = inspect(conn).has_table("versions")
                    metadata_obj.create_all(conn)
                    found = conn.execute(select(store_info.c.value).where(store_info.c.key == "schema")).scalar()
                    if found is None:
                        conn.execute(insert(store_info).values(key="schema", value=str(SCHEMA_VERSION)))
                    elif had_versions and int(found) < SCHEMA_VERSION:
                        _upgrade_to_2(conn)
                        conn.execute(
                            update(store_info).where(store_info.c.key == "schema").values(value=str(SCHEMA_VERSION))
                        )
                return
            except (OperationalError, SAIntegrityError):
                if attempt == 4:
                    raise

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``, so version numbers are handed out one at a time)."""
        with self._writer.begin() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    # -- writes -------------------------------------------------------------------------------

    @staticmethod
    def next_version(conn: Connection, name: str) -> int:
        current = conn.execute(select(func.max(versions.c.version)).where(versions.c.name == name)).scalar()
        return int(current or 0) + 1

    @staticmethod
    def claim_name(conn: Connection, name: str, owner: str | None, created_at: str) -> None:
        """Make ``name`` ``owner``'s if nobody holds it; refuse a visitor a name someone else holds.

        ``owner=None`` (the operator) may add versions under any name; it claims only free ones.
        """
        held = conn.execute(select(names.c.owner).where(names.c.name == name)).first()
        if held is None:
            # Versions without a claim (written around the store, e.g. by SQL) keep their first maker's name.
            oldest = select(versions.c.owner).where(versions.c.name == name).order_by(versions.c.id).limit(1)
            held = conn.execute(oldest).first()
            try:
                conn.execute(
                    insert(names).values(name=name, owner=owner if held is None else held.owner, created_at=created_at)
                )
            except SAIntegrityError as exc:  # a server database: another transaction claimed it first
                raise name_taken(name) from exc
        if held is not None and owner is not None and held.owner != owner:
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
        key = conn.execute(insert(versions).values(**values)).inserted_primary_key
        assert key is not None  # an INSERT's result always has one
        if tag_list:
            conn.execute(insert(tags), [{"version_id": key[0], "tag": t} for t in dict.fromkeys(tag_list)])
        return int(key[0])

    def set_alias(self, row: Row, alias: str) -> None:
        with self.writing() as conn:
            conn.execute(delete(aliases).where(aliases.c.name == row.name, aliases.c.alias == alias))
            conn.execute(insert(aliases).values(name=row.name, alias=alias, version_id=row.id))

    def remove_alias(self, name: str, alias: str) -> bool:
        with self.writing() as conn:
            result = conn.execute(delete(aliases).where(aliases.c.name == name, aliases.c.alias == alias))
            return bool(result.rowcount)

    def update_tags(self, row: Row, add: Sequence[str] = (), remove: Sequence[str] = ()) -> int:
        """Add and remove tags of one version in ONE transaction; returns how many were removed."""
        new = [t for t in dict.fromkeys(add) if t not in row.tags and t not in remove]
        with self.writing() as conn:
            removed = 0
            if remove:
                gone = [t for t in dict.fromkeys(remove) if t in row.tags]
                result = conn.execute(delete(tags).where(tags.c.version_id == row.id, tags.c.tag.in_(list(remove))))
                removed = result.rowcount or 0
                self.add_stored_bytes(conn, row.id, -sum(len(t.encode()) for t in gone))
            if new:
                conn.execute(insert(tags), [{"version_id": row.id, "tag": t} for t in new])
                self.add_stored_bytes(conn, row.id, sum(len(t.encode()) for t in new))
        return int(removed)

    def set_note(self, row: Row, note: str) -> None:
        with self.writing() as conn:
            old = conn.execute(select(versions.c.note).where(versions.c.id == row.id)).scalar() or ""
            conn.execute(update(versions).where(versions.c.id == row.id).values(note=note))
            self.add_stored_bytes(conn, row.id, len(note.encode()) - len(old.encode()))

    def merge_record_section(self, row: Row, section: str, values: dict[str, Any]) -> dict[str, Any]:
        """Merge ``values`` into one section of a version's record (read and write in ONE transaction).

        The record is otherwise written once; this is for facts learned later about the same
        bytes, such as its exports (``{"onnx": {...}, "json": {...}}``).
        """
        with self.writing() as conn:
            text = conn.execute(select(versions.c.record).where(versions.c.id == row.id)).scalar()
            if text is None:
                raise NotFoundError(f"{row.ref} is no longer in the store")
            record = json.loads(text)
            merged = dict(record.get(section) or {})
            merged.update(values)
            record[section] = merged
            new_text = json.dumps(record)
            conn.execute(update(versions).where(versions.c.id == row.id).values(record=new_text))
            self.add_stored_bytes(conn, row.id, len(new_text.encode()) - len(text.encode()))
            return merged

    def delete_version(self, row: Row, force: bool) -> None:
        with self.writing() as conn:
            held: Sequence[str] = conn.scalars(select(aliases.c.alias).where(aliases.c.version_id == row.id)).all()
            if held and not force:
                raise ConflictError(
                    f"{row.ref} is aliased as {', '.join('@' + a for a in held)}; remove the alias or delete with force"
                )
            conn.execute(delete(aliases).where(aliases.c.version_id == row.id))
            conn.execute(delete(tags).where(tags.c.version_id == row.id))
            conn.execute(delete(verified_files).where(verified_files.c.version_id == row.id))
            conn.execute(delete(versions).where(versions.c.id == row.id))
            left = conn.execute(select(func.count()).where(versions.c.name == row.name)).scalar()
            if not left:  # the last version gone: the name is free again
                conn.execute(delete(names).where(names.c.name == row.name))

    def record_verified(self, row: Row, stamp: str) -> None:
        """Remember that the file of ``row`` hashed to its recorded sha256 while its stat read ``stamp``."""
        with self.writing() as conn:
            conn.execute(delete(verified_files).where(verified_files.c.version_id == row.id))
            conn.execute(insert(verified_files).values(version_id=row.id, sha256=row.sha256, stamp=stamp))

    # -- reads --------------------------------------------------------------------------------

    def verified_stamp(self, row: Row) -> str | None:
        """The stat recorded when the file of ``row`` last hashed to its sha256 (None if never)."""
        query = select(verified_files.c.stamp).where(
            verified_files.c.version_id == row.id, verified_files.c.sha256 == row.sha256
        )
        with self.reading() as conn:
            return conn.execute(query).scalar()

    def _attach(self, conn: Connection, rows: Sequence[Any]) -> list[Row]:
        ids = [r.id for r in rows]
        tag_map: dict[int, list[str]] = {i: [] for i in ids}
        alias_map: dict[int, list[str]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for link in conn.execute(
                select(tags.c.version_id, tags.c.tag).where(tags.c.version_id.in_(chunk)).order_by(tags.c.tag)
            ):
                tag_map[link.version_id].append(link.tag)
            for link in conn.execute(
                select(aliases.c.version_id, aliases.c.alias)
                .where(aliases.c.version_id.in_(chunk))
                .order_by(aliases.c.alias)
            ):
                alias_map[link.version_id].append(link.alias)
        return [
            Row(
                id=r.id,
                name=r.name,
                version=r.version,
                created_at=r.created_at,
                format=r.format,
                path=r.path,
                size_bytes=r.size_bytes,
                sha256=r.sha256,
                estimator=r.estimator,
                accuracy=r.accuracy,
                sklearn_version=r.sklearn_version,
                origin=r.origin,
                owner=r.owner,
                note=r.note,
                record_json=r.record,
                tags=tag_map[r.id],
                aliases=alias_map[r.id],
                stored_bytes=int(r.stored_bytes or 0),
            )
            for r in rows
        ]

    def find(self, name: str, version: int | None = None, alias: str | None = None) -> Row | None:
        """One version by number, by alias, or the latest of a name."""
        query = select(versions)
        if alias is not None:
            query = query.join(aliases, aliases.c.version_id == versions.c.id).where(
                aliases.c.name == name, aliases.c.alias == alias
            )
        elif version is not None:
            query = query.where(versions.c.name == name, versions.c.version == version)
        else:
            query = query.where(versions.c.name == name).order_by(versions.c.version.desc()).limit(1)
        with self.reading() as conn:
            found = conn.execute(query).first()
            return self._attach(conn, [found])[0] if found else None

    def _filtered(self, query: Any, name: str | None, tag: str | None, owner: str | None) -> Any:
        if name:
            escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(versions.c.name.like(f"%{escaped}%", escape="\\"))
        if tag:
            query = query.where(versions.c.id.in_(select(tags.c.version_id).where(tags.c.tag == tag)))
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
    ) -> list[Row]:
        """A page of versions, filtered and sorted in SQL (newest first by default)."""
        if sort not in SORTS:
            raise InvalidParameterError(f"Invalid value {sort!r} for sort: choose one of: " + ", ".join(SORTS))
        if limit is not None and limit < 0:
            raise InvalidParameterError(f"Invalid value {limit!r} for limit: expected an integer >= 0")
        query = self._filtered(select(versions), name, tag, owner)
        if sort == "name":
            desc = False if descending is None else descending
            name_col = versions.c.name.desc() if desc else versions.c.name.asc()
            query = query.order_by(name_col, versions.c.version.desc())
        else:
            column = versions.c.created_at if sort == "created" else versions.c.accuracy
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

    def count(self, name: str | None = None, tag: str | None = None, owner: str | None = None) -> int:
        query = self._filtered(select(func.count()).select_from(versions), name, tag, owner)
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
