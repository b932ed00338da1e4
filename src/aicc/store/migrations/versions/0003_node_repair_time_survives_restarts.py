"""node repair time survives restarts

A node the twin took down for a failure carries when it comes back up (``nodes.repair_at``),
so that a restarted service reschedules the repair instead of leaving the node down. Nodes down
at upgrade time keep NULL: no repair is due for them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 13:05:00.000000
"""

from alembic import op
import sqlalchemy as sa
import aicc.store.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('repair_at', aicc.store.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.drop_column('repair_at')
