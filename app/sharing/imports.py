"""Moving in: the conversations of an export from another chat, made the person's own.

Three shapes are read, each as its tool writes it:
- Open WebUI ("Export chats"): a list of chats, each `{"title", "chat": {"models", "history":
  {"messages": {id: {"parentId", "childrenIds", "role", "content", "model", "timestamp"}},
  "currentId"}, "messages": [...]}}` (or the bare `chat` object);
- ChatGPT (`conversations.json` of the data export): a list of `{"title", "create_time",
  "update_time", "mapping": {id: {"message": {"author": {"role"}, "content": {"content_type",
  "parts"}, "metadata": {"model_slug"}}, "parent", "children"}}, "current_node"}`;
- Causerie's own JSON export (app/chat/archive.py), one conversation or a list of them.

Of a tree of versions, the branch its tool showed last is taken (`currentId`, `current_node`).
Only the people's and the models' words come in (system, tool and hidden messages are left
out); consecutive messages of one side become one, so questions and answers alternate as a
model expects. Every text stays untrusted: the chat page renders it like any answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from flask_babel import format_decimal
from flask_babel import gettext as _

from app.chat.archive import EXPORT_FORMAT
from app.chat.titles import title_from
from app.extensions import db
from app.models import Conversation, Message, User, utcnow

ROLES = ("user", "assistant")
# An import is written in one transaction: on SQLite every colleague's write waits for it, and
# fails after the busy timeout (5 s). These bounds keep it near a second (10,000 conversations
# of 1.1 MB took 18 s, and a colleague's new conversation failed meanwhile).
MAX_CONVERSATIONS = 1000
MAX_MESSAGES = 20_000


class ImportRefused(ValueError):
    """A file that cannot be imported, in words for the person importing it."""


class ImportTooLarge(ImportRefused):
    """A file over MAX_UPLOAD_MB: 413, as when the request itself is over the limit."""


@dataclass
class ImportedMessage:
    role: str
    content: str
    model: str = ""
    thinking: str = ""
    created_at: datetime | None = None


@dataclass
class ImportedConversation:
    title: str
    messages: list[ImportedMessage]
    model: str = ""  # the model it was written with, where the export says
    system_prompt: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass
class Export:
    source: str  # "openwebui", "chatgpt", "causerie"
    conversations: list[ImportedConversation] = field(default_factory=list)
    skipped: int = 0  # conversations with no message to bring in


def read_export(data: bytes, limit_bytes: int) -> Export:
    """The conversations of an export file; ImportRefused says why a file cannot be read."""
    if len(data) > limit_bytes:
        raise ImportTooLarge(too_large_message(limit_bytes))
    if not data.strip():
        raise ImportRefused(_("The file is empty."))
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ImportRefused(
            _("This file is not JSON: choose the .json file of an Open WebUI or ChatGPT export.")
        ) from None
    items = document if isinstance(document, list) else [document]
    if not items:
        raise ImportRefused(_("The file holds no conversation."))
    export, unknown = None, 0
    readers = {"openwebui": _from_openwebui, "chatgpt": _from_chatgpt, "causerie": _from_causerie}
    for item in items:
        source = _shape_of(item)
        if source is None:
            unknown += 1
            continue
        export = export or Export(source)
        conversation = readers[source](item)
        if conversation.messages:
            export.conversations.append(conversation)
        else:
            export.skipped += 1
    if export is None:
        raise ImportRefused(
            _(
                "This JSON is not an export Causerie knows: choose Open WebUI's chat export, "
                "ChatGPT's conversations.json or a conversation exported from Causerie."
            )
        )
    export.skipped += unknown
    messages = sum(len(c.messages) for c in export.conversations)
    if len(export.conversations) > MAX_CONVERSATIONS or messages > MAX_MESSAGES:
        raise ImportRefused(
            _(
                "This export holds %(conversations)s conversations and %(messages)s messages: at most "
                "%(max_conversations)s conversations and %(max_messages)s messages come in at once, "
                "so that colleagues are not kept waiting.",
                conversations=format_decimal(len(export.conversations)),
                messages=format_decimal(messages),
                max_conversations=format_decimal(MAX_CONVERSATIONS),
                max_messages=format_decimal(MAX_MESSAGES),
            )
        )
    return export


def too_large_message(limit_bytes: int) -> str:
    return _("The file is larger than %(max)s MB, the limit.", max=limit_bytes // (1024 * 1024))


def _shape_of(item) -> str | None:
    if not isinstance(item, dict):
        return None
    if item.get("format") == EXPORT_FORMAT and isinstance(item.get("messages"), list):
        return "causerie"
    if isinstance(item.get("mapping"), dict):
        return "chatgpt"
    chat = item.get("chat", item)
    if isinstance(chat, dict) and (
        isinstance(chat.get("history"), dict) or isinstance(chat.get("messages"), list)
    ):
        return "openwebui"
    return None


# Half of a UTF-16 pair alone, which JSON may write ("\ud800"): no database stores it, no page
# encodes it (the chat's own JSON bodies are refused for it: app/errors/inputs.py); and NUL,
# which PostgreSQL's text refuses.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _string(value) -> str:
    """A string of the export as stored here ("" for anything else), each character no database
    stores replaced by U+FFFD, as a decoder shows a broken one."""
    return _UNSTORABLE.sub("\ufffd", value) if isinstance(value, str) else ""


def _text(value) -> str:
    """A message's words: a string, or the text parts of a list (OpenAI-style content parts,
    ChatGPT's `parts`); images and other parts are left out."""
    if isinstance(value, list):
        texts = [_string(part.get("text") if isinstance(part, dict) else part) for part in value]
        return "\n\n".join(t for t in texts if t.strip())
    return _string(value)


