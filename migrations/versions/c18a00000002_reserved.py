"""Quotas: one row per answer counted against its author's day (issue 18)

Revision ID: c18a00000002
Revises: c18a00000001
Create Date: 2026-12-07 13:30:00

An answer's row is written when it is allowed to start (so that answers asked at the same instant
see each other, and answers under way count), its generated tokens when it ends.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c18a00000002'
down_revision = 'c18a00000001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('quota_use',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('tokens', sa.Integer(), server_default='0', nullable=False),
    sa.Column('ended', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('quota_use', schema=None) as batch_op:
        batch_op.create_index('ix_quota_use_user_id_started_at', ['user_id', 'started_at'], unique=False)


def downgrade():
    with op.batch_alter_table('quota_use', schema=None) as batch_op:
        batch_op.drop_index('ix_quota_use_user_id_started_at')

    op.drop_table('quota_use')
