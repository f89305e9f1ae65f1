"""evidence: hash chain, imported captures, archive URLs

Versions stored before this revision are linked into the hash chain here (monitor/chain.py), so
`monitor verify` checks them too; the chain vouches for them from the moment of the upgrade on.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_sha', sa.String(), nullable=True))
        batch_op.add_column(sa.Column('source', sa.String(), nullable=True))
        batch_op.add_column(sa.Column('source_url', sa.String(), nullable=True))
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('archive_url', sa.String(), nullable=True))
        batch_op.add_column(sa.Column('archive_job', sa.String(), nullable=True))
    with op.batch_alter_table('targets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain_head', sa.String(), nullable=True))

    from monitor.chain import relink

    conn = op.get_bind()
    targets = conn.execute(sa.text('SELECT DISTINCT target_id FROM versions')).scalars().all()
    for target_id in targets:
        relink(conn, target_id)


def downgrade() -> None:
    with op.batch_alter_table('targets', schema=None) as batch_op:
        batch_op.drop_column('chain_head')
    with op.batch_alter_table('changes', schema=None) as batch_op:
        batch_op.drop_column('archive_job')
        batch_op.drop_column('archive_url')
    with op.batch_alter_table('versions', schema=None) as batch_op:
        for column in ('source_url', 'source', 'previous_sha'):
            batch_op.drop_column(column)
