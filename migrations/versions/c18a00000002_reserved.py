"""Reserved for issue 18 (an empty upgrade until used)

Revision ID: c18a00000002
Revises: c18a00000001
Create Date: 2026-12-07 13:30:00

Reserved in the chain by the coordinator; filled in by whoever needs it (an empty upgrade until
then).
"""


# revision identifiers, used by Alembic.
revision = 'c18a00000002'
down_revision = 'c18a00000001'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
