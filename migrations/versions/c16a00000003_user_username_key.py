"""Accounts: username key folded (NFKC + casefold), unique (issue 16 item 18)

Revision ID: c16a00000003
Revises: c16a00000002
Create Date: 2026-12-07 07:40:00

Two accounts whose names differ only in case or width ("Alice" and "alice") may exist from
before: both are kept. The oldest keeps the folded name as its key; each later one gets the
folded name followed by "#" and its id, which no name can fold to ("#" is not allowed in a
username), so the unique index holds. The Users page flags them; each still signs in with its
exact name.
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c16a00000003"
down_revision = "c16a00000002"
branch_labels = None
depends_on = None


def _fold(username: str) -> str:
    # app.models.fold_username as of this revision (a migration must not change with the app).
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def upgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("username_key", sa.String(length=255), nullable=True))
    connection = op.get_bind()
    users = sa.table(
        "user",
        sa.column("id", sa.Integer),
        sa.column("username", sa.String),
        sa.column("username_key", sa.String),
    )
    taken: set[str] = set()
    rows = connection.execute(sa.select(users.c.id, users.c.username).order_by(users.c.id)).all()
    for user_id, username in rows:
        key = _fold(username)[:200]
        if key in taken:
            key = f"{key}#{user_id}"
        taken.add(key)
        connection.execute(users.update().where(users.c.id == user_id).values(username_key=key))
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.alter_column("username_key", existing_type=sa.String(length=255), nullable=False)
        batch_op.create_index(batch_op.f("ix_user_username_key"), ["username_key"], unique=True)


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_username_key"))
        batch_op.drop_column("username_key")
