"""job grant named or chosen

``jobs.grant_named`` records whether a job's submission named its grant. A job naming none is
charged to its project's live grant when it starts; when it returns to the queue (preempted, its
node failed) that choice is made again, while a named grant stays the job's. Jobs stored before
this revision that carry a grant are taken as having named it, which keeps how they were
scheduled until now.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grant_named', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
    op.execute("UPDATE jobs SET grant_named = true WHERE grant_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('grant_named')
