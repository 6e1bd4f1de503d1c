"""Documents in the chat and knowledge collections (issue 17)

Revision ID: c17a00000001
Revises: c16a00000004
Create Date: 2026-12-07 10:40:00

Uploaded documents, their passages (chunks) and the full-text index over them; knowledge
collections and their readers; a question's passages as sent (Message.context/sources); the
collections a conversation or a preset consults; who manages collections; the document budget
per model; and what documents cost an answer (Generation).

The full-text index is the database's own: SQLite's FTS5 (an external-content table kept by
triggers, so a cascade delete of a document leaves no word behind), PostgreSQL's text search
with unaccent and the French and English stemmers, through an immutable function a GIN index
can use.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c17a00000001'
down_revision = 'c16a00000004'
branch_labels = None
depends_on = None

SQLITE_FTS = [
    "CREATE VIRTUAL TABLE chunk_fts USING fts5(heading, text, content='chunk', content_rowid='id', "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER chunk_fts_insert AFTER INSERT ON chunk BEGIN "
    "INSERT INTO chunk_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text); END",
    "CREATE TRIGGER chunk_fts_delete AFTER DELETE ON chunk BEGIN "
    "INSERT INTO chunk_fts(chunk_fts, rowid, heading, text) VALUES ('delete', old.id, old.heading, old.text); END",
    "CREATE TRIGGER chunk_fts_update AFTER UPDATE OF heading, text ON chunk BEGIN "
    "INSERT INTO chunk_fts(chunk_fts, rowid, heading, text) VALUES ('delete', old.id, old.heading, old.text); "
    "INSERT INTO chunk_fts(rowid, heading, text) VALUES (new.id, new.heading, new.text); END",
]


def _postgres_search():
    """unaccent when the server lets this role create it (it is a trusted extension since
    PostgreSQL 13); the stemmers alone otherwise."""
    bind = op.get_bind()
    unaccent = None
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS unaccent")
        schema = bind.exec_driver_sql(
            "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'unaccent'"
        ).scalar()
        unaccent = f"{schema}.unaccent('{schema}.unaccent'::regdictionary, body)"
    except sa.exc.DBAPIError:
        pass
    folded = unaccent or "body"
    here = bind.exec_driver_sql("SELECT current_schema()").scalar()
    op.execute(
        "CREATE FUNCTION causerie_fold(body text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE "
        f"AS $$ SELECT lower({folded}) $$"
    )
    op.execute(
        "CREATE FUNCTION causerie_search_vector(body text) RETURNS tsvector LANGUAGE sql IMMUTABLE "
        f"PARALLEL SAFE AS $$ SELECT to_tsvector('pg_catalog.french'::regconfig, {here}.causerie_fold(body)) "
        f"|| to_tsvector('pg_catalog.english'::regconfig, {here}.causerie_fold(body)) $$"
    )
    op.execute("CREATE INDEX ix_chunk_search ON chunk USING gin (causerie_search_vector(heading || ' ' || text))")


def upgrade():
    op.create_table(
        'collection',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('description', sa.String(length=300), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=True),
        sa.Column('open_to_all', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['owner_id'], ['user.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_table(
        'collection_reader',
        sa.Column('collection_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['collection_id'], ['collection.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('collection_id', 'user_id'),
    )
    with op.batch_alter_table('collection_reader', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collection_reader_user_id'), ['user_id'], unique=False)
    op.create_table(
        'document',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('owner_id', sa.Integer(), nullable=False),
        sa.Column('collection_id', sa.Integer(), nullable=True),
        sa.Column('conversation_id', sa.Integer(), nullable=True),
        sa.Column('message_id', sa.Integer(), nullable=True),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('size_bytes', sa.BigInteger(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('stored_as', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('error_code', sa.String(length=32), nullable=False),
        sa.Column('error_values', sa.JSON(), nullable=False),
        sa.Column('pages', sa.Integer(), nullable=True),
        sa.Column('pages_done', sa.Integer(), nullable=False),
        sa.Column('chunks', sa.Integer(), nullable=False),
        sa.Column('characters', sa.BigInteger(), nullable=False),
        sa.Column('tokens', sa.Integer(), nullable=False),
        sa.Column('embedded', sa.Boolean(), nullable=False),
        sa.Column('index_seconds', sa.Double(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('indexed_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['collection_id'], ['collection.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['message_id'], ['message.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['owner_id'], ['user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('document', schema=None) as batch_op:
        for column in ('owner_id', 'collection_id', 'conversation_id', 'message_id', 'state', 'created_at'):
            batch_op.create_index(batch_op.f(f'ix_document_{column}'), [column], unique=False)
    op.create_table(
        'chunk',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('document_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('page', sa.Integer(), nullable=True),
        sa.Column('heading', sa.String(length=300), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('tokens', sa.Integer(), nullable=False),
        sa.Column('vector', sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(['document_id'], ['document.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('chunk', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chunk_document_id'), ['document_id'], unique=False)
    if op.get_bind().dialect.name == 'sqlite':
        for statement in SQLITE_FTS:
            op.execute(statement)
    elif op.get_bind().dialect.name == 'postgresql':
        _postgres_search()

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('manages_knowledge', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('collection_ids', sa.JSON(), server_default='[]', nullable=False))
    with op.batch_alter_table('preset', schema=None) as batch_op:
        batch_op.add_column(sa.Column('collection_ids', sa.JSON(), server_default='[]', nullable=False))
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('context', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('sources', sa.JSON(), server_default='{}', nullable=False))
    with op.batch_alter_table('model_setting', schema=None) as batch_op:
        batch_op.add_column(sa.Column('document_tokens', sa.Integer(), nullable=True))
    with op.batch_alter_table('generation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('documents_wait_seconds', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('retrieval_seconds', sa.Double(), nullable=True))
        batch_op.add_column(sa.Column('passages', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('passage_tokens', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('generation', schema=None) as batch_op:
        for column in ('passage_tokens', 'passages', 'retrieval_seconds', 'documents_wait_seconds'):
            batch_op.drop_column(column)
    with op.batch_alter_table('model_setting', schema=None) as batch_op:
        batch_op.drop_column('document_tokens')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_column('sources')
        batch_op.drop_column('context')
    with op.batch_alter_table('preset', schema=None) as batch_op:
        batch_op.drop_column('collection_ids')
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_column('collection_ids')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('manages_knowledge')
    if op.get_bind().dialect.name == 'sqlite':
        for name in ('chunk_fts_update', 'chunk_fts_delete', 'chunk_fts_insert'):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS chunk_fts")
    op.drop_table('chunk')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS causerie_search_vector(text)")
        op.execute("DROP FUNCTION IF EXISTS causerie_fold(text)")
    op.drop_table('document')
    op.drop_table('collection_reader')
    op.drop_table('collection')
