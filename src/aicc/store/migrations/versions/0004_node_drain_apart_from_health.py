"""node drain apart from health

An operator's drain is kept in ``nodes.drained`` (with ``nodes.drain_reason``), apart from the
node's health in ``nodes.state`` (up or down, as the engine reports it), so that a node the
engine reports down and then up again stays drained. Nodes stored as 'drain' become healthy
(``up``) and drained, their reason moving to ``drain_reason``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('drained', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('drain_reason', sa.String(length=256), server_default='',
                                      nullable=False))
    op.execute("UPDATE nodes SET drained = true, drain_reason = state_reason, state = 'up', "
               "state_reason = '' WHERE state = 'drain'")


def downgrade() -> None:
    # A drained node that is up reads 'drain' again; one that is down stays down (the drain
    # is lost, as it was before this revision).
    op.execute("UPDATE nodes SET state = 'drain', state_reason = drain_reason "
               "WHERE drained = true AND state = 'up'")
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.drop_column('drain_reason')
        batch_op.drop_column('drained')
