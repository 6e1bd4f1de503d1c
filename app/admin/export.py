"""One person's data, as JSON, for a data request (GDPR art. 15 and 20): their account, their
conversations with every version of each message and to whom each is shown, their documents'
descriptions, presets, API keys, groups, quotas, and the audit entries by them or about them.

Left out, on purpose: secrets (the password's hash, the session token, the keys' digests), the
documents' files and extracted text (the files are what they uploaded: handed over as files if
asked; the text is made from them), the passages of collections an answer quoted (others'
documents), and the addresses of other people in the audit entries about them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from app.admin.users import source_of
from app.extensions import db
from app.models import (
    ApiKey,
    AuditEntry,
    Collection,
    Conversation,
    ConversationShare,
    Document,
    Group,
    GroupMember,
    Message,
    Preset,
    User,
    utcnow,
)

FORMAT = "causerie-account-export"
VERSION = 1
# Audit actions about an account, whoever did them: those whose target is its name.
_ABOUT_ACCOUNTS = ("account.", "signin.", "signout", "directory.", "apikey.")


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment else None


def _account(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "source": source_of(user),
        "directory_id": user.directory_id,
        "administrator": user.is_admin,
        "manages_knowledge": user.manages_knowledge,
        "disabled": user.disabled,
        "waiting_for_approval": user.pending,
        "must_change_password": user.must_change_password,
        "language": user.language,
        "theme": user.theme,
        "created_at": _when(user.created_at),
        "directory_checked_at": _when(user.directory_checked_at),
    }


def _message(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "parent_id": message.parent_id,  # siblings (same parent) are versions of one turn
        "role": message.role,
        "content": message.content,
        "thinking": message.thinking,
        "state": message.state,
        "model": message.model,
        "error": message.error,
        "feedback": message.feedback,
        "created_at": _when(message.created_at),
        # which documents an answer quoted, by name and page; not their passages
        "sources": [
            {"n": s.get("n"), "document": s.get("name"), "page": s.get("page")}
            for s in (message.sources or {}).get("passages", [])
            if isinstance(s, dict)
        ],
    }


def _recipients(conversation_ids: list[int]) -> dict[int, list[str]]:
    """To whom each conversation is shown read-only (art. 15's recipients): colleagues and groups
    by name."""
    rows = db.session.execute(
        sa.select(ConversationShare.conversation_id, User.username, Group.name)
        .outerjoin(User, User.id == ConversationShare.user_id)
        .outerjoin(Group, Group.id == ConversationShare.group_id)
        .where(ConversationShare.conversation_id.in_(conversation_ids))
        .order_by(ConversationShare.id)
    )
    recipients: dict[int, list[str]] = {}
    for conversation_id, username, group in rows:
        recipients.setdefault(conversation_id, []).append(username or f"group: {group}")
    return recipients


def _conversation(conversation: Conversation, shared_with: list[str]) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "model": conversation.model,
        "system_prompt": conversation.system_prompt,
        "options": conversation.options,
        "think": conversation.think,
        "pinned": conversation.pinned,
        "created_at": _when(conversation.created_at),
        "updated_at": _when(conversation.updated_at),
        "shared_with": shared_with,
        "messages": [_message(m) for m in conversation.messages],
    }


def _documents(user: User) -> list[dict[str, Any]]:
    rows = db.session.execute(
        sa.select(Document, Collection.name)
        .outerjoin(Collection, Collection.id == Document.collection_id)
        .where(Document.owner_id == user.id)
        .order_by(Document.id)
    )
    return [
        {
            "id": d.id,
            "filename": d.filename,
            "kind": d.kind,
            "size_bytes": d.size_bytes,
            "sha256": d.sha256,
            "pages": d.pages,
            "characters": d.characters,
            "state": d.state,
            "collection": collection,
            "conversation_id": d.conversation_id,
            "created_at": _when(d.created_at),
        }
        for d, collection in rows
    ]


def _audit(user: User) -> list[dict[str, Any]]:
    about = sa.and_(
        AuditEntry.target == user.username,
        sa.or_(*(AuditEntry.action.startswith(prefix) for prefix in _ABOUT_ACCOUNTS)),
    )
    entries = db.session.scalars(
        sa.select(AuditEntry).where(sa.or_(AuditEntry.actor_id == user.id, about)).order_by(AuditEntry.id)
    )
    return [
        {
            "at": _when(e.created_at),
            "by": e.actor_name,
            # their own address; another person's (an admin's) is that person's data
            "address": e.address if e.actor_id == user.id else None,
            "action": e.action,
            "target": e.target,
            "details": e.details,
        }
        for e in entries
    ]


def export(user: User, exported_by: User) -> dict[str, Any]:
    conversations = db.session.scalars(
        sa.select(Conversation)
        .where(Conversation.user_id == user.id)
        .options(selectinload(Conversation.messages))  # with the conversations, not one query each
        .order_by(Conversation.id)
    ).all()
    recipients = _recipients([c.id for c in conversations])
    groups = db.session.execute(
        sa.select(Group.name, GroupMember.from_directory)
        .join(GroupMember, GroupMember.group_id == Group.id)
        .where(GroupMember.user_id == user.id)
        .order_by(Group.name)
    )
    keys = db.session.scalars(sa.select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.id))
    presets = db.session.scalars(sa.select(Preset).where(Preset.user_id == user.id).order_by(Preset.id))
    return {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": _when(utcnow()),
        "exported_by": exported_by.username,
        "account": _account(user),
        "quotas": {
            "answers_per_day": user.answers_per_day,
            "tokens_per_day": user.tokens_per_day,
            "answers_at_once": user.answers_at_once,
            "note": "the person's own limits; null: their groups' (see groups)",
        },
        "groups": [{"name": name, "from_directory": from_directory} for name, from_directory in groups],
        "conversations": [_conversation(c, recipients.get(c.id, [])) for c in conversations],
        "documents": _documents(user),
        "documents_note": "descriptions only: the files and their extracted text are not included",
        "presets": [
            {
                "name": p.name,
                "system_prompt": p.system_prompt,
                "model": p.model,
                "collection_ids": p.collection_ids,
                "created_at": _when(p.created_at),
            }
            for p in presets
        ],
        "api_keys": [
            {
                "name": k.name,
                "prefix": k.prefix,
                "created_at": _when(k.created_at),
                "last_used_at": _when(k.last_used_at),
                "revoked_at": _when(k.revoked_at),
            }
            for k in keys
        ],
        "audit": _audit(user),
    }
