from alembic import context

from monitor.models import SQLModel

target_metadata = SQLModel.metadata
engine = context.config.attributes["engine"]

with engine.begin() as connection:
    if connection.dialect.name == "sqlite":
        # pysqlite would commit each CREATE/ALTER on its own: begin explicitly, so a migration cut
        # short (a full disk, a crash) leaves the database as it was, never half-migrated.
        connection.exec_driver_sql("BEGIN")
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    context.run_migrations()
