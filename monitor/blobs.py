"""Where snapshots live when several workers on several machines share them: `[monitor] snapshots`
names a folder (the file store, monitor/snapshots.py), "database" (a table of the same database)
or "s3://bucket/prefix" (S3-compatible object storage). All three hold the same payloads (zstd
frames and deltas, by the SHA-256 of their content) behind the same interface: only where a
payload is read and written differs.

A payload is written before the rows that name it are committed, in every store, so a crash
never leaves a version whose capture is missing. Writers on several machines may put the same
digest at once: the database keeps the first (the others' inserts do nothing), a bucket the
last; both decode to the same bytes, and every read is checked against the digest.
"""
from __future__ import annotations

import errno
import re
import threading
from typing import NamedTuple

from .snapshots import _HEADER_LEN, SnapshotError, Snapshots

DATABASE = "database"
S3_TIMEOUT = 30.0  # seconds to connect, and to wait for an answer, before retrying
S3_ATTEMPTS = 4  # tries of one request (botocore's standard retry mode: backoff, throttling)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class Location(NamedTuple):
    kind: str  # "files" | "database" | "s3"
    path: str = ""  # the folder, for files
    bucket: str = ""
    prefix: str = ""  # no leading or trailing slash


def location(value: str) -> Location:
    """`[monitor] snapshots` -> where snapshots live; ValueError (worded for targets.toml) when
    an s3:// address cannot be one.

    >>> location("s3://evidence/monitor/")
    Location(kind='s3', path='', bucket='evidence', prefix='monitor')
    >>> location("database").kind, location("snapshots").kind
    ('database', 'files')
    """
    if value == DATABASE:
        return Location("database")
    if not value.lower().startswith("s3://"):
        return Location("files", path=value)
    bucket, _, prefix = value[5:].partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"bad S3 address {value!r}: write s3://BUCKET/PREFIX, with a bucket name of 3 to 63 "
                         "lowercase letters, digits, dots and hyphens")
    prefix = prefix.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ValueError(f"bad S3 address {value!r}: the prefix has an empty, '.' or '..' part")
    return Location("s3", bucket=bucket, prefix=prefix)


def open_snapshots(settings, engine) -> Snapshots:
    """The snapshot store `settings` name; `engine` is the store's database (for "database")."""
    where = location(settings.monitor.snapshots)
    if where.kind == "database":
        return DatabaseSnapshots(engine)
    if where.kind == "s3":
        return S3Snapshots(where.bucket, where.prefix, settings.monitor.s3)
    return Snapshots(settings.snapshots_dir)


def _check_digest(digest: str) -> None:
    if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
        raise SnapshotError(f"not a SHA-256 digest: {digest!r}")


class DatabaseSnapshots(Snapshots):
    """Snapshots in the `blobs` table of the store's own database (migration 0008)."""

    def __init__(self, engine):
        super().__init__(".")
        self.engine = engine
        self.root = f"the blobs table of {_database(engine)}"

    def path(self, digest: str):
        raise SnapshotError(f"snapshots are kept in {self.root}, not in files")

    def __contains__(self, digest: str) -> bool:
        from sqlalchemy import select

        from .models import Blob

        _check_digest(digest)
        with self.engine.connect() as conn:
            return conn.execute(select(Blob.digest).where(Blob.digest == digest)).first() is not None

    def _read(self, digest: str) -> bytes:
        from sqlalchemy import select

        from .models import Blob

        _check_digest(digest)
        with self.engine.connect() as conn:
            data = conn.execute(select(Blob.data).where(Blob.digest == digest)).scalar()
        if data is None:
            raise SnapshotError(f"snapshot {digest[:12]}… is missing from {self.root}")
        return bytes(data)

    def _head(self, digest: str) -> bytes:
        from sqlalchemy import func, select

        from .models import Blob

        _check_digest(digest)
        with self.engine.connect() as conn:  # (substr counts a blob's bytes, from 1, in both dialects)
            head = conn.execute(select(func.substr(Blob.data, 1, _HEADER_LEN)).where(Blob.digest == digest)).scalar()
        if head is None:
            raise SnapshotError(f"snapshot {digest[:12]}… is missing from {self.root}")
        return bytes(head)

    def _write(self, digest: str, payload: bytes) -> None:
        from .models import Blob

        with self.engine.begin() as conn:
            conn.execute(insert_ignoring(conn, Blob.__table__).values(digest=digest, data=payload))

    def size(self) -> int:
        from sqlalchemy import func, select

        from .models import Blob

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.sum(func.length(Blob.data)), 0))).scalar())


