"""browser fetcher: a version's screenshot and its document's HTTP response before rendering

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('screenshot_sha', sa.String(), nullable=True))
        batch_op.add_column(sa.Column('response_sha', sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('versions', schema=None) as batch_op:
        batch_op.drop_column('response_sha')
        batch_op.drop_column('screenshot_sha')
