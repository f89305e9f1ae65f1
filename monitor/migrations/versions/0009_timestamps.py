"""timestamps: RFC 3161 trusted timestamps of a target's chain head (monitor/timestamps.py)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'timestamps',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=False),
        sa.Column('head', sa.String(), nullable=False),
        sa.Column('token_sha', sa.String(), nullable=False),
        sa.Column('tsa_url', sa.String(), nullable=False),
        sa.Column('stamped_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['target_id'], ['targets.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_timestamps_target_id', 'timestamps', ['target_id'])
    op.create_index('ix_timestamps_head', 'timestamps', ['head'])


def downgrade() -> None:
    op.drop_index('ix_timestamps_head', table_name='timestamps')
    op.drop_index('ix_timestamps_target_id', table_name='timestamps')
    op.drop_table('timestamps')
