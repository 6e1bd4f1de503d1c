"""Answers as jobs: the job writing each answer, one answer written per conversation, cached prompt tokens

Revision ID: 8972a8e6a0d0
Revises: 4068d052491e
Create Date: 2026-12-07 01:29:46.061389

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8972a8e6a0d0'
down_revision = '4068d052491e'
branch_labels = None
depends_on = None


def upgrade():
    # No process writes answers while the schema changes: any answer still marked as being
    # written was cut by a stopped server (what `flask serve` does at start anyway). Before
    # the old check-then-insert race could leave two in one conversation, which the unique
    # index below refuses.
    op.execute("UPDATE message SET state = 'interrupted' WHERE state = 'generating'")
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cached_prompt_tokens', sa.Integer(), nullable=True))

    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('job', sa.String(length=32), nullable=True))
        batch_op.create_index('uq_message_one_generating', ['conversation_id'], unique=True, sqlite_where=sa.text("state = 'generating'"), postgresql_where=sa.text("state = 'generating'"))



def downgrade():
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index('uq_message_one_generating', sqlite_where=sa.text("state = 'generating'"), postgresql_where=sa.text("state = 'generating'"))
        batch_op.drop_column('job')

    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.drop_column('cached_prompt_tokens')

