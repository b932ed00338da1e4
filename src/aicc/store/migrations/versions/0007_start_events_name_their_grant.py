"""start events name their grant

``job_events.grant_id``: on a ``running`` event, the grant the attempt started on. A job that
named no grant may run each attempt on another (revision 0006), so the job's own ``grant_id``
names only its latest; usage read back later (``aicc slurm import-usage``) charges each run to
the grant of its own start. Events stored before this revision name none; a job they belong
to that named no grant was stored without one too (0006 took every job stored with a grant as
having named it), so its runs are charged as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 12:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('job_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('grant_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_job_events_grant_id_grants'), 'grants',
                                    ['grant_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('job_events', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_job_events_grant_id_grants'),
                                 type_='foreignkey')
        batch_op.drop_column('grant_id')
