"""Accounts: disabled, session token

Revision ID: bcf8c57ab9f1
Revises: f60501b6bc20
Create Date: 2026-11-22 18:55:14.421433

"""

import secrets

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "bcf8c57ab9f1"
down_revision = "f60501b6bc20"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("session_token", sa.String(length=64), nullable=True))
    # Each existing account gets a token of its own (its current sessions end: they carried none).
    connection = op.get_bind()
    users = sa.table("user", sa.column("id", sa.Integer), sa.column("session_token", sa.String))
    for (user_id,) in connection.execute(sa.select(users.c.id)).all():
        connection.execute(
            users.update().where(users.c.id == user_id).values(session_token=secrets.token_hex(16))
        )
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.alter_column("session_token", existing_type=sa.String(length=64), nullable=False)


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("session_token")
        batch_op.drop_column("disabled")
