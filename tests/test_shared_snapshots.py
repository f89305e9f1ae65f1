"""Shared captures: `snapshots = "database"` (a table of the same database) and `snapshots =
"s3://bucket/prefix"` (a real S3-compatible server, SeaweedFS, on loopback: tests/s3server.py),
each run through the ICE sequence with the real CLI, then read by a second process that shares
nothing with the first but the database and the store, as a worker on another machine would."""
from __future__ import annotations

import hashlib
import sqlite3

import pytest

import blog
import story
from s3server import ACCESS_KEY, SECRET_KEY, s3  # noqa: F401  (the fixture)
from test_postgres import postgres  # noqa: F401  (the fixture)
from conftest import Workspace
from monitor.blobs import DatabaseSnapshots, S3Snapshots
from monitor.config import S3Settings
from monitor.store import make_engine

S3_KEYS = '\n[monitor.s3]\nendpoint = "{endpoint}"\naccess_key = "${{S3_KEY}}"\nsecret_key = "${{S3_SECRET}}"\n'


def _stores(request, tmp_path, monkeypatch):
    """(the [monitor] lines of both workers, a function listing what the store holds)."""
    kind = request.param
    pg = request.getfixturevalue("postgres")
    name = f"shared_{kind.replace('-', '_')}"
    url = pg.create_database(name)
    if kind == "postgres-database":
        return (f'database = "{url}"\nsnapshots = "database"',
                lambda: [r[0] for r in pg.query(name, "SELECT digest FROM blobs")])
    server = request.getfixturevalue("s3")
    bucket = server.bucket("captures")
    # The keys come from the environment, as a user would keep them out of targets.toml.
    monkeypatch.setenv("S3_KEY", ACCESS_KEY)
    monkeypatch.setenv("S3_SECRET", SECRET_KEY)
    return (f'database = "{url}"\nsnapshots = "s3://{bucket}/newsroom/"' + S3_KEYS.format(endpoint=server.endpoint),
            lambda: server.keys(bucket, "newsroom/"))


@pytest.fixture(params=["postgres-database", "s3-on-postgres"])
def shared(request, tmp_path, monkeypatch):
    return _stores(request, tmp_path, monkeypatch)


def test_the_ice_sequence_on_a_shared_store_is_read_by_a_second_worker(shared, server, workspace, tmp_path):
    monitor_lines, held = shared
    history = story.tell(server, workspace, monitor_lines)
    removed = history["by_kind"]["removed"]
    assert any(blog.ICE in p["removed"] for p in removed["passages"]), removed

    # Every capture and text went to the shared store, none to a folder beside the config.
    digests = {v[key] for v in history["versions"] for key in ("raw_sha256", "text_sha256")}
    stored = held()
    assert {s.rsplit("/", 1)[-1].removesuffix(".zst") for s in stored} >= digests, (stored, digests)
    assert not (workspace.path / "snapshots").exists() and not (workspace.path / "database").exists()

    # A second worker: its own folder (nothing on disk in common), the same database and store,
    # another process. It reads every version the first one wrote.
    other = Workspace(tmp_path / "machine-b")
    other.path.mkdir()
    other.write_config(story.config(server, monitor_lines))
    shown = other.subprocess("show", story.NAME, "1")
    assert shown.returncode == 0, shown.stderr
    assert blog.ICE in shown.stdout
    diff = other.subprocess("diff", story.NAME, "1", "2")
    assert diff.returncode == 0 and "facial recognition and identification" in diff.stdout, diff.stdout + diff.stderr

    # ...and when it checks, it compares with the first worker's capture: unchanged, no new version.
    server.set("/post", blog.post(story.EDITED, seed=9))
    checked = other.subprocess("check", story.NAME)
    assert checked.returncode == 0 and "unchanged" in checked.stdout, checked.stdout + checked.stderr
    assert not (other.path / "snapshots").exists()