def _moment(value) -> datetime | None:
    """A Unix time (seconds, or milliseconds as some exports write) as a stored naive UTC time;
    None when it is not one, or in the future."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        if value > 1e11:  # milliseconds
            value /= 1000  # an integer too large for a float overflows here already
        moment = datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        return None
    return moment if moment <= utcnow() else None


def _short(value, length: int = 200) -> str:
    return _string(value).strip()[:length]


def _alternating(messages: list[ImportedMessage]) -> list[ImportedMessage]:
    """Empty messages left out, and one side's consecutive messages joined into one."""
    joined: list[ImportedMessage] = []
    for message in messages:
        if message.role not in ROLES or not (message.content.strip() or message.thinking.strip()):
            continue
        if joined and joined[-1].role == message.role:
            joined[-1].content = "\n\n".join(t for t in (joined[-1].content, message.content) if t)
            joined[-1].thinking = "\n\n".join(t for t in (joined[-1].thinking, message.thinking) if t)
            continue
        joined.append(message)
    return joined


def _key(value):
    """A node's reference as a key (None for anything else: a forged list is no key)."""
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


def _branch(nodes: dict, leaf_id, parent_of, children_of) -> list:
    """The nodes from the root down to `leaf_id`; without a known leaf, the branch of the
    newest versions (each node's last child) from the first root."""
    leaf_id = _key(leaf_id)
    if leaf_id not in nodes:
        roots = [key for key, node in nodes.items() if _key(parent_of(node)) not in nodes]
        leaf_id, seen = (roots[0] if roots else None), set()
        while leaf_id is not None and leaf_id not in seen:
            seen.add(leaf_id)
            children = children_of(nodes[leaf_id])
            following = [_key(c) for c in children if _key(c) in nodes] if isinstance(children, list) else []
            if not following:
                break
            leaf_id = following[-1]
    path, seen = [], set()
    while leaf_id in nodes and leaf_id not in seen:
        seen.add(leaf_id)
        path.append(nodes[leaf_id])
        leaf_id = _key(parent_of(nodes[leaf_id]))
    path.reverse()
    return path


def _from_openwebui(item: dict) -> ImportedConversation:
    chat = item.get("chat", item)
    models = chat.get("models")
    model = _short(models[0]) if isinstance(models, list) and models else ""
    history = chat.get("history")
    if isinstance(history, dict) and isinstance(history.get("messages"), dict) and history["messages"]:
        nodes = {k: v for k, v in history["messages"].items() if isinstance(v, dict)}
        raw = _branch(
            nodes,
            history.get("currentId"),
            lambda n: n.get("parentId"),
            lambda n: n.get("childrenIds"),
        )
    else:
        listed = chat.get("messages")
        raw = [m for m in listed if isinstance(m, dict)] if isinstance(listed, list) else []
    messages = [
        ImportedMessage(
            role=m.get("role") if m.get("role") in ROLES else "",
            content=_text(m.get("content")),
            model=_short(m.get("model")) if m.get("role") == "assistant" else "",
            created_at=_moment(m.get("timestamp")),
        )
        for m in raw
    ]
    return ImportedConversation(
        title=_short(item.get("title")) or _short(chat.get("title")),
        messages=_alternating(messages),
        model=model,
        created_at=_moment(item.get("created_at") or chat.get("timestamp")),
        updated_at=_moment(item.get("updated_at")),
    )


