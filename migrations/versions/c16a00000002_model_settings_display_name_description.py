"""Model settings: display name, description, new models off until enabled (issue 16 item 10)

Revision ID: c16a00000002
Revises: c16a00000001
Create Date: 2026-12-07 07:40:00

Users read a model's display name and a one-line description, which the admin sets; both start
empty (a name made from the id is shown).

From now on a model without settings stored is new, and is offered only as NEW_MODELS_ENABLED
says (off by default). Before, such a model was offered: every model this database knows (one a
conversation, a message, a measurement, a benchmark or a preset names, or the admin's default)
gets its settings stored, enabled, so the models people use keep being offered after the upgrade.
A row already stored keeps its state.

A model an engine lists that the database never named (on an Ollama host, say, and not used yet)
was offered too, but the engines are out of a migration's sight: on a database in use (it has an
account), the site setting KEEP_LISTED_KEY asks the server to keep offering every model it lists
until every engine has answered a listing, and then to store those models' settings, enabled
(app/admin/services.py). A fresh database gets no such setting: its new models wait for the admin.
"""
from datetime import datetime, timezone

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c16a00000002'
down_revision = 'c16a00000001'
branch_labels = None
depends_on = None

# The site setting read by app/admin/services.py (KEEP_LISTED_KEY there).
KEEP_LISTED_KEY = 'keep_listed_models'

# (table, column) naming a model id.
MODEL_COLUMNS = (
    ('conversation', 'model'),
    ('message', 'model'),
    ('generation', 'model'),
    ('benchmark_result', 'model'),
    ('preset', 'model'),
)


def upgrade():
    with op.batch_alter_table('model_setting', schema=None) as batch_op:
        batch_op.add_column(sa.Column('display_name', sa.String(length=80), server_default='', nullable=False))
        batch_op.add_column(sa.Column('description', sa.String(length=200), server_default='', nullable=False))

    connection = op.get_bind()
    known = set()
    for table, column in MODEL_COLUMNS:
        known.update(connection.execute(sa.text(f'SELECT DISTINCT {column} FROM {table}')).scalars())
    known.update(
        connection.execute(sa.text("SELECT value FROM site_setting WHERE key = 'default_model'")).scalars()
    )
    stored = set(connection.execute(sa.text('SELECT model_id FROM model_setting')).scalars())
    model_setting = sa.table(
        'model_setting',
        sa.column('model_id', sa.String),
        sa.column('enabled', sa.Boolean),
        sa.column('display_name', sa.String),
        sa.column('description', sa.String),
        sa.column('system_prompt', sa.Text),
        sa.column('updated_at', sa.DateTime),
    )
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = [
        {'model_id': model_id, 'enabled': True, 'display_name': '', 'description': '', 'system_prompt': '',
         'updated_at': now}
        for model_id in sorted(known - stored)
        if model_id and len(model_id) <= 200
    ]
    if rows:
        op.bulk_insert(model_setting, rows)

    in_use = connection.execute(sa.text('SELECT 1 FROM "user" LIMIT 1')).first() is not None
    setting_stored = connection.execute(
        sa.text('SELECT 1 FROM site_setting WHERE key = :key'), {'key': KEEP_LISTED_KEY}
    ).first()
    if in_use and setting_stored is None:
        site_setting = sa.table('site_setting', sa.column('key', sa.String), sa.column('value', sa.Text))
        op.bulk_insert(site_setting, [{'key': KEEP_LISTED_KEY, 'value': 'on'}])


def downgrade():
    # The rows stored for known models stay: enabled, as a model without settings was before.
    op.execute(sa.text('DELETE FROM site_setting WHERE key = :key').bindparams(key=KEEP_LISTED_KEY))
    with op.batch_alter_table('model_setting', schema=None) as batch_op:
        batch_op.drop_column('description')
        batch_op.drop_column('display_name')
