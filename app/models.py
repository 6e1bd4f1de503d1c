"""The database tables: accounts, conversations, messages, measurements and benchmarks."""

from __future__ import annotations

import secrets
import unicodedata
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.llm.types import Outcome


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def fold_username(username: str) -> str:
    """What two usernames must differ in: their NFKC form, case folded (Unicode TS #39), so that
    "Alice", "alice" and "ａｌｉｃｅ" (fullwidth) are one name; NFKC again, as casefold can undo it."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


class User(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True, index=True)
    # Unique: no account named like another but for case or width (`fold_username`). Accounts
    # that already collided when it came keep a key of their own (see the Users page).
    username_key: Mapped[str] = mapped_column(
        sa.String(255),
        unique=True,
        index=True,
        default=lambda context: fold_username(context.get_current_parameters()["username"]),
    )
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    is_admin: Mapped[bool] = mapped_column(default=False)
    # Named by an admin to create knowledge collections and fill them (admins always may).
    manages_knowledge: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # A disabled account cannot sign in, and its sessions end on their next request.
    disabled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Registered while registration needed the admin's approval, and not approved yet.
    pending: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Part of every session's identity (Flask-Login's get_id): a new token signs the account out
    # everywhere at once, remember-me cookies included (logout, password change, disabling).
    session_token: Mapped[str] = mapped_column(sa.String(64), default=lambda: secrets.token_hex(16))
    # The language of the pages ("" until chosen: the browser's, else French) and the theme
    # (system follows the device's light or dark setting).
    language: Mapped[str] = mapped_column(sa.String(8), default="", server_default="")
    theme: Mapped[str] = mapped_column(sa.String(8), default="system", server_default="system")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A directory account (LDAP, OIDC) is known by the directory's stable id, never by its name:
    # "ldap:<entryUUID or objectGUID>", "oidc:<iss> <sub>"; None for a local account. Its
    # password is the directory's (password_hash is unusable) and it is checked again every
    # DIRECTORY_RECHECK_MINUTES (directory_checked_at).
    directory_id: Mapped[str | None] = mapped_column(sa.String(512), unique=True, index=True)
    directory_checked_at: Mapped[datetime | None]
    # Disabled because the directory said so: the directory enabling it again enables it here (an
    # account the admin disabled stays disabled whatever the directory says).
    disabled_by_directory: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # A local account made by the admin with a one-time password: changed at first sign-in.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # The person's own quotas, over their groups' (None: from the groups, else no limit / the
    # server's MAX_ANSWERS_PER_USER). Counted per calendar day in the server's time zone.
    answers_per_day: Mapped[int | None]
    tokens_per_day: Mapped[int | None]
    answers_at_once: Mapped[int | None]
    # The directory's display name and e-mail, shown to the admin (empty for local accounts).
    display_name: Mapped[str] = mapped_column(sa.String(200), default="", server_default="")
    email: Mapped[str] = mapped_column(sa.String(320), default="", server_default="")

    conversations: Mapped[list[Conversation]] = relationship(
        back_populates="owner", cascade="all, delete-orphan", passive_deletes=True
    )
    presets: Mapped[list[Preset]] = relationship(
        back_populates="owner", cascade="all, delete-orphan", passive_deletes=True, order_by="Preset.name"
    )

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def is_active(self) -> bool:
        return not self.disabled and not self.pending

    def end_sessions(self) -> None:
        """Sign this account out everywhere: every session and remember-me cookie stops working."""
        self.session_token = secrets.token_hex(16)


class Conversation(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200), default="")
    model: Mapped[str] = mapped_column(sa.String(200))
    system_prompt: Mapped[str] = mapped_column(sa.Text, default="")
    # Let a reasoning model think first: None follows the admin's default for the model.
    think: Mapped[bool | None] = mapped_column(default=None)
    # The user's sampling choices (temperature, top_p, top_k, max_tokens), within the admin's
    # limits; a missing key follows the admin's setting for the model.
    options: Mapped[dict] = mapped_column(sa.JSON, default=dict, server_default="{}")
    # The last message of the branch shown: regenerating an answer or editing a question adds a
    # sibling, and the conversation follows the newest one until the user picks another. No
    # foreign key (the two tables would point at each other): an unknown id means the newest.
    leaf_id: Mapped[int | None]
    # Kept at the top of the owner's sidebar, whatever its date.
    pinned: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # The knowledge collections its questions are answered from (checked again at each
    # question: a reader taken off a collection's list stops getting its passages).
    collection_ids: Mapped[list] = mapped_column(sa.JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    owner: Mapped[User] = relationship(back_populates="conversations")
    messages: Mapped[list[Message]] = relationship(
        back_populates="conversation",
        order_by="Message.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Message(db.Model):
    __table_args__ = (
        # One answer being written per conversation, decided by the database itself: of two
        # requests at the same instant (two tabs, a double click, regenerate and edit at once)
        # the second insert fails, on SQLite as on PostgreSQL.
        sa.Index(
            "uq_message_one_generating",
            "conversation_id",
            unique=True,
            sqlite_where=sa.text("state = 'generating'"),
            postgresql_where=sa.text("state = 'generating'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("conversation.id", ondelete="CASCADE"), index=True
    )
    # The message this one follows (None: the first). Siblings are the versions of a turn:
    # regenerated answers, edited questions.
    parent_id: Mapped[int | None] = mapped_column(sa.ForeignKey("message.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(sa.String(16))  # user | assistant
    content: Mapped[str] = mapped_column(sa.Text, default="")
    thinking: Mapped[str] = mapped_column(sa.Text, default="")
    state: Mapped[str] = mapped_column(sa.String(16), default=Outcome.COMPLETE.value)
    # Which model wrote an answer; empty for the user's own messages.
    model: Mapped[str] = mapped_column(sa.String(200), default="")
    # Why an answer failed, in words for the user; empty otherwise.
    error: Mapped[str] = mapped_column(sa.Text, default="")
    # The engine's figures for the answer (tokens, timings, dropped context turns).
    stats: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # A question's passages from documents, exactly as the model was sent them before the
    # question itself ("" when none): kept, so every later turn sends the same text and the
    # engine's prompt cache still holds it.
    context: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    # What those passages were, for the citations under the answer: [{n, document_id, name,
    # page, heading, text}], and how much was read ({"passages", "pages", "whole"}).
    sources: Mapped[dict] = mapped_column(sa.JSON, default=dict, server_default="{}")
    # The owner's verdict on an answer: 1 thumbs up, -1 thumbs down, None none.
    feedback: Mapped[int | None]
    # The job that writes (or wrote) an answer: random, never handed out twice, unlike a
    # message id, which SQLite gives again once the message is deleted. Saves and Stop go
    # through it, so a deleted answer's job can never touch a message that took its id.
    job: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class Preset(db.Model):
    """A user's starting point for new conversations: a system prompt, and optionally a model."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    system_prompt: Mapped[str] = mapped_column(sa.Text, default="")
    model: Mapped[str] = mapped_column(sa.String(200), default="")  # "": the default model
    # Knowledge collections a conversation started from it consults.
    collection_ids: Mapped[list] = mapped_column(sa.JSON, default=list, server_default="[]")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User] = relationship(back_populates="presets")


