"""Directory accounts: the OIDC refresh token each account's re-checks use

Revision ID: c18a00000005
Revises: c18a00000004
Create Date: 2026-12-07 13:30:00

An OIDC account is checked again every DIRECTORY_RECHECK_MINUTES by refreshing the tokens its
last sign-in got; the provider refusing (account disabled, grant revoked) signs it out. The
refresh token is kept on the server, encrypted with a key from SECRET_KEY, one per account.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c18a00000005'
down_revision = 'c18a00000004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('oidc_refresh_token',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token', sa.Text(), nullable=False),
    sa.Column('saved_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )


def downgrade():
    op.drop_table('oidc_refresh_token')
