"""The store on PostgreSQL, as a user would run it: `database = "postgresql+psycopg://..."` in
targets.toml, the real `monitor` command, a real PostgreSQL server started for this module (a
throwaway cluster in a temporary folder, listening on 127.0.0.1 only, trust authentication), and the
real HTTP server from conftest.

The server binaries (initdb, pg_ctl) are taken from PATH, else from Debian's
/usr/lib/postgresql/<version>/bin (tests/run.sh installs them when missing). PostgreSQL refuses
to run as root, so when the tests run as root the cluster is run as the `postgres` system user.
Any failure to start the server fails the tests: it is never a skip."""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import blog
from conftest import assert_same_schema

PG_USER = "postgres"  # the cluster's superuser, and the system user that runs it when we are root
# A server time zone far from UTC, as a user's server may well have: times must still come out UTC.
PG_TIMEZONE = "Asia/Kolkata"


def _pg_binaries() -> tuple[str, str]:
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl

    def version(bindir: str) -> tuple[int, ...]:
        name = Path(bindir).parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    for bindir in sorted((str(Path(p).parent) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
                         key=version, reverse=True):
        if os.access(os.path.join(bindir, "pg_ctl"), os.X_OK):
            return os.path.join(bindir, "initdb"), os.path.join(bindir, "pg_ctl")
    pytest.fail("PostgreSQL server binaries not found: no initdb/pg_ctl on PATH nor in "
                "/usr/lib/postgresql/*/bin (install Debian's `postgresql` package; tests/run.sh does)",
                pytrace=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL cluster. `url(db)` is what a user writes in targets.toml."""

    def __init__(self):
        import psycopg  # noqa: F401  (fail here, clearly, if the driver is missing)

        self.initdb, self.pg_ctl = _pg_binaries()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self.owner = pwd.getpwnam(PG_USER)
            except KeyError:
                pytest.fail(f"running as root and there is no {PG_USER!r} system user to run PostgreSQL as "
                            "(Debian's `postgresql` package creates it)", pytrace=False)
        # A folder of its own in the system temp dir: pytest's tmp_path lives under a folder only
        # root may enter, which the postgres user could not reach.
        self.dir = Path(tempfile.mkdtemp(prefix="monitor-pg-"))
        if self.as_root:
            os.chown(self.dir, self.owner.pw_uid, self.owner.pw_gid)
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port: int | None = None
        self.started = False

    # ---- running the server binaries -------------------------------------------------------

    def _run(self, what: str, *cmd: str, timeout: float = 120) -> str:
        if self.as_root:
            cmd = ("runuser", "-u", PG_USER, "--", *cmd) if shutil.which("runuser") else \
                  ("su", PG_USER, "-s", "/bin/sh", "-c", " ".join(map(_shell_quote, cmd)))
        try:
            done = subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True, timeout=timeout,
                                  env=dict(os.environ, LC_ALL="C", TZ="UTC"))
        except (OSError, subprocess.TimeoutExpired) as exc:
            pytest.fail(f"PostgreSQL fixture: {what} failed: {exc}\n{self._log_tail()}", pytrace=False)
        if done.returncode != 0:
            pytest.fail(f"PostgreSQL fixture: {what} failed (exit {done.returncode}): {' '.join(cmd)}\n"
                        f"{done.stdout}{done.stderr}{self._log_tail()}", pytrace=False)
        return done.stdout

    def _log_tail(self) -> str:
        try:
            return "\nserver log:\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""

    def start(self) -> None:
        self._run("initdb", self.initdb, "-D", str(self.data), "-U", PG_USER, "--auth=trust",
                  "--no-locale", "--encoding=UTF8", "--no-sync")
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.dir}'",
            "timezone": f"'{PG_TIMEZONE}'",
            "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
            "max_connections": "50",
        }
        for attempt in range(3):  # the free port may be taken between finding it and binding it
            self.port = _free_port()
            conf = dict(settings, port=str(self.port))
            with open(self.data / "postgresql.auto.conf", "w") as handle:
                handle.write("".join(f"{key} = {value}\n" for key, value in conf.items()))
            if self.as_root:
                os.chown(self.data / "postgresql.auto.conf", self.owner.pw_uid, self.owner.pw_gid)
            try:
                self._run("pg_ctl start", self.pg_ctl, "-D", str(self.data), "-l", str(self.log),
                          "-w", "-t", "60", "start")
            except pytest.fail.Exception:
                if attempt == 2 or "could not bind" not in self._log_tail():
                    raise
                continue
            self.started = True
            return

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl stop", self.pg_ctl, "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
                self.started = False
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- using it ----------------------------------------------------------------------------

    def connect(self, dbname: str = "postgres"):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=PG_USER, dbname=dbname, autocommit=True,
                               connect_timeout=10)

    def create_database(self, name: str) -> str:
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{dbname}"

    def query(self, dbname: str, sql: str, *params):
        with self.connect(dbname) as conn:
            return conn.execute(sql, params or None).fetchall()


def _shell_quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def upgrades(monkeypatch):
    """Counts the times the schema is actually built or migrated (monitor.migrate builds a new
    database's tables, or runs alembic's command.upgrade, only when the database is not at HEAD)."""
    from alembic import command

    from monitor import migrate

    calls = []
    real_upgrade, real_create = command.upgrade, migrate.create

    def counting_upgrade(*args, **kwargs):
        calls.append(threading.current_thread().name)
        return real_upgrade(*args, **kwargs)

    def counting_create(engine):
        built = real_create(engine)
        if built:
            calls.append(threading.current_thread().name)
        return built

    monkeypatch.setattr(command, "upgrade", counting_upgrade)
    monkeypatch.setattr(migrate, "create", counting_create)
    return calls


# ---- the core sequence through the CLI -----------------------------------------------------

CONFIG = """
[monitor]
database = "{database}"
retries = 0
calibrate = false

[[targets]]
name = "azure-gov-ice-post"
url = "{url}"
selector = "article .entry-content"
"""
NAME = "azure-gov-ice-post"


def parse_time(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def test_core_sequence_on_postgresql(postgres, server, workspace, upgrades):
    from monitor import migrate

    database = postgres.create_database("monitor_cli")
    server.set("/post", blog.post(seed=0))
    workspace.write_config(CONFIG.format(database=database, url=server.url("/post")))
    started = datetime.now(timezone.utc).replace(microsecond=0)

    # v1: the first check creates the schema (once) and the first version.
    out = workspace.run("check").stdout
    assert "v1 first" in out, out
    assert len(upgrades) == 1
    assert postgres.query("monitor_cli", "SELECT version_num FROM alembic_version") == [(migrate.HEAD,)]
    assert {r[0] for r in postgres.query(
        "monitor_cli", "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")} >= {
        "alembic_version", "targets", "versions", "changes", "checks", "events"}
    # Times are stored as timestamptz, so the server's own time zone cannot shift them.
    assert postgres.query("monitor_cli", "SELECT data_type FROM information_schema.columns "
                          "WHERE table_name = 'versions' AND column_name = 'first_seen'") == [
        ("timestamp with time zone",)]

    # Same article, different chrome: unchanged, no new version.
    server.set("/post", blog.post(seed=1))
    assert "unchanged" in workspace.run("check").stdout

    # v2: the ICE paragraph removed.
    server.set("/post", blog.post([p for p in blog.PARAGRAPHS if p != blog.ICE], seed=2))
    out = workspace.run("check").stdout
    assert "v2 removed" in out, out
    removal = workspace.json("history", NAME)["changes"][0]
    assert removal["kind"] == "removed" and (removal["from_version"], removal["to_version"]) == (1, 2)
    assert removal["stats"]["blocks_removed"] == 1 and removal["stats"]["words_added"] == 0
    assert any("facial recognition and identification" in p["removed"] for p in removal["passages"])

    # v3: the paragraph put back — a restore naming version 1.
    server.set("/post", blog.post(seed=3))
    out = workspace.run("check").stdout
    assert "v3 restored" in out, out

    # Unchanged checks: the same body again (a 304 to the conditional request), then new chrome;
    # the second extends the first's check row (the batched executemany path).
    for seed in (3, 4):
        server.set("/post", blog.post(seed=seed))
        out = workspace.run("check").stdout
        assert "unchanged" in out and "ERROR" not in out, out

    h = workspace.json("history", NAME)
    assert [c["kind"] for c in reversed(h["changes"])] == ["first", "removed", "restored"]
    assert [e["kind"] for e in reversed(h["events"])] == ["first", "removed", "restored"]
    restore = h["changes"][0]
    assert restore["kind"] == "restored" and restore["restored_version"] == 1
    assert (restore["from_version"], restore["to_version"]) == (2, 3)
    assert [v["version"] for v in h["versions"]] == [3, 2, 1]
    assert h["versions"][0]["text_sha256"] == h["versions"][-1]["text_sha256"]
    assert [v["times_seen"] for v in h["versions"]] == [3, 1, 2]
    assert [(c["outcome"], c["count"]) for c in h["checks"]] == [
        ("unchanged", 2), ("changed", 1), ("changed", 1), ("unchanged", 1), ("first", 1)]
    assert h["checks"][0]["http_status"] == 200  # the last one (new chrome) was a full 200
    assert h["target"]["status"] == "ok" and h["target"]["versions"] == 3 and h["target"]["changes"] == 2

    # Times come out in UTC although the server's time zone is not UTC.
    finished = datetime.now(timezone.utc) + timedelta(seconds=1)
    first_seen = parse_time(h["versions"][-1]["first_seen"])
    assert started <= first_seen <= finished, (started, first_seen, finished)
    assert first_seen.strftime("%Y-%m-%d %H:%M") in restore["summary"], restore["summary"]
    for when in (h["target"]["last_check"], h["target"]["last_change"], h["checks"][0]["until"]):
        assert started <= parse_time(when) <= finished, (started, when, finished)
    assert parse_time(h["target"]["next_due"]) > finished

    # The other reading commands work on it too.
    assert [t["name"] for t in workspace.json("targets")] == [NAME]
    assert [-1, blog.ICE + "\n"] in workspace.json("diff", NAME, "1", "2")["ops"]
    assert blog.ICE in workspace.json("show", NAME, "3")["blocks"]
    # The hash chain holds on PostgreSQL's timestamps too (docs/evidence.md).
    assert f"{NAME}: intact: 3 versions, 6 files re-hashed" in workspace.run("verify", NAME).stdout

    # Every command after the first opened the already-migrated database without migrating again.
    assert len(upgrades) == 1
    assert postgres.query("monitor_cli", "SELECT version_num FROM alembic_version") == [(migrate.HEAD,)]
    assert postgres.query("monitor_cli", "SELECT count(*) FROM versions") == [(3,)]


# ---- migrations: two processes opening a fresh database at once ----------------------------

def test_concurrent_first_open_migrates_once(postgres, tmp_path, upgrades, monkeypatch):
    """Two Store.open()s of a fresh database together both succeed; the advisory lock makes one
    of them wait while the other migrates, and the waiter then finds the schema at HEAD."""
    from monitor import migrate
    from monitor.snapshots import Snapshots
    from monitor.store import Store

    url = postgres.create_database("monitor_concurrent")
    # Hold the schema's building open a moment so both threads are surely past the unlocked first look.
    counting = migrate.create

    def slow_create(engine):
        time.sleep(0.5)
        return counting(engine)

    monkeypatch.setattr(migrate, "create", slow_create)
    locked = []
    real_lock = migrate._migration_lock

    def recording_lock(engine):
        locked.append(threading.current_thread().name)
        return real_lock(engine)

    monkeypatch.setattr(migrate, "_migration_lock", recording_lock)

    barrier = threading.Barrier(2)
    stores, errors = {}, {}

    def open_store(name):
        try:
            barrier.wait(timeout=30)
            stores[name] = Store.open(url, Snapshots(tmp_path / name))
        except BaseException as exc:  # reported below
            errors[name] = exc

    threads = [threading.Thread(target=open_store, args=(n,), name=n) for n in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert not any(t.is_alive() for t in threads), "a Store.open() did not return (lock never released?)"
        assert not errors, errors
        assert sorted(stores) == ["first", "second"]
        assert sorted(locked) == ["first", "second"], "both threads were meant to reach the lock"
        assert len(upgrades) == 1, upgrades  # the waiter saw HEAD once it had the lock
        assert postgres.query("monitor_concurrent", "SELECT version_num FROM alembic_version") == [(migrate.HEAD,)]
        for store in stores.values():
            assert migrate.current(store.engine) == migrate.HEAD
        # The lock is released: nobody holds monitor's advisory lock any more.
        assert postgres.query("monitor_concurrent", "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") \
            == [(0,)]
    finally:
        for store in stores.values():
            store.close()


def test_a_new_postgresql_database_has_the_schema_the_revisions_build(postgres, tmp_path):
    from alembic import command
    from sqlalchemy import create_engine

    from monitor import migrate
    from monitor.snapshots import Snapshots
    from monitor.store import Store

    migrated = create_engine(postgres.create_database("monitor_replayed"))
    command.upgrade(migrate.alembic_config(migrated), "head")  # every revision in turn
    store = Store.open(postgres.create_database("monitor_built"), Snapshots(tmp_path / "s"))
    try:
        assert_same_schema(store.engine, migrated)
        assert migrate.current(store.engine) == migrate.current(migrated) == migrate.HEAD
    finally:
        store.close()
        migrated.dispose()


def test_a_whole_site_on_postgresql(postgres, server, workspace):
    """Discovery, new posts, a moved post and the pace on PostgreSQL, as on SQLite."""
    from sitegen_blog import Blog
    from test_sites import ICE, config, paragraphs, targets

    database = postgres.create_database("monitor_sites")
    blog = Blog(server)
    blog.feed_size = 10
    blog.add("azure-gov-2018", "Federal agencies", paragraphs("Azure") + [ICE], days_ago=400)
    blog.add("teams-update", "Teams update", paragraphs("Teams"), days_ago=2)
    workspace.write_config(config(blog, extra=f'retries = 0\ndatabase = "{database}"'))
    assert "2 posts listed, 2 new" in workspace.run("check").output

    post = blog.posts["teams-update"]
    blog.posts["teams-update-2026"] = type(post)("teams-update-2026", post.title, post.paragraphs, post.published)
    post.moved_to = "teams-update-2026"
    blog.add("new-policy", "Our new policy", paragraphs("policy"), days_ago=0)
    workspace.run("check", "--discover")
    workspace.run("check")
    watched = targets(workspace)
    assert sorted(watched) == ["corp-azure-gov-2018", "corp-new-policy", "corp-teams-update"]
    assert watched["corp-teams-update"]["url"] == blog.url("/blog/teams-update-2026/")
    assert watched["corp-azure-gov-2018"]["interval_s"] == 86400
    assert [e["kind"] for e in workspace.json("history", "corp-new-policy")["events"]] == ["new_post"]
    site = workspace.json("sites")[0]
    assert (site["posts"], site["duplicates"], site["status"]) == (3, 1, "ok")
