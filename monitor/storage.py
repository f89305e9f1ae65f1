"""Telling a person which database or file failed, and how, in one line.

A failing database or disk (not a database, unreachable, full, read-only) must never end a command
with a traceback: the store raises StoreError when it cannot open, a check that cannot save its
result says so in its error, and the CLI prints the problem and exits non-zero.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

# What a failing database or disk raises.
STORAGE_ERRORS = (SQLAlchemyError, OSError)
LOW_DISK = 256 * 1024  # bytes free below which a message adds that the disk is full


def database_name(url: str) -> str:
    """A SQLite database by its file's path, any other by its URL without the password."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(the [monitor] database URL)"
    if parsed.drivername.startswith("sqlite"):
        return parsed.database or ":memory:"
    return parsed.render_as_string(hide_password=True)


def storage_error(url: str, exc: BaseException, files: object = None) -> str:
    """What went wrong with the database at `url`, or with a file (one in the folder `files`
    when the error does not name it), in one line, without SQLAlchemy's statement dump and
    background links; adds when the database's disk is full."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename or files
        return f"{where}: {exc.strerror}" if where else exc.strerror
    if not isinstance(exc, SQLAlchemyError):
        return str(exc)
    text = str(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else str(exc)
    problem = (text.strip().splitlines() or [type(exc).__name__])[0]
    return f"database {database_name(url)}: {problem}{_full_disk(url)}"


def _full_disk(url: str) -> str:
    name = database_name(url)
    if not url.startswith("sqlite") or name == ":memory:":
        return ""
    try:
        free = shutil.disk_usage(Path(name).parent).free
    except OSError:
        return ""
    return f" (its disk is full: {free // 1024} KB free)" if free < LOW_DISK else ""
