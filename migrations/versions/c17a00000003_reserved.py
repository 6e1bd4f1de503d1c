"""Reserved for issue 17 (an empty upgrade until used)

Revision ID: c17a00000003
Revises: c17a00000002
Create Date: 2026-12-07 10:40:00
"""


# revision identifiers, used by Alembic.
revision = 'c17a00000003'
down_revision = 'c17a00000002'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
