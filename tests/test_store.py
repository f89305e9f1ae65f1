"""The store: migrations match the models, and history survives a killed process."""
from __future__ import annotations

import signal
import sqlite3

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
import pytest
from sqlalchemy import create_engine

import blog
from monitor.migrate import HEAD, alembic_config, current
from monitor.models import SQLModel
from monitor.snapshots import Snapshots
from monitor.store import Store, StoreError
from conftest import checked, daemon_config as config, history, assert_same_schema, wait_for


def test_migrations_create_exactly_the_models_schema(tmp_path):
    migrated = create_engine(f"sqlite:///{tmp_path / 'migrated.db'}")
    command.upgrade(alembic_config(migrated), "head")  # every revision in turn, as an old database
    assert current(migrated) == HEAD == ScriptDirectory.from_config(alembic_config(migrated)).get_current_head()
    with migrated.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"
    # A new database is built from the models in one step: the very schema the revisions build.
    store = Store.open(f"sqlite:///{tmp_path / 'new.db'}", Snapshots(tmp_path / "snapshots"))
    assert current(store.engine) == HEAD
    assert_same_schema(store.engine, migrated)
    store.close()
    migrated.dispose()


def test_a_database_holding_other_tables_is_migrated_not_built_over(tmp_path):
    path = tmp_path / "m.db"
    with sqlite3.connect(path) as db:  # a database from before the version table, say
        db.execute("CREATE TABLE targets (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(StoreError, match=r"m\.db: table targets already exists"):  # the revisions refuse
        Store.open(f"sqlite:///{path}", Snapshots(tmp_path / "s"))
    rows = sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert ("versions",) not in rows, "tables were created over a database that was not empty"


def test_the_constructor_touches_no_table_and_open_migrates(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    bare = Store(url, Snapshots(tmp_path / "s"))
    assert current(bare.engine) is None, "building a Store is not opening the database"
    bare.close()
    store = Store.open(url, Snapshots(tmp_path / "s"))
    assert current(store.engine) == HEAD
    store.close()


def test_opening_twice_does_not_migrate_twice(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Store.open(url, Snapshots(tmp_path / "s")).close()
    Store.open(url, Snapshots(tmp_path / "s")).close()
    rows = sqlite3.connect(tmp_path / "m.db").execute("SELECT version_num FROM alembic_version").fetchall()
    assert rows == [(HEAD,)]


def test_sigkill_mid_run_loses_no_history(server, workspace, daemon_factory):
    names = [f"p{i}" for i in range(12)]
    for i, name in enumerate(names):
        server.set(f"/{name}", blog.post(seed=i))
    workspace.write_config(config(server, names).replace('selector = "article .entry-content, article p"\n', ""))
    daemon = daemon_factory()
    wait_for(lambda: all(checked(workspace, n) for n in names), timeout=30)
    # Keep every page changing so the daemon is writing versions when it is killed.
    for round_ in range(3):
        for i, name in enumerate(names):
            server.set(f"/{name}", blog.post(blog.PARAGRAPHS[: 2 + (i + round_) % 4], seed=100 + round_))
    wait_for(lambda: sum(len(history(workspace, n)["versions"]) for n in names) > len(names) + 3, timeout=30)
    daemon.signal(signal.SIGKILL)
    daemon.proc.wait()

    db = sqlite3.connect(workspace.path / "monitor.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    before = {n: history(workspace, n) for n in names}
    snapshots = Snapshots(workspace.path / "snapshots")
    for name, h in before.items():
        for v in h["versions"]:  # every version the database names can be read back intact
            assert snapshots.get(v["raw_sha256"]) and snapshots.get(v["text_sha256"])
    # No half-written snapshot files are visible under their final names.
    assert not [p for p in (workspace.path / "snapshots").rglob("*.zst") if p.name.startswith(".tmp")]

    restarted = daemon_factory()
    wait_for(lambda: all(history(workspace, n)["checks"][0]["until"] > before[n]["target"]["last_check"]
                         for n in names), timeout=30)
    for name in names:
        after = history(workspace, name)
        old = {v["version"]: v["text_sha256"] for v in before[name]["versions"]}
        assert {v["version"]: v["text_sha256"] for v in after["versions"] if v["version"] in old} == old
    assert restarted.stop() == 0
