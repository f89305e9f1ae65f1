from alembic import context

from monitor.migrate import schema_transaction
from monitor.models import SQLModel

target_metadata = SQLModel.metadata
engine = context.config.attributes["engine"]

with schema_transaction(engine) as connection:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    context.run_migrations()