def insert_for(conn):
    """The dialect's INSERT, which can say what to do with a row already there (ON CONFLICT)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def insert_ignoring(conn, table):
    """INSERT that does nothing for a row whose primary key is already there (SQLite, PostgreSQL)."""
    return insert_for(conn)(table).on_conflict_do_nothing()


def _database(engine) -> str:
    from .storage import database_name

    return database_name(engine.url.render_as_string(hide_password=False))


class S3Error(OSError):
    """Object storage did not answer, or refused: a storage failure like a full disk (the check
    says it could not save, and is tried again), never a damaged capture."""


class S3Snapshots(Snapshots):
    """Snapshots as objects `PREFIX/ab/abcd….zst` in a bucket of S3-compatible storage (AWS S3,
    MinIO, SeaweedFS, Ceph, R2…): [monitor.s3] gives the endpoint, region and keys; keys left out
    come from the usual AWS places (AWS_ACCESS_KEY_ID…, ~/.aws, an instance role)."""

    def __init__(self, bucket: str, prefix: str, settings):
        super().__init__(".")
        self.bucket, self.prefix, self.settings = bucket, prefix, settings
        self.root = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._client = None
        self._lock = threading.Lock()

    def key(self, digest: str) -> str:
        _check_digest(digest)
        name = f"{digest[:2]}/{digest}.zst"
        return f"{self.prefix}/{name}" if self.prefix else name

    def path(self, digest: str):
        raise SnapshotError(f"snapshots are kept in {self.root}, not in files")

    @property
    def client(self):
        """One boto3 client per store (safe to share between threads), made on first use."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                s3 = self.settings
                self._client = boto3.session.Session().client(
                    "s3", endpoint_url=s3.endpoint, region_name=s3.region or "us-east-1",
                    aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key,
                    config=Config(connect_timeout=S3_TIMEOUT, read_timeout=S3_TIMEOUT,
                                  retries={"mode": "standard", "max_attempts": S3_ATTEMPTS},
                                  s3={"addressing_style": s3.addressing_style or ("path" if s3.endpoint else "auto")}))
            return self._client

    def _call(self, digest: str, method: str, **kwargs):
        """One request for `digest`'s object; None when there is no such object."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key(digest)
        try:
            return getattr(self.client, method)(Bucket=self.bucket, Key=key, **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            problem = f"{error.get('Code', 'error')}: {error.get('Message') or exc}"
        except BotoCoreError as exc:
            problem = str(exc)
        raise S3Error(errno.EIO, problem, f"s3://{self.bucket}/{key}")

    def __contains__(self, digest: str) -> bool:
        return self._call(digest, "head_object") is not None

    def _get(self, digest: str, **kwargs) -> bytes:
        answer = self._call(digest, "get_object", **kwargs)
        if answer is None:
            raise SnapshotError(f"snapshot {digest[:12]}… is missing from {self.root}")
        with answer["Body"] as body:
            return body.read()

    def _read(self, digest: str) -> bytes:
        return self._get(digest)

    def _head(self, digest: str) -> bytes:
        return self._get(digest, Range=f"bytes=0-{_HEADER_LEN - 1}")

    def _write(self, digest: str, payload: bytes) -> None:
        self._call(digest, "put_object", Body=payload, ContentType="application/zstd")

    def size(self) -> int:
        total = 0
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "")
        for page in pages:
            total += sum(item["Size"] for item in page.get("Contents", ()))
        return total
