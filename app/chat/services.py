"""Conversations and messages: ownership, storing, and what the model is shown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from flask import abort
from sqlalchemy.exc import IntegrityError

from app.answers.live import public_stats
from app.chat.titles import plain_title, title_from
from app.extensions import db
from app.llm.types import ChatMessage, Outcome
from app.models import Conversation, Document, Message, User, utcnow

SYSTEM_PROMPT_CHARS = 8000
# How a rating is written in forms and JSON, and stored.
FEEDBACK: dict[str, int | None] = {"up": 1, "down": -1, "": None}


class Busy(Exception):
    """The conversation already has an answer being written."""


class Gone(Exception):
    """The conversation, or the message answered, was deleted meanwhile (another tab)."""


def owned_conversation(user: User, conversation_id: int) -> Conversation:
    """The user's conversation, or 404: another user's id looks exactly like a missing one."""
    conversation = db.session.scalar(
        sa.select(Conversation).where(Conversation.id == conversation_id, Conversation.user_id == user.id)
    )
    if conversation is None:
        abort(404)
    return conversation


def owned_message(user: User, message_id: int) -> Message:
    message = db.session.scalar(
        sa.select(Message).join(Conversation).where(Message.id == message_id, Conversation.user_id == user.id)
    )
    if message is None:
        abort(404)
    return message


def conversations_of(user: User) -> list[Conversation]:
    """The user's conversations as the sidebar lists them: the pinned ones first, then newest first."""
    return list(
        db.session.scalars(
            sa.select(Conversation)
            .where(Conversation.user_id == user.id)
            .order_by(Conversation.pinned.desc(), Conversation.updated_at.desc(), Conversation.id.desc())
        )
    )


def create_conversation(
    user: User, model: str, think: bool | None = None, system_prompt: str = "", options: dict | None = None
) -> Conversation:
    conversation = Conversation(
        user_id=user.id, model=model, think=think, system_prompt=system_prompt, options=options or {}
    )
    db.session.add(conversation)
    db.session.commit()
    return conversation


def rename(conversation: Conversation, title: str) -> None:
    conversation.title = title
    db.session.commit()


def set_pinned(conversation: Conversation, pinned: bool) -> None:
    conversation.pinned = pinned
    db.session.commit()


def set_model(conversation: Conversation, model_id: str) -> None:
    conversation.model = model_id
    db.session.commit()


def set_settings(conversation: Conversation, system_prompt: str, options: dict) -> None:
    conversation.system_prompt = system_prompt
    conversation.options = options
    db.session.commit()


def set_thinking(conversation: Conversation, think: bool | None) -> None:
    conversation.think = think
    db.session.commit()


def set_feedback(message: Message, value: int | None) -> None:
    message.feedback = value
    db.session.commit()


def delete(conversation: Conversation) -> None:
    # The database deletes the messages and attachments (foreign keys cascade): the ORM,
    # deleting them one by one, would find the versions below a deleted message already gone.
    from app.documents.store import remove_files

    files = list(
        db.session.scalars(sa.select(Document.stored_as).where(Document.conversation_id == conversation.id))
    )
    db.session.execute(sa.delete(Conversation).where(Conversation.id == conversation.id))
    db.session.commit()
    remove_files(files)


def forget_if_empty(conversation_id: int) -> None:
    """Delete the conversation if it has no message (its first was refused). One statement: a
    first message accepted meanwhile (another tab) keeps it."""
    db.session.rollback()
    has_message = sa.exists().where(Message.conversation_id == conversation_id)
    db.session.execute(sa.delete(Conversation).where(Conversation.id == conversation_id, ~has_message))
    db.session.commit()


def thread_of(conversation: Conversation) -> list[Message]:
    """The branch shown, oldest first: from the conversation's leaf (else its newest message)
    up through each message's parent. Other versions of a turn stay stored, off the branch."""
    messages = conversation.messages
    if not messages:
        return []
    by_id = {m.id: m for m in messages}
    message = by_id.get(conversation.leaf_id) or messages[-1]
    thread = []
    while message is not None and len(thread) < len(messages):
        thread.append(message)
        message = by_id.get(message.parent_id)
    thread.reverse()
    return thread


def path_to(conversation: Conversation, message: Message | None) -> list[Message]:
    """`message` and the messages it follows, oldest first ([] for None)."""
    by_id = {m.id: m for m in conversation.messages}
    path = []
    while message is not None and len(path) < len(by_id):
        path.append(message)
        message = by_id.get(message.parent_id)
    path.reverse()
    return path


def versions(conversation: Conversation, thread: list[Message]) -> dict[int, list[int]]:
    """For each message of `thread`, the ids of every version of its turn (itself included),
    oldest first."""
    turns: dict[tuple[int | None, str], list[int]] = {}
    for m in conversation.messages:
        turns.setdefault((m.parent_id, m.role), []).append(m.id)
    return {m.id: turns[(m.parent_id, m.role)] for m in thread}