class ApiKey(db.Model):
    """A key a user made for scripts and tools (the API); only its SHA-256 is kept.

    The key is 32 random bytes: a fast hash is enough (nothing to guess), and lets each request
    find its key by an index lookup.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    prefix: Mapped[str] = mapped_column(sa.String(16))  # the key's start, to tell keys apart
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    owner: Mapped[User] = relationship()


class ModelSetting(db.Model):
    """The admin's choices for one model; None means the configured default applies."""

    model_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    # No row: a model new to the catalogue, offered as NEW_MODELS_ENABLED says (app/llm/catalogue.py).
    enabled: Mapped[bool] = mapped_column(default=True)
    display_name: Mapped[str] = mapped_column(sa.String(80), default="")  # empty: made from the id
    description: Mapped[str] = mapped_column(sa.String(200), default="")  # one line, for users
    system_prompt: Mapped[str] = mapped_column(sa.Text, default="")
    temperature: Mapped[float | None]
    top_k: Mapped[int | None]
    top_p: Mapped[float | None]
    context: Mapped[int | None]  # tokens; load-time: the admin's alone
    threads: Mapped[int | None]  # load-time: the admin's alone
    max_tokens: Mapped[int | None]
    think: Mapped[bool | None]
    # Tokens of document passages sent with a question (reading them is the first word's wait).
    document_tokens: Mapped[int | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SiteSetting(db.Model):
    """Settings the admin changes while the server runs (the default model)."""

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text, default="")


