"""Schema migrations (Alembic). Every schema change ships as a revision under migrations/versions,
so a user's history survives upgrades. A database already at the newest revision costs one query;
otherwise processes starting together take a lock so only one of them migrates. A new, empty
database gets the models' tables in one transaction and is stamped at the newest revision, as
Alembic's cookbook builds a database from scratch: the same schema (tests/test_store.py compares
the two), without loading Alembic (12 MB) or replaying every revision."""
from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, text
from sqlalchemy.engine import Engine

HEAD = "0009"
MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_KEY = 0x6D6F6E69  # any constant shared by all monitor processes


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def alembic_config(engine: Engine):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


@contextmanager
def _migration_lock(engine: Engine):
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        with open(f"{database}.migrate-lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    elif engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
    else:
        yield


@contextmanager
def schema_transaction(engine: Engine):
    """A connection in one transaction that holds DDL too: pysqlite would commit each CREATE or
    ALTER on its own, so on SQLite it begins explicitly, and a schema change cut short (a full disk,
    a crash) leaves the database as it was, never half-built."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        yield conn


# Alembic's own version table, as `alembic stamp` makes it.
_VERSION_TABLE = Table("alembic_version", MetaData(), Column("version_num", String(32), nullable=False),
                       PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))


def upgrade(engine: Engine, revision: str = "head") -> None:
    if revision == "head" and current(engine) == HEAD:
        return
    with _migration_lock(engine):
        if revision == "head" and current(engine) == HEAD:  # another process did it meanwhile
            return
        if revision == "head" and create(engine):
            return
        from alembic import command

        command.upgrade(alembic_config(engine), revision)


def create(engine: Engine) -> bool:
    """The newest schema in a database that holds none of monitor's tables (nor a version);
    False, touching nothing, when it holds any."""
    from .models import SQLModel

    with schema_transaction(engine) as conn:  # all the tables or none
        if set(inspect(conn).get_table_names()) & {*SQLModel.metadata.tables, _VERSION_TABLE.name}:
            return False
        SQLModel.metadata.create_all(conn)
        _VERSION_TABLE.create(conn)
        conn.execute(_VERSION_TABLE.insert().values(version_num=HEAD))
    return True
