"""Directory accounts: the OIDC refresh token each account's re-checks use

Revision ID: c18a00000005
Revises: c18a00000004
Create Date: 2026-12-07 13:30:00

An OIDC account is checked again every DIRECTORY_RECHECK_MINUTES by refreshing the tokens its
last sign-in got; the provider refusing (account disabled, grant revoked) signs it out. The
refresh token is kept on the server, encrypted with a key from SECRET_KEY, one per account.

user.disabled_by_directory: the account was disabled because its directory said so (LDAP or
OIDC), so the directory enabling it again enables it here; one the admin disabled stays so.
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
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled_by_directory', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('disabled_by_directory')
    op.drop_table('oidc_refresh_token')