class Generation(db.Model):
    """The measurements of one answer: what a model cost and how long users waited.

    Times are seconds on the server's clock from the moment the request was received; None
    where a figure is unknown (a remote Ollama host's CPU and memory), never 0.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("message.id", ondelete="SET NULL"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"), index=True)
    conversation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("conversation.id", ondelete="SET NULL"))
    engine: Mapped[str] = mapped_column(sa.String(200))
    model: Mapped[str] = mapped_column(sa.String(200), index=True)
    parameters: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # the options the engine got
    outcome: Mapped[str] = mapped_column(sa.String(16))  # complete, stopped, disconnected, interrupted, error
    queue_seconds: Mapped[float | None]
    load_seconds: Mapped[float | None]
    first_token_seconds: Mapped[float | None]  # request received -> first token (thinking or answer)
    first_answer_seconds: Mapped[float | None]  # request received -> first answer token
    total_seconds: Mapped[float | None]  # request received -> the answer's end
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    thinking_tokens: Mapped[int | None]
    prompt_tokens_per_second: Mapped[float | None]
    tokens_per_second: Mapped[float | None]
    process_cpu_seconds: Mapped[float | None]  # of the process(es) doing the inference
    process_cpu_percent_mean: Mapped[float | None]  # % of the machine's cores
    process_cpu_percent_peak: Mapped[float | None]
    process_rss_peak_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    machine_cpu_percent_mean: Mapped[float | None]
    machine_cpu_percent_peak: Mapped[float | None]
    machine_memory_used_peak_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    concurrent: Mapped[int] = mapped_column(default=1)  # answers written together in its engine, at most
    # Prompt tokens the engine took from its cache rather than reading them again.
    cached_prompt_tokens: Mapped[int | None]
    # Documents: waiting for their indexing, finding the passages, and what was sent of them.
    documents_wait_seconds: Mapped[float | None]
    retrieval_seconds: Mapped[float | None]
    passages: Mapped[int | None]
    passage_tokens: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class QuotaUse(db.Model):
    """One answer counted against its author's daily quotas (app.accounts.quotas): written when
    the answer is allowed to start, before anything else is stored, so that answers asked at the
    same instant see each other; its tokens (generated, thinking included) when it ends.
    Benchmarks write none."""

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)  # UTC; the day is the server's
    tokens: Mapped[int] = mapped_column(default=0, server_default="0")
    ended: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    __table_args__ = (sa.Index("ix_quota_use_user_id_started_at", "user_id", "started_at"),)


class BenchmarkRun(db.Model):
    """One benchmark: a suite's prompts, asked of some models on one machine, measured.

    The suite and the machine are stored as they were, so a run stays readable after a suite
    file changes, and a run imported from another server keeps that server's description.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(32), unique=True)  # stable across export and import
    source: Mapped[str] = mapped_column(sa.String(16))  # page | cli | import
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(sa.String(16), index=True)  # see app.bench.runs.RunState
    suite_id: Mapped[str] = mapped_column(sa.String(100))
    suite_name: Mapped[str] = mapped_column(sa.String(200))
    suite: Mapped[dict] = mapped_column(sa.JSON)
    models: Mapped[list] = mapped_column(sa.JSON)
    repetitions: Mapped[int] = mapped_column(default=1)
    start: Mapped[str] = mapped_column(sa.String(8))  # cold | warm
    thinking: Mapped[str] = mapped_column(sa.String(8))  # default | on | off | both
    judge_model: Mapped[str] = mapped_column(sa.String(200), default="")
    machine: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    machine_label: Mapped[str] = mapped_column(sa.String(200), default="")  # in charts and lists
    steps_total: Mapped[int] = mapped_column(default=0)
    steps_done: Mapped[int] = mapped_column(default=0)
    error: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    results: Mapped[list[BenchmarkResult]] = relationship(
        back_populates="run",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="BenchmarkResult.id",
    )