def _from_chatgpt(item: dict) -> ImportedConversation:
    nodes = {k: v for k, v in item["mapping"].items() if isinstance(v, dict)}
    path = _branch(
        nodes,
        item.get("current_node"),
        lambda n: n.get("parent"),
        lambda n: n.get("children"),
    )
    messages = []
    for node in path:
        message = node.get("message")
        if not isinstance(message, dict):
            continue
        author = message.get("author") if isinstance(message.get("author"), dict) else {}
        content = message.get("content") if isinstance(message.get("content"), dict) else {}
        metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
        # Tool calls (recipient: "python", "browser"…), hidden context and anything but text.
        if message.get("recipient", "all") != "all" or metadata.get("is_visually_hidden_from_conversation"):
            continue
        if content.get("content_type") not in ("text", "multimodal_text"):
            continue
        role = author.get("role")
        messages.append(
            ImportedMessage(
                role=role if role in ROLES else "",
                content=_text(content.get("parts")),
                model=_short(metadata.get("model_slug")) if role == "assistant" else "",
                created_at=_moment(message.get("create_time")),
            )
        )
    return ImportedConversation(
        title=_short(item.get("title")),
        messages=_alternating(messages),
        model=_short(item.get("default_model_slug")),
        created_at=_moment(item.get("create_time")),
        updated_at=_moment(item.get("update_time")),
    )


def _from_causerie(item: dict) -> ImportedConversation:
    about = item.get("conversation") if isinstance(item.get("conversation"), dict) else {}
    messages = [
        ImportedMessage(
            role=m.get("role") if m.get("role") in ROLES else "",
            content=_string(m.get("content")),
            thinking=_string(m.get("thinking")),
            model=_short(m.get("model")) if m.get("role") == "assistant" else "",
        )
        for m in item["messages"]
        if isinstance(m, dict)
    ]
    return ImportedConversation(
        title=_short(about.get("title")),
        messages=_alternating(messages),
        model=_short(about.get("model")),
        system_prompt=_string(about.get("system_prompt")),
    )


def store(user: User, export: Export, model_for) -> list[Conversation]:
    """Each conversation of `export` made one of `user`'s, in one transaction (the caller
    commits, after recording it). `model_for(name)`: the model that answers the conversation's
    next questions, given the one it was written with (kept under its answers as text).

    A conversation's messages go in as one multi-row insert, then their links to each other as
    one update: an export of 500 conversations took 8 s a message at a time."""
    stored, models = [], {}
    for imported in export.conversations:
        if imported.model not in models:  # the catalogue is asked once per model named
            models[imported.model] = model_for(imported.model)
        first_question = next((m.content for m in imported.messages if m.role == "user"), "")
        now = utcnow()
        conversation = Conversation(
            user_id=user.id,
            title=imported.title or title_from(first_question) or "",
            model=models[imported.model],
            system_prompt=imported.system_prompt[:8000],
            created_at=imported.created_at or now,
            updated_at=imported.updated_at or imported.created_at or now,
        )
        db.session.add(conversation)
        db.session.flush()
        rows = [
            {
                "conversation_id": conversation.id,
                "role": m.role,
                "content": m.content,
                "thinking": m.thinking,
                "model": (m.model or imported.model) if m.role == "assistant" else "",
                "stats": {},
                "created_at": m.created_at or conversation.created_at,
            }
            for m in imported.messages
        ]
        ids = db.session.scalars(
            sa.insert(Message).returning(Message.id, sort_by_parameter_order=True), rows
        ).all()
        if len(ids) > 1:  # each message follows the one before it: the branch shown
            db.session.execute(
                sa.update(Message), [{"id": i, "parent_id": p} for p, i in zip(ids, ids[1:], strict=False)]
            )
        conversation.leaf_id = ids[-1]
        stored.append(conversation)
    return stored
