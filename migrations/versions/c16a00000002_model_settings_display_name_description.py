"""Model settings: display name, description, new models off until enabled (issue 16 item 10)

Revision ID: c16a00000002
Revises: c16a00000001
Create Date: 2026-12-07 07:40:00

Reserved in the chain by the coordinator; filled in by whoever builds the item (an empty
upgrade until then).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c16a00000002'
down_revision = 'c16a00000001'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