class BenchmarkResult(db.Model):
    """One answer of a benchmark: a model, a prompt, a repetition; its figures and checks.

    None where a figure is unknown (a remote host's CPU), never 0.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(sa.ForeignKey("benchmark_run.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(sa.String(200))
    engine: Mapped[str] = mapped_column(sa.String(200), default="")
    engine_version: Mapped[str] = mapped_column(sa.String(100), default="")
    prompt_id: Mapped[str] = mapped_column(sa.String(100))
    prompt_name: Mapped[str] = mapped_column(sa.String(200))
    repetition: Mapped[int] = mapped_column(default=1)
    think: Mapped[bool | None]  # the thinking switch sent; None: the model cannot think
    outcome: Mapped[str] = mapped_column(sa.String(16))  # complete | stopped | interrupted | error
    error: Mapped[str] = mapped_column(sa.Text, default="")
    answer: Mapped[str] = mapped_column(sa.Text, default="")
    thinking_text: Mapped[str] = mapped_column(sa.Text, default="")
    finish_reason: Mapped[str] = mapped_column(sa.String(16), default="")
    threads: Mapped[int | None]
    context: Mapped[int | None]
    load_seconds: Mapped[float | None]
    first_token_seconds: Mapped[float | None]
    thinking_seconds: Mapped[float | None]
    total_seconds: Mapped[float | None]
    tokens_per_second: Mapped[float | None]
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    thinking_tokens: Mapped[int | None]
    cpu_percent_mean: Mapped[float | None]  # of the inference's process(es), % of the machine's cores
    cpu_percent_peak: Mapped[float | None]
    memory_peak_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    memory_percent_peak: Mapped[float | None]  # of the machine's memory
    # The process's peak holds every model loaded in it (the embedded engine's are all in the
    # app's process): what this model alone holds, weights and context, is told apart.
    model_memory_bytes: Mapped[int | None] = mapped_column(sa.BigInteger)
    queue_seconds: Mapped[float | None]  # waiting for its turn (chat answers went first)
    concurrent: Mapped[int] = mapped_column(default=1)  # generations running at once, at most
    passed: Mapped[bool | None]  # the automatic check; None: no answer to check
    check: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    judge_score: Mapped[int | None]  # 1-10; None: not judged, or "no score"
    judge_reason: Mapped[str] = mapped_column(sa.Text, default="")
    judge_reply: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    run: Mapped[BenchmarkRun] = relationship(back_populates="results")


class Collection(db.Model):
    """A knowledge collection ("base de connaissances"): documents people's questions are
    answered from. Open to everyone, or to its listed readers only."""

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    description: Mapped[str] = mapped_column(sa.String(300), default="")
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    open_to_all: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner: Mapped[User | None] = relationship()
    readers: Mapped[list[CollectionReader]] = relationship(
        back_populates="collection", cascade="all, delete-orphan", passive_deletes=True
    )
    documents: Mapped[list[Document]] = relationship(
        back_populates="collection",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Document.id",
    )


class CollectionReader(db.Model):
    collection_id: Mapped[int] = mapped_column(
        sa.ForeignKey("collection.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True
    )

    collection: Mapped[Collection] = relationship(back_populates="readers")
    user: Mapped[User] = relationship()


class Document(db.Model):
    """An uploaded file: attached to a person's message (then its conversation's), or in a
    collection. The file is kept outside static/ under a random name; its text is in chunks."""

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    collection_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("collection.id", ondelete="CASCADE"), index=True
    )
    # An attachment: its conversation once sent (None until then), and the message it came with.
    conversation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("conversation.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("message.id", ondelete="SET NULL"), index=True
    )
    filename: Mapped[str] = mapped_column(sa.String(255))
    kind: Mapped[str] = mapped_column(sa.String(8))  # pdf, docx, … (by content, not name)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    stored_as: Mapped[str] = mapped_column(sa.String(64))  # the file's random name in DOCUMENTS_DIR
    state: Mapped[str] = mapped_column(
        sa.String(16), default="waiting", index=True
    )  # waiting|indexing|ready|error
    error_code: Mapped[str] = mapped_column(sa.String(32), default="")
    error_values: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    pages: Mapped[int | None]
    pages_done: Mapped[int] = mapped_column(default=0)
    chunks: Mapped[int] = mapped_column(default=0)
    characters: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    tokens: Mapped[int] = mapped_column(default=0)  # estimated, for "does it fit whole"
    embedded: Mapped[bool] = mapped_column(default=False)  # its chunks have vectors
    index_seconds: Mapped[float | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    indexed_at: Mapped[datetime | None]

    owner: Mapped[User] = relationship()
    collection: Mapped[Collection | None] = relationship(back_populates="documents")


class Chunk(db.Model):
    """A passage of a document, with its place: what retrieval finds and answers cite. Its text
    is also in the full-text index (SQLite FTS5 table chunk_fts; PostgreSQL: a GIN index)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(sa.ForeignKey("document.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]  # 0, 1, 2… in the document
    page: Mapped[int | None]
    heading: Mapped[str] = mapped_column(sa.String(300), default="")
    text: Mapped[str] = mapped_column(sa.Text)
    tokens: Mapped[int] = mapped_column(default=0)
    vector: Mapped[bytes | None] = mapped_column(sa.LargeBinary)  # float32, L2-normalised


class Group(db.Model):
    """A group of people: made by the admin, or mapped from a directory group (its members then
    follow the directory at each sign-in). It decides which models its members use (a model
    some group lists is for those groups' members only; a model no group lists is for everyone),
    which restricted collections they read, and their quotas."""

    __tablename__ = "user_group"  # ("group" is an SQL keyword)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    description: Mapped[str] = mapped_column(sa.String(300), default="", server_default="")
    # The directory group whose members are this group's: an LDAP DN or cn, an OIDC groups-claim
    # value; compared case-insensitively. Empty: members are chosen by the admin.
    directory_group: Mapped[str] = mapped_column(sa.String(512), default="", server_default="")
    # Quotas for members (None: no limit / MAX_ANSWERS_PER_USER); a member of several groups
    # gets the most generous, their own (User.*) over all.
    answers_per_day: Mapped[int | None]
    tokens_per_day: Mapped[int | None]
    answers_at_once: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    members: Mapped[list[GroupMember]] = relationship(
        back_populates="group", cascade="all, delete-orphan", passive_deletes=True
    )
    models: Mapped[list[GroupModel]] = relationship(cascade="all, delete-orphan", passive_deletes=True)


class GroupMember(db.Model):
    group_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # Put there by the directory at sign-in (and taken away by it), not by the admin.
    from_directory: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    group: Mapped[Group] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class GroupModel(db.Model):
    """A model the group's members may use (ModelSetting.model_id, or any engine model id)."""

    group_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[str] = mapped_column(sa.String(200), primary_key=True, index=True)


class CollectionGroup(db.Model):
    """A group whose members read a collection that is not open to everyone."""

    collection_id: Mapped[int] = mapped_column(
        sa.ForeignKey("collection.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_group.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class ConversationShare(db.Model):
    """A conversation shown read-only to a colleague or to a group's members, until withdrawn."""

    __table_args__ = (
        # One share per colleague and per group: two shared at the same instant make one.
        sa.Index("uq_conversation_share_user", "conversation_id", "user_id", unique=True),
        sa.Index("uq_conversation_share_group", "conversation_id", "group_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("conversation.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("user_group.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conversation: Mapped[Conversation] = relationship()
    user: Mapped[User | None] = relationship()
    group: Mapped[Group | None] = relationship()


class AuditEntry(db.Model):
    """Who did what, from where, when: written in the same transaction as the change (app.audit),
    and kept when the actor's account is deleted (actor_name stays)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"), index=True)
    actor_name: Mapped[str] = mapped_column(sa.String(64), default="")
    address: Mapped[str] = mapped_column(sa.String(64), default="")
    action: Mapped[str] = mapped_column(sa.String(64), index=True)  # e.g. "account.disable"
    target: Mapped[str] = mapped_column(sa.String(255), default="")  # what it acted on, by name
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)  # {"before": …, "after": …}, …


class OidcRefreshToken(db.Model):
    """The refresh token of an OIDC account's last sign-in, encrypted (app.directory.oidc): its
    re-checks refresh it, and the provider refusing signs the account out. One per account."""

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    token: Mapped[str] = mapped_column(sa.Text)
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)
