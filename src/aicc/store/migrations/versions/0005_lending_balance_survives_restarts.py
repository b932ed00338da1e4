"""lending balance survives restarts

What each sector has lent each other one (scheduler rule 2: the balance owed to a lender raises
its jobs' priority) moves from nowhere (it was never kept) to ``lending_balances``: per lender and
borrower sector, the decayed accelerator-seconds lent as of ``at`` and the accelerators lent from
``at`` on. A center upgraded with jobs running starts from an empty balance.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 10:00:00.000000
"""

from alembic import op
import sqlalchemy as sa
import aicc.store.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lending_balances',
    sa.Column('lender_sector_id', sa.Integer(), nullable=False),
    sa.Column('borrower_sector_id', sa.Integer(), nullable=False),
    sa.Column('balance_s', sa.Float(), nullable=False),
    sa.Column('loan', sa.Float(), nullable=False),
    sa.Column('at', aicc.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('balance_s >= 0', name=op.f('ck_lending_balances_balance_nonnegative')),
    sa.CheckConstraint('loan >= 0', name=op.f('ck_lending_balances_loan_nonnegative')),
    sa.CheckConstraint('lender_sector_id <> borrower_sector_id', name=op.f('ck_lending_balances_two_sectors')),
    sa.ForeignKeyConstraint(['borrower_sector_id'], ['sectors.id'], name=op.f('fk_lending_balances_borrower_sector_id_sectors')),
    sa.ForeignKeyConstraint(['lender_sector_id'], ['sectors.id'], name=op.f('fk_lending_balances_lender_sector_id_sectors')),
    sa.PrimaryKeyConstraint('lender_sector_id', 'borrower_sector_id', name=op.f('pk_lending_balances'))
    )


def downgrade() -> None:
    op.drop_table('lending_balances')
