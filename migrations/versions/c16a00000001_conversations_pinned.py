"""Conversations: pinned (sidebar item 7 of issue 16)

Revision ID: c16a00000001
Revises: 8972a8e6a0d0
Create Date: 2026-12-07 07:40:00

Reserved in the chain by the coordinator; filled in by whoever builds the item (an empty
upgrade until then).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c16a00000001'
down_revision = '8972a8e6a0d0'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
