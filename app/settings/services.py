"""A user's choices: the language and theme of their pages, and their presets."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort

from app.documents import access
from app.extensions import db
from app.models import Preset, User

THEMES = ("system", "light", "dark")


class PresetNameTaken(Exception):
    """The user already has a preset of that name (whatever its case)."""


def choose_language(user: User, language: str) -> None:
    """The language of the user's pages, on every device from their next request."""
    user.language = language
    db.session.commit()


def choose_appearance(user: User, language: str, theme: str) -> None:
    user.language = language
    user.theme = theme
    db.session.commit()


def owned_preset(user: User, preset_id: int) -> Preset:
    """The user's preset, or 404: another user's id looks exactly like a missing one."""
    preset = db.session.scalar(sa.select(Preset).where(Preset.id == preset_id, Preset.user_id == user.id))
    if preset is None:
        abort(404)
    return preset


def save_preset(
    user: User,
    preset: Preset | None,
    name: str,
    system_prompt: str,
    model: str,
    collection_ids: list[int] | None = None,
) -> Preset:
    """Create (preset None) or change one of the user's presets; of `collection_ids`, only the
    knowledge bases the user may read are kept."""
    # Compared here rather than with SQL lower(): SQLite folds the case of ASCII letters only.
    folded = name.casefold()
    if any(p.name.casefold() == folded for p in user.presets if p is not preset):
        raise PresetNameTaken(name)
    if preset is None:
        preset = Preset(owner=user)
        db.session.add(preset)
    preset.name, preset.system_prompt, preset.model = name, system_prompt, model
    preset.collection_ids = access.readable_collection_ids(user.id, collection_ids or [])
    db.session.commit()
    return preset


def delete_preset(preset: Preset) -> None:
    db.session.delete(preset)
    db.session.commit()
