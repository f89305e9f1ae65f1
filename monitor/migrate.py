"""Schema migrations (Alembic). Every schema change ships as a revision under migrations/versions,
so a user's history survives upgrades. A database already at the newest revision costs one query."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

HEAD = "0001"
MIGRATIONS = Path(__file__).parent / "migrations"


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


def upgrade(engine: Engine, revision: str = "head") -> None:
    if revision == "head" and current(engine) == HEAD:
        return
    from alembic import command

    command.upgrade(alembic_config(engine), revision)
