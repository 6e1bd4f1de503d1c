"""Finding a conversation again, and taking one away: search, Markdown and JSON exports."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import sqlalchemy as sa
from flask_babel import gettext as _

from app.answers.live import public_stats
from app.chat.services import attachments_of, sources_of, thread_of
from app.chat.titles import plain_title
from app.extensions import db
from app.llm import model_name
from app.llm.types import Outcome
from app.models import Conversation, Message, User, utcnow

MAX_QUERY_CHARS = 200
SNIPPET_CHARS = 120
EXPORT_FORMAT = "causerie-conversation"
EXPORT_VERSION = 1
FEEDBACK = {1: "up", -1: "down"}  # as the chat's JSON says it; no verdict is null


class QueryTooLong(ValueError):
    """A search longer than MAX_QUERY_CHARS."""


@dataclass(frozen=True)
class Snippet:
    """A few words of a message around a match, as plain text: whoever shows it escapes it."""

    before: str
    match: str
    after: str

    def as_dict(self) -> dict:
        return {"before": self.before, "match": self.match, "after": self.after}


@dataclass(frozen=True)
class Hit:
    conversation_id: int
    title: str
    updated_at: datetime
    snippet: Snippet | None  # None: only the title matched

    def as_dict(self) -> dict:
        return {
            "id": self.conversation_id,
            "title": plain_title(self.title),
            "updated_at": iso(self.updated_at),
            "snippet": self.snippet.as_dict() if self.snippet else None,
        }


def iso(moment: datetime) -> str:
    """A stored (naive, UTC) time in ISO 8601 with its Z."""
    return moment.isoformat() + "Z"


# -- search ----------------------------------------------------------------------------------------
def search(user: User, query: str, limit: int = 50) -> list[Hit]:
    """The user's conversations whose title or any message (every version of every turn)
    contains `query`, ignoring case and accents' case (É/é), newest first.

    The database narrows the candidates with a loose LIKE pattern; Python's casefold() decides.
    SQLite's LIKE folds ASCII letters only, so every other character of the query becomes a
    wildcard in the pattern: the candidates are then always a superset of the matches (except
    where folding turns a letter into ASCII ones: ß matches "ss" only when both are in the
    title or message as typed).
    """
    query = query.strip()
    if len(query) > MAX_QUERY_CHARS:
        raise QueryTooLong(query)
    needle = fold(query)
    if not needle:
        return []
    pattern = _like_pattern(query)
    mine = Conversation.user_id == user.id

    matched: dict[int, Snippet | None] = {}
    titles = db.session.execute(
        sa.select(Conversation.id, Conversation.title).where(
            mine, Conversation.title.ilike(pattern, escape="\\")
        )
    )
    for conversation_id, title in titles:
        if needle in fold(title):
            matched[conversation_id] = None
    contents = db.session.execute(
        sa.select(Message.conversation_id, Message.content)
        .join(Conversation)
        .where(mine, Message.content.ilike(pattern, escape="\\"))
        .order_by(Message.id)
    )
    for conversation_id, content in contents:
        if matched.get(conversation_id) is None:
            snippet = snippet_of(content, needle)
            if snippet is not None:
                matched[conversation_id] = snippet
    if not matched:
        return []
    rows = db.session.execute(
        sa.select(Conversation.id, Conversation.title, Conversation.updated_at)
        .where(mine, Conversation.id.in_(matched))
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        .limit(limit)
    )
    return [Hit(id_, title, updated_at, matched[id_]) for id_, title, updated_at in rows]


def fold(text: str) -> str:
    """Text as compared: composed accents (NFC), then Unicode case folding (É → é, ß → ss)."""
    return unicodedata.normalize("NFC", text).casefold()


def _like_pattern(query: str) -> str:
    """A LIKE pattern every match satisfies: ASCII kept (escaped), anything else a wildcard."""
    parts = ["%"]
    for char in query:
        if char.isascii():
            parts.append("\\" + char if char in "\\%_" else char)
        elif parts[-1] != "%":
            parts.append("%")
    if parts[-1] != "%":
        parts.append("%")
    return "".join(parts)


def snippet_of(content: str, needle: str, width: int = SNIPPET_CHARS) -> Snippet | None:
    """About `width` characters of `content` around the first place `needle` (folded) is found,
    cut at words, whitespace collapsed; None when it is not there."""
    text = unicodedata.normalize("NFC", content)
    folded, origin = [], []  # the folded text, and the index in `text` of each of its characters
    for index, char in enumerate(text):
        piece = char.casefold()
        folded.append(piece)
        origin.extend([index] * len(piece))
    found = "".join(folded).find(needle)
    if found < 0:
        return None
    start, end = origin[found], origin[found + len(needle) - 1] + 1
    room = max(width - (end - start), 0) // 2
    before, after = text[max(start - room, 0) : start], text[end : end + room]
    if start - room > 0:
        before = "…" + re.sub(r"^\S*\s?", "", before) if re.search(r"\s", before) else "…" + before
    if end + room < len(text):
        after = re.sub(r"\s?\S*$", "", after) + "…" if re.search(r"\s", after) else after + "…"
    return Snippet(_collapse(before).lstrip(), _collapse(text[start:end]), _collapse(after).rstrip())


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# -- export ----------------------------------------------------------------------------------------
def as_markdown(conversation: Conversation) -> str:
    """The branch shown, as a Markdown document in the reader's language."""
    title = plain_title(conversation.title) or _("New conversation")
    about = _(
        "Started on %(date)s with %(model)s · exported on %(exported)s",
        date=_readable(conversation.created_at),
        model=model_name(conversation.model),
        exported=_readable(utcnow()),
    )
    lines = [f"# {title}", "", f"*{about}*", ""]
    for message in thread_of(conversation):
        if message.role == "user":
            lines += ["## " + _("You"), "", message.content, ""]
            attached = [a["name"] for a in attachments_of(message)]
            if attached:
                lines += [f"*{_('Attached files')}:* " + ", ".join(_code(name) for name in attached), ""]
            continue
        lines += [f"## {model_name(message.model or conversation.model)}", ""]
        if message.thinking:
            lines += ["> **" + _("Thinking") + "**", ">"]
            lines += [f"> {line}".rstrip() for line in message.thinking.splitlines()]
            lines.append("")
        if message.content:
            lines += [message.content, ""]
        ending = _ending(message)
        if ending:
            lines += [f"*{ending}*", ""]
        lines += _sources_in_markdown(sources_of(message).get("passages") or [])
    return "\n".join(lines).rstrip("\n") + "\n"