def test_the_database_store_on_sqlite_and_a_damaged_blob_reported_not_shown(server, workspace, tmp_path):
    """The same sequence on SQLite, another process reading it; then a blob overwritten in the
    table: every read is checked against its digest, so `show` names the snapshot as damaged."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    story.tell(server, workspace, f'database = "{url}"\nsnapshots = "database"')
    assert not (workspace.path / "snapshots").exists()
    shown = workspace.subprocess("show", story.NAME, "1")
    assert shown.returncode == 0 and blog.ICE in shown.stdout, shown.stderr
    version = workspace.json("history", story.NAME)["versions"][-1]
    with sqlite3.connect(tmp_path / "m.db") as db:  # another capture's payload under v1's text's name
        db.execute("UPDATE blobs SET data = (SELECT data FROM blobs WHERE digest != ? LIMIT 1) WHERE digest = ?",
                   (version["text_sha256"], version["text_sha256"]))
    result = workspace.run("show", story.NAME, "1", expect=1)
    assert f"snapshot {version['text_sha256'][:12]}" in result.output and "damaged" in result.output, result.output


def test_database_store_keeps_each_digest_once_and_deltas_against_a_base(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    from monitor import migrate

    migrate.upgrade(engine)
    one, two = DatabaseSnapshots(engine), DatabaseSnapshots(engine)  # two workers
    page = blog.post(seed=1).encode()
    edited = blog.post([p for p in blog.PARAGRAPHS if p != blog.ICE], seed=1).encode()
    first = one.put(page)
    assert two.put(page) == first  # the same digest again: no error, one row
    second = two.put(edited, base=first)
    assert one.get(second) == edited and two.base_of(second) == first
    rows = sqlite3.connect(tmp_path / "m.db").execute("SELECT digest, length(data) FROM blobs").fetchall()
    assert sorted(d for d, _ in rows) == sorted([first, second])
    assert dict(rows)[second] < len(edited) / 10, "an edit costs a delta, not a whole page"
    with pytest.raises(Exception, match="is missing from the blobs table"):
        one.get(hashlib.sha256(b"never stored").hexdigest())


def test_unreachable_object_storage_fails_the_check_and_keeps_the_history(server, workspace, tmp_path, monkeypatch):
    """A bucket that does not answer is a storage failure like a full disk: the check says it
    could not save (exit 1, naming the store), nothing half-written is recorded, and the next
    check, once the store is back, records the version."""
    import socket

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    monkeypatch.setenv("S3_KEY", "k")
    monkeypatch.setenv("S3_SECRET", "s")
    monkeypatch.setattr("monitor.blobs.S3_TIMEOUT", 1.0)
    monkeypatch.setattr("monitor.blobs.S3_ATTEMPTS", 1)
    server.set("/post", blog.post(seed=0))
    server.set("/press", story.PRESS)
    workspace.write_config(story.config(server, 'snapshots = "s3://captures/x"'
                                        + S3_KEYS.format(endpoint=f"http://127.0.0.1:{dead}")))
    result = workspace.run("check", story.NAME, expect=1)
    assert f"{story.NAME}: ERROR could not save this check: s3://captures/x/" in result.output, result.output
    history = workspace.json("history", story.NAME)
    assert history["versions"] == [] and history["checks"][0]["outcome"] == "error"


def test_s3_store_reads_back_ranges_and_reports_missing(s3):  # noqa: F811
    bucket = s3.bucket("unit")
    store = S3Snapshots(bucket, "p", S3Settings(endpoint=s3.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY))
    page = blog.post(seed=3).encode()
    first = store.put(page)
    second = store.put(blog.post(seed=3).encode().replace(b"proud", b"honored"), base=first)
    assert store.base_of(second) == first and store.base_of(first) is None  # (a ranged GET of the header)
    assert s3.keys(bucket) == sorted(f"p/{d[:2]}/{d}.zst" for d in (first, second))
    assert store.size() > 0
    with pytest.raises(Exception, match=f"is missing from s3://{bucket}/p"):
        store.get(hashlib.sha256(b"never stored").hexdigest())


def test_a_bad_s3_address_is_a_config_error_naming_file_and_key(workspace):
    workspace.write_config('[monitor]\nsnapshots = "s3://Bad_Bucket/captures"\n')
    result = workspace.run("targets", expect=2)
    assert f"config error: {workspace.config}" in result.output
    assert "key 'snapshots': bad S3 address 's3://Bad_Bucket/captures'" in result.output, result.output
