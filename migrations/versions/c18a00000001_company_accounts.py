"""Company accounts (issue 18): groups, directory accounts, quotas, sharing, the audit log

Revision ID: c18a00000001
Revises: c17a00000003
Create Date: 2026-12-07 13:30:00

Groups (made by the admin or mapped from a directory group) with the models their members use,
the collections they read and their quotas; a directory account's stable id; a one-time
password's "change it at first sign-in"; a person's own quotas; conversations shared read-only;
the audit log.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c18a00000001'
down_revision = 'c17a00000003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('user_group',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=300), server_default='', nullable=False),
    sa.Column('directory_group', sa.String(length=512), server_default='', nullable=False),
    sa.Column('answers_per_day', sa.Integer(), nullable=True),
    sa.Column('tokens_per_day', sa.Integer(), nullable=True),
    sa.Column('answers_at_once', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('audit_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_name', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['user.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entry_action'), ['action'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_actor_id'), ['actor_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_audit_entry_created_at'), ['created_at'], unique=False)

    op.create_table('group_member',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('from_directory', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['user_group.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'user_id')
    )
    with op.batch_alter_table('group_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_member_user_id'), ['user_id'], unique=False)

    op.create_table('group_model',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('model_id', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['user_group.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'model_id')
    )
    with op.batch_alter_table('group_model', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_model_model_id'), ['model_id'], unique=False)

    op.create_table('collection_group',
    sa.Column('collection_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['collection_id'], ['collection.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['user_group.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('collection_id', 'group_id')
    )
    with op.batch_alter_table('collection_group', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collection_group_group_id'), ['group_id'], unique=False)

    op.create_table('conversation_share',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['user_group.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('conversation_share', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_share_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_share_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_share_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('directory_id', sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column('directory_checked_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('answers_per_day', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('tokens_per_day', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('answers_at_once', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('display_name', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('email', sa.String(length=320), server_default='', nullable=False))
        batch_op.create_index(batch_op.f('ix_user_directory_id'), ['directory_id'], unique=True)



def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_directory_id'))
        batch_op.drop_column('email')
        batch_op.drop_column('display_name')
        batch_op.drop_column('answers_at_once')
        batch_op.drop_column('tokens_per_day')
        batch_op.drop_column('answers_per_day')
        batch_op.drop_column('must_change_password')
        batch_op.drop_column('directory_checked_at')
        batch_op.drop_column('directory_id')

    with op.batch_alter_table('conversation_share', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_share_user_id'))
        batch_op.drop_index(batch_op.f('ix_conversation_share_group_id'))
        batch_op.drop_index(batch_op.f('ix_conversation_share_conversation_id'))

    op.drop_table('conversation_share')
    with op.batch_alter_table('collection_group', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_collection_group_group_id'))

    op.drop_table('collection_group')
    with op.batch_alter_table('group_model', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_model_model_id'))

    op.drop_table('group_model')
    with op.batch_alter_table('group_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_member_user_id'))

    op.drop_table('group_member')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entry_created_at'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_actor_id'))
        batch_op.drop_index(batch_op.f('ix_audit_entry_action'))

    op.drop_table('audit_entry')
    op.drop_table('user_group')
