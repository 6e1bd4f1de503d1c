"""Conversations: pinned (sidebar item 7 of issue 16)

Revision ID: c16a00000001
Revises: 8972a8e6a0d0
Create Date: 2026-12-07 07:40:00

A pinned conversation stays at the top of its owner's sidebar, whatever its date. Every
existing conversation starts unpinned.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c16a00000001'
down_revision = '8972a8e6a0d0'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pinned', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_column('pinned')
