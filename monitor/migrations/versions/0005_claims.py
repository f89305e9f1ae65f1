"""claims: one process at a time checks a target or sends an alert; interrupted sends counted

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('targets', 'alerts'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('claimed_by', sa.String(), nullable=True))
            batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sending_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('redelivered', sa.Integer(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        for column in ('redelivered', 'sending_at', 'claimed_until', 'claimed_by'):
            batch_op.drop_column(column)
    with op.batch_alter_table('targets', schema=None) as batch_op:
        for column in ('claimed_until', 'claimed_by'):
            batch_op.drop_column(column)
