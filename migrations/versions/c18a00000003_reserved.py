"""Shares: one per colleague and per group of a conversation, kept so by the database

Revision ID: c18a00000003
Revises: c18a00000002
Create Date: 2026-12-07 13:30:00

Two requests sharing a conversation with the same colleague at the same instant (a double
click, two tabs) both found no share and both added one; these unique indexes refuse the
second. A row names a colleague or a group, the other column NULL: NULLs never collide.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = 'c18a00000003'
down_revision = 'c18a00000002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('conversation_share', schema=None) as batch_op:
        batch_op.create_index('uq_conversation_share_user', ['conversation_id', 'user_id'], unique=True)
        batch_op.create_index('uq_conversation_share_group', ['conversation_id', 'group_id'], unique=True)


def downgrade():
    with op.batch_alter_table('conversation_share', schema=None) as batch_op:
        batch_op.drop_index('uq_conversation_share_group')
        batch_op.drop_index('uq_conversation_share_user')