def select(conversation: Conversation, message: Message) -> None:
    """Show the branch through `message`: below it, the newest version of each later turn."""
    children: dict[int | None, list[Message]] = {}
    for m in conversation.messages:
        children.setdefault(m.parent_id, []).append(m)
    while children.get(message.id):
        message = children[message.id][-1]
    conversation.leaf_id = message.id
    db.session.commit()


@dataclass(frozen=True)
class Exchange:
    """What the answer needs of a new exchange, as plain values (no ORM object outlives it)."""

    answer_id: int  # the answer's message
    model: str
    prompt: list[ChatMessage]
    question_id: int | None = None
    title: str = ""  # the conversation's, as it is once this exchange is stored


def add_exchange(
    conversation: Conversation,
    content: str,
    job: str,
    is_live: Callable[[str], bool],
    system_prompt: str = "",
    replacing: Message | None = None,
    document_ids: tuple[int, ...] = (),
) -> Exchange:
    """Store the user's message and an empty answer written by `job`, in one transaction.

    The question follows the branch shown, or, `replacing` an earlier question (edit and
    resend), becomes that question's new version: the earlier one and its answers stay, one
    click away. `system_prompt` is the model's (the admin's), used when the conversation has
    none. Raises Busy while another answer of the conversation is being written. Returns what
    the model must be shown; no transaction is left open.
    """
    conversation_id, replacing_id = conversation.id, replacing.id if replacing else None

    def insert() -> Exchange:
        conversation = _still_there(db.session.get(Conversation, conversation_id))
        if replacing_id is not None:
            replaced = _still_there(next((m for m in conversation.messages if m.id == replacing_id), None))
            parent = next((m for m in conversation.messages if m.id == replaced.parent_id), None)
        else:
            thread = thread_of(conversation)
            parent = thread[-1] if thread else None
        question = Message(
            conversation=conversation, role="user", content=content, parent_id=parent.id if parent else None
        )
        db.session.add(question)
        db.session.flush()
        if document_ids:  # the attachments sent with it (unsent ones of its author only)
            db.session.execute(
                sa.update(Document)
                .where(
                    Document.id.in_(document_ids),
                    Document.owner_id == conversation.user_id,
                    Document.collection_id.is_(None),
                    Document.message_id.is_(None),
                )
                .values(conversation_id=conversation.id, message_id=question.id)
            )
        prompt = prompt_for(conversation, path_to(conversation, question), system_prompt)
        if not conversation.title:
            conversation.title = title_from(content)
        return _add_answer(conversation, question, prompt, job)

    return _one_at_a_time(conversation_id, is_live, insert)


def add_answer(
    conversation: Conversation,
    question: Message,
    job: str,
    is_live: Callable[[str], bool],
    system_prompt: str = "",
) -> Exchange:
    """A new version of the answer to `question` (regenerate), written by `job`; the earlier
    ones are kept. Raises Busy as add_exchange does."""
    conversation_id, question_id = conversation.id, question.id

    def insert() -> Exchange:
        conversation = _still_there(db.session.get(Conversation, conversation_id))
        question = _still_there(next((m for m in conversation.messages if m.id == question_id), None))
        prompt = prompt_for(conversation, path_to(conversation, question), system_prompt)
        return _add_answer(conversation, question, prompt, job)

    return _one_at_a_time(conversation_id, is_live, insert)


def _still_there(found):
    if found is None:
        raise Gone()
    return found


def _one_at_a_time(conversation_id: int, is_live: Callable[[str], bool], insert: Callable[[], Exchange]):
    """Run `insert` (which adds an answer marked generating); the database refuses a second
    answer being written in one conversation (a unique index), whatever the timing: Busy.

    An answer marked generating with no job behind it any more (its last save failed, the
    process that wrote it died) is settled as interrupted, and the insert tried once more.
    Any other refusal is the conversation deleted meanwhile: Gone.
    """
    for attempt in (1, 2):
        try:
            exchange = insert()
            db.session.commit()
            return exchange
        except IntegrityError as refused:
            db.session.rollback()
            if not _second_answer(refused):
                raise Gone() from refused
            if attempt == 2 or not _settle_orphans(conversation_id, is_live):
                raise Busy() from None
        except Gone:
            db.session.rollback()
            raise
    raise Busy()


def _second_answer(refused: IntegrityError) -> bool:
    """Whether the unique index of answers being written refused the insert (PostgreSQL names
    the index; SQLite names its column)."""
    said = str(refused.orig)
    return "uq_message_one_generating" in said or "message.conversation_id" in said


