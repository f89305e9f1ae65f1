"""whole sites: discovered posts, adaptive pace

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sites',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('status', sa.String(), nullable=False),
        sa.Column('last_discovery_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('next_discovery_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.String(), nullable=True),
        sa.Column('discoveries', sa.Integer(), nullable=False),
        sa.Column('sources', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_sites_name', 'sites', ['name'], unique=True)
    with op.batch_alter_table('targets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('site_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('published_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('listed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('baseline', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('alias_of', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('unchanged_streak', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_foreign_key('fk_targets_site_id', 'sites', ['site_id'], ['id'])
        batch_op.create_index('ix_targets_site_due', ['site_id', 'next_due_at'])


def downgrade() -> None:
    with op.batch_alter_table('targets', schema=None) as batch_op:
        batch_op.drop_index('ix_targets_site_due')
        batch_op.drop_constraint('fk_targets_site_id', type_='foreignkey')
        for column in ('unchanged_streak', 'alias_of', 'baseline', 'listed_at', 'published_at', 'site_id'):
            batch_op.drop_column(column)
    op.drop_index('ix_sites_name', table_name='sites')
    op.drop_table('sites')
