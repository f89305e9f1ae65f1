"""fleet: shared snapshots, fleet-wide host pauses, workers, claimed discoveries

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sites', schema=None) as batch_op:  # a discovery is claimed as a check is
        batch_op.add_column(sa.Column('claimed_by', sa.String(), nullable=True))
        batch_op.add_column(sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'blobs',
        sa.Column('digest', sa.String(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('digest'),
    )
    op.create_table(
        'workers',
        sa.Column('id', sa.String(), nullable=False),
        sa.Column('host', sa.String(), nullable=False),
        sa.Column('pid', sa.Integer(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('beat_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('checks', sa.Integer(), nullable=False),
        sa.Column('in_flight', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'hosts',
        sa.Column('host', sa.String(), nullable=False),
        sa.Column('paused_until', sa.Float(), nullable=True),
        sa.Column('why', sa.String(), nullable=True),
        sa.Column('next_start', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('host'),
    )
    op.create_table(
        'host_slots',
        sa.Column('host', sa.String(), nullable=False),
        sa.Column('slot', sa.Integer(), nullable=False),
        sa.Column('holder', sa.String(), nullable=True),
        sa.Column('until', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('host', 'slot'),
    )


def downgrade() -> None:
    for table in ('host_slots', 'hosts', 'workers', 'blobs'):
        op.drop_table(table)
    with op.batch_alter_table('sites', schema=None) as batch_op:
        for column in ('claimed_until', 'claimed_by'):
            batch_op.drop_column(column)
