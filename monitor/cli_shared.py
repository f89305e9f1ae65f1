"""What every `monitor` command shares: reading the config, opening the store, failing with a
message, printing JSON."""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys

import click

from . import config as config_module

EXIT_CONFIG = 2


def _settings(path: str | None) -> config_module.Settings:
    try:
        return config_module.load(path)
    except config_module.ConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)


CONFIG_HELP = "Path to targets.toml (default: ./targets.toml, or $MONITOR_CONFIG)."
VERBOSE_HELP = "More logging (-vv for debug)."


def _verbosity(verbose: int) -> None:
    """Log warnings and up, -v info, -vv debug; libraries speak only of problems unless -vv."""
    logging.getLogger().setLevel(logging.WARNING - 10 * verbose)
    for name in ("alembic", "apscheduler", "httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING if verbose < 2 else logging.NOTSET)


def with_config(func):
    """Every command takes --config (default ./targets.toml or $MONITOR_CONFIG) and -v, before or
    after the command's name, as git-style tools do."""

    @click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help=CONFIG_HELP)
    @click.option("-v", "--verbose", "command_verbose", count=True, help=VERBOSE_HELP)
    @functools.wraps(func)
    def wrapper(*args, config_path=None, command_verbose=0, **kwargs):
        group = click.get_current_context().find_root().obj or {}
        if command_verbose:
            _verbosity(group.get("verbose", 0) + command_verbose)
        settings = _settings(config_path or group.get("config"))
        try:
            return func(*args, settings=settings, **kwargs)
        except config_module.ConfigError as exc:  # found only against the database, e.g. a name clash
            _config_error(settings, exc)

    return wrapper


def _config_error(settings, exc) -> None:
    message = str(exc)
    if not message.startswith(str(settings.path)):
        message = f"{settings.path}: {message}"
    click.echo(f"config error: {message}", err=True)
    sys.exit(EXIT_CONFIG)


def _store(settings):
    """The store, or exit 2 naming the database and why it cannot be opened."""
    from .app import open_store
    from .store import StoreError

    try:
        return open_store(settings)
    except StoreError as exc:
        _fail(str(exc), EXIT_CONFIG)


@contextlib.contextmanager
def _saving(store, problems: list[str]):
    """Note a failing database or disk (full, read-only, gone) in `problems` instead of raising:
    the command reports what it did, then the problem, and exits non-zero."""
    from .storage import STORAGE_ERRORS, storage_error

    try:
        yield
    except STORAGE_ERRORS as exc:
        problems.append(storage_error(store.url, exc, store.snapshots.root))


def _emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _fail(message: str, code: int = 1):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