def _settle_orphans(conversation_id: int, is_live: Callable[[str], bool]) -> bool:
    """Mark interrupted the conversation's answers marked generating whose job is over; whether
    there was one."""
    unfinished = db.session.execute(
        sa.select(Message.id, Message.job).where(
            Message.conversation_id == conversation_id, Message.state == Outcome.GENERATING.value
        )
    ).all()
    orphans = [row for row in unfinished if not is_live(row.job)]
    for row in orphans:
        db.session.execute(
            sa.update(Message)
            .where(Message.id == row.id, Message.state == Outcome.GENERATING.value)
            .values(state=Outcome.INTERRUPTED.value)
        )
    db.session.commit()
    return bool(orphans)


def _add_answer(
    conversation: Conversation, question: Message, prompt: list[ChatMessage], job: str
) -> Exchange:
    answer = Message(
        conversation=conversation,
        parent_id=question.id,
        role="assistant",
        state=Outcome.GENERATING.value,
        model=conversation.model,
        job=job,
    )
    db.session.add(answer)
    db.session.flush()  # here the unique index refuses a second answer being written
    conversation.leaf_id = answer.id
    conversation.updated_at = utcnow()
    return Exchange(
        answer_id=answer.id,
        model=conversation.model,
        prompt=prompt,
        question_id=question.id,
        title=conversation.title,
    )


def prompt_for(
    conversation: Conversation, path: list[Message], default_system_prompt: str = ""
) -> list[ChatMessage]:
    """The system prompt and every exchange of `path` that got an answer, oldest first.

    A question whose answer failed or stayed empty is left out with it: many chat templates
    refuse two user turns in a row.
    """
    prompt = []
    system_prompt = conversation.system_prompt.strip() or default_system_prompt.strip()
    if system_prompt:
        prompt.append(ChatMessage("system", system_prompt))
    for message in path:
        answered = message.content and message.state != Outcome.ERROR.value
        if message.role == "assistant" and not answered:
            if prompt and prompt[-1].role == "user":
                prompt.pop()
        elif message.role == "user" and prompt and prompt[-1].role == "user":
            prompt[-1] = ChatMessage("user", sent_text(message))  # its answer is missing altogether
        elif answered:
            prompt.append(ChatMessage(message.role, sent_text(message)))
    return prompt


def sent_text(message: Message) -> str:
    """A message as the model was sent it: a question after its documents' passages, exactly as
    the first time (the engine's prompt cache then holds every earlier turn)."""
    return (message.context or "") + message.content if message.role == "user" else message.content


def unsent_attachments(user: User, document_ids) -> tuple[int, ...] | None:
    """`document_ids` when each is one of `user`'s attachments not yet sent with a question;
    None otherwise (removed meanwhile, another's, a collection's)."""
    ids = tuple(dict.fromkeys(document_ids))
    if not ids:
        return ()
    found = db.session.scalars(
        sa.select(Document.id).where(
            Document.id.in_(ids),
            Document.owner_id == user.id,
            Document.collection_id.is_(None),
            Document.message_id.is_(None),
        )
    )
    return ids if set(found) == set(ids) else None


def attachments_of(message: Message) -> list[dict]:
    """The files sent with a question, as its page shows them."""
    if message.role != "user":
        return []
    from flask import url_for

    documents = db.session.scalars(
        sa.select(Document).where(Document.message_id == message.id).order_by(Document.id)
    )
    return [
        {
            "id": d.id,
            "name": d.filename,
            "kind": d.kind,
            "state": d.state,
            "url": url_for("documents.download", document_id=d.id),
        }
        for d in documents
    ]


def sources_of(message: Message) -> dict:
    """The passages an answer was written from: its question's ({} when none)."""
    if message.role != "assistant" or message.parent_id is None:
        return {}
    question = db.session.get(Message, message.parent_id)
    return dict(question.sources or {}) if question is not None else {}


def message_as_dict(message: Message) -> dict:
    return {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "thinking": message.thinking,
        "state": message.state,
        "model": message.model,
        "error": message.error,
        "stats": public_stats(message.stats),  # stored before 2026-12 with the engine's details
        "parent_id": message.parent_id,
        "feedback": {1: "up", -1: "down"}.get(message.feedback, ""),
        "attachments": attachments_of(message),
        "sources": sources_of(message),
        "created_at": message.created_at.isoformat() + "Z",
    }


def conversation_as_dict(conversation: Conversation, answering: bool = False) -> dict:
    """`answering`: an answer of it is being written."""
    return {
        "id": conversation.id,
        "title": plain_title(conversation.title),
        "pinned": conversation.pinned,
        "model": conversation.model,
        "think": conversation.think,
        "system_prompt": conversation.system_prompt,
        "options": conversation.options or {},
        "collection_ids": conversation.collection_ids or [],
        "updated_at": conversation.updated_at.isoformat() + "Z",
        "answering": answering,
    }
