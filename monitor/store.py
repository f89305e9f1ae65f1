"""Persistence: the database (SQLModel rows) plus the snapshot store (content-addressed files).

Snapshot files are written before the rows that name them are committed, and every write that
belongs together (version, change, event, check, target state) is one transaction, so a crash at
any point leaves the history as it was or whole, never half-written.

Store is put together from its parts, one job each: store_targets (the targets and sites tables in
step with the config and discovery), store_claims (one process at a time per target, site or
alert), store_checks (recording a check), store_outbox (the alert outbox); the records they take
and give are in store_types. The reads a check needs are here; every other read is monitor/read.py.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import bindparam, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlmodel import Session, create_engine, select

from . import lease, migrate
from .models import Version
from .results import Earlier
from .snapshots import Snapshots
from .storage import database_name, storage_error
from .store_types import (Attempt, Capture, ClaimLost, Due, Failure, NameTaken,  # noqa: F401  (callers import
                          StoreError, TargetState, Watched)  # these from here)
from .store_checks import CheckRows
from .store_claims import ClaimRows
from .store_outbox import OutboxRows
from .store_targets import TargetRows


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for the database URL, or a StoreError naming the database and the problem (a URL
    no dialect or driver here can open, a SQLite file in a folder that does not exist)."""
    name = database_name(url)
    try:
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[-1]
            if path and path != ":memory:" and not Path(path).parent.is_dir():
                raise StoreError(f"database {name}: the folder {Path(path).parent} does not exist "
                                 "(create it, or correct [monitor] database)")
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(url, pool_pre_ping=True)
    except ArgumentError as exc:
        raise StoreError(f"database {name}: not a database URL monitor can open ({exc}); use "
                         "sqlite:///PATH or postgresql+psycopg://USER@HOST/NAME") from None
    except ImportError as exc:
        raise StoreError(f"database {name}: its driver is not installed ({exc})") from None


# The reads each check makes, built once: building a statement costs more than running it.
_VERSION = select(*Version.__table__.columns).where(Version.id == bindparam("b_vid"))
_EARLIEST = (select(Version.id, Version.seq, Version.first_seen)
             .where(Version.target_id == bindparam("b_tid"), Version.text_sha == bindparam("b_sha"),
                    Version.id.is_distinct_from(bindparam("b_not"))).order_by(Version.seq).limit(1))


def no_alerts(target: str, kind: str, stats: dict, passages: list, site: str | None = None) -> list[tuple[str, bool]]:
    return []


class Store(TargetRows, ClaimRows, CheckRows, OutboxRows):
    """`router(target_name, kind, stats, passages) -> [(channel, priority)]` decides which alert
    channels an event goes to; the alert rows are written in the event's own transaction.

    Open one with Store.open(), which brings the database's schema up to date first; the
    constructor alone touches no table."""

    def __init__(self, database_url: str, snapshots: Snapshots, router=no_alerts, lease_s: float = lease.MIN_LEASE):
        self.url = database_url
        self.router = router
        self.lease_s = lease_s  # how long a claim holds unless renewed (monitor/lease.py)
        self._claimed = False
        self._pending: list[dict] = []  # unchanged checks extending their target's check row
        self._pending_new: list[tuple[TargetState, dict, dict]] = []  # ... starting a new one
        self._batching = False
        self._site_names: dict[int, str] = {}
        self._gone = lease.Gone()
        self.engine = make_engine(database_url)
        self.snapshots = snapshots

    @classmethod
    def open(cls, database_url: str, snapshots: Snapshots, **options) -> "Store":
        """A store whose database has the current schema: migrated first when it is older (or
        new); one query when it is current. Raises StoreError naming the database."""
        store = cls(database_url, snapshots, **options)
        try:
            migrate.upgrade(store.engine)
        except (SQLAlchemyError, OSError) as exc:  # not a database, unreadable, unreachable, disk full
            store.engine.dispose()
            raise StoreError(f"cannot open {storage_error(database_url, exc)}") from exc
        return store

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.flush()
        if self._claimed:
            self.release_all()
        self.engine.dispose()

    def checkpoint(self) -> None:
        """After a writing run: fold SQLite's write-ahead log back into the database file so it
        does not linger at its high-water size. Gives up quickly if another process is busy."""
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA busy_timeout=500")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.exec_driver_sql("PRAGMA busy_timeout=10000")

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # ---- reading what a check needs (everything else a reader wants: monitor/read.py) ----------

    def version(self, version_id: int):
        """One version's columns as a read-only row (the check pipeline's view; no ORM object)."""
        with self.engine.connect() as conn:
            row = conn.execute(_VERSION, {"b_vid": version_id}).first()
        if row is None:
            raise StoreError(f"no version with id {version_id}")
        return row

    def earliest_with_text(self, target_id: int, text_sha: str, exclude_id: int | None) -> Earlier | None:
        """The first version of a target whose text equals text_sha, other than exclude_id."""
        with self.engine.connect() as conn:
            row = conn.execute(_EARLIEST, {"b_tid": target_id, "b_sha": text_sha, "b_not": exclude_id}).first()
        return Earlier(*row) if row else None