def _sources_in_markdown(passages: list[dict]) -> list[str]:
    """The passages an answer was given, numbered as it cites them. A document's words are
    another's, like a model's: its name and heading in code spans and its text in a fenced
    block, inert in any Markdown viewer (no link, image or HTML of theirs comes to life)."""
    if not passages:
        return []
    lines = ["### " + _("Sources"), ""]
    for passage in passages:
        place = [_code(passage.get("name") or "")]
        if passage.get("page"):
            place.append(_("page %(page)s", page=passage["page"]))
        if passage.get("heading"):
            place.append(_code(passage["heading"]))
        text = (passage.get("text") or "").strip("\n")
        fence = "~" * max(3, _longest_run(text, "~") + 1)
        lines += [f"[{passage.get('n')}] " + " · ".join(place), "", fence + "text", text, fence, ""]
    return lines


def _code(text: str) -> str:
    """`text` as a Markdown code span, whatever backticks it holds; on one line."""
    text = " ".join(text.split())
    ticks = "`" * (_longest_run(text, "`") + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{padding}{text}{padding}{ticks}"


def _longest_run(text: str, char: str) -> int:
    return max((len(run) for run in re.findall(f"{re.escape(char)}+", text)), default=0)


def _ending(message: Message) -> str:
    """How an answer that did not end normally ended, in words; "" when it did."""
    endings = {
        Outcome.STOPPED.value: _("Stopped"),
        Outcome.DISCONNECTED.value: _("Cut short: the page was closed"),
        Outcome.INTERRUPTED.value: _("Interrupted: the server stopped"),
        Outcome.GENERATING.value: _("Being written…"),
    }
    if message.state == Outcome.ERROR.value:
        return _("Failed") + (f": {message.error}" if message.error else "")
    return endings.get(message.state, "")


def _readable(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def as_json(conversation: Conversation) -> str:
    """The conversation with the branch shown (`messages`) and every version of every turn
    (`versions`), for keeping or for another tool."""
    document = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": iso(utcnow()),
        "conversation": {
            "id": conversation.id,
            "title": conversation.title,
            "model": conversation.model,
            "system_prompt": conversation.system_prompt,
            "think": conversation.think,
            "options": conversation.options or {},
            "created_at": iso(conversation.created_at),
            "updated_at": iso(conversation.updated_at),
        },
        "messages": [_message_record(m) for m in thread_of(conversation)],
        "versions": [_message_record(m) for m in conversation.messages],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _message_record(message: Message) -> dict:
    """One message as version 1 of the format writes it (spelt out: the format stays put when
    the chat's own JSON changes)."""
    return {
        "id": message.id,
        "parent_id": message.parent_id,
        "role": message.role,
        "content": message.content,
        "thinking": message.thinking,
        "state": message.state,
        "model": message.model,
        "error": message.error,
        "stats": public_stats(message.stats),  # stored before 2026-12 with the engine's details
        "feedback": FEEDBACK.get(message.feedback),
        # a question's files, by name; an answer's passages, numbered as it cites them
        "attachments": [{"name": a["name"], "kind": a["kind"]} for a in attachments_of(message)],
        "sources": sources_of(message),
        "created_at": iso(message.created_at),
    }


# Names Windows keeps for devices, whatever the extension ("CON.md" cannot be saved).
_RESERVED_NAMES = re.compile(r"(?:CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|(?:COM|LPT)[0-9¹²³])(?:\..*)?", re.I)
# A name's bounds: characters as people count them, bytes as file systems do (255 for most).
FILE_NAME_CHARS = 100
FILE_NAME_BYTES = 200


def file_name(title: str, fallback: str) -> str:
    """A file name from a title, safe on every system: its words without their Markdown, no
    path separator, no character a system forbids or hides (controls, bidirectional overrides,
    double quotes), no name a system reserves, bounded; `fallback` when nothing is left."""
    return _safe_name(plain_title(title), fallback)


def _safe_name(text: str, fallback: str) -> str:
    name = "".join(" " if _forbidden_in_file_name(char) else char for char in text)
    name = " ".join(name.split()).strip(" .")[:FILE_NAME_CHARS]
    while len(name.encode()) > FILE_NAME_BYTES:
        name = name[:-1]
    name = name.rstrip(" .")
    if not name or _RESERVED_NAMES.fullmatch(name):
        return fallback
    return name


def _forbidden_in_file_name(char: str) -> bool:
    # C: controls, format characters (U+202E reverses what follows), unassigned, surrogates.
    # The apostrophe stays: every system takes it, and French titles are full of it ("d'un").
    return char in '/\\:*?"<>|`' or unicodedata.category(char)[0] == "C"


def download_disposition(title: str, extension: str, fallback: str) -> str:
    """A Content-Disposition for a download named after `title`: an ASCII `filename` for old
    clients, and the exact name (accents kept) as RFC 5987's `filename*`."""
    name = file_name(title, fallback)
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    plain = _safe_name(ascii_only, fallback)
    return (
        f'attachment; filename="{plain}.{extension}"; '
        f"filename*=UTF-8''{quote(f'{name}.{extension}', safe='')}"
    )
