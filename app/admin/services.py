"""The admin's choices about models, stored in the database and read by the catalogue."""

from __future__ import annotations

import dataclasses
import logging

import sqlalchemy as sa
from flask import current_app

from app.audit import record
from app.extensions import db
from app.llm.catalogue import ModelPreferences, Preferences
from app.models import ModelSetting, SiteSetting

DEFAULT_MODEL_KEY = "default_model"
PROMPT_CACHE_KEY = "prompt_cache"  # "off" switches the engines' prompt cache off
# Stored by the upgrade that made new models wait for the admin, on a database in use (migration
# c16a00000002): before it, every model listed was offered, and the engines' models are out of a
# migration's sight. While it is stored, a model without settings is offered; the first listing
# every engine answers stores each listed model's settings, enabled, and removes it.
KEEP_LISTED_KEY = "keep_listed_models"
# ModelSetting's columns the admin edits: one per field of ModelPreferences, same names.
PREFERENCE_FIELDS = tuple(f.name for f in dataclasses.fields(ModelPreferences))

log = logging.getLogger(__name__)


def load_preferences() -> Preferences:
    """Read on every use (two small queries): a change applies to the next message."""
    rows = db.session.scalars(sa.select(ModelSetting)).all()
    site = {
        row.key: row.value
        for row in db.session.scalars(
            sa.select(SiteSetting).where(
                SiteSetting.key.in_((DEFAULT_MODEL_KEY, PROMPT_CACHE_KEY, KEEP_LISTED_KEY))
            )
        )
    }
    keep_listed = KEEP_LISTED_KEY in site
    return Preferences(
        default_model=site.get(DEFAULT_MODEL_KEY, ""),
        models={row.model_id: _preferences_of(row) for row in rows},
        prompt_cache=site.get(PROMPT_CACHE_KEY) != "off",
        new_models_enabled=current_app.config["NEW_MODELS_ENABLED"] or keep_listed,
        keep_listed_models=keep_listed_models if keep_listed else None,
    )


def keep_listed_models(model_ids: list[str]) -> None:
    """The first listing every engine answered since the upgrade: the models it names stay
    offered (their settings stored, enabled); a model listed from now on is new.

    In a transaction of its own, committed at once: the request that listed the models may be
    in the middle of its own. Two requests at once: the one that removes the setting stores the
    rows, the other finds it gone. A failure leaves the setting for the next listing."""
    site, settings = SiteSetting.__table__, ModelSetting.__table__
    try:
        with db.engine.begin() as connection:
            if not connection.execute(sa.delete(site).where(site.c.key == KEEP_LISTED_KEY)).rowcount:
                return
            stored = set(connection.scalars(sa.select(settings.c.model_id)))
            rows = [{"model_id": m, "enabled": True} for m in model_ids if m not in stored and len(m) <= 200]
            if rows:
                connection.execute(sa.insert(settings), rows)
    except sa.exc.SQLAlchemyError:
        log.warning(
            "the models listed could not be kept offered; tried again at the next listing", exc_info=True
        )
        return
    log.info(
        "models kept offered after the upgrade: %s", ", ".join(row["model_id"] for row in rows) or "none"
    )


def _preferences_of(row: ModelSetting) -> ModelPreferences:
    return ModelPreferences(**{name: getattr(row, name) for name in PREFERENCE_FIELDS})


def configured_models() -> list[str]:
    """Models the admin has set something for, found or not (a vanished one stays listed)."""
    return list(db.session.scalars(sa.select(ModelSetting.model_id).order_by(ModelSetting.model_id)))


def save_model_settings(model_id: str, **values) -> None:
    """Store the admin's decision: from now on the model is no longer new (see load_preferences).
    The audit log gets the fields that changed, before -> after (nothing changed: no entry)."""
    row = db.session.get(ModelSetting, model_id)
    before = _preferences_of(row) if row else _undecided(model_id)
    row = row or ModelSetting(model_id=model_id)
    changed: dict[str, dict] = {"before": {}, "after": {}}
    for name, value in values.items():
        if name not in PREFERENCE_FIELDS:
            raise ValueError(name)
        if getattr(before, name) != value:
            changed["before"][name], changed["after"][name] = getattr(before, name), value
        setattr(row, name, value)
    db.session.add(row)
    if changed["after"]:
        record("model.settings", model_id, details=changed)
    db.session.commit()


def _undecided(model_id: str) -> ModelPreferences:
    """A model the admin never set up: as the catalogue offers it (by NEW_MODELS_ENABLED, or
    because the server needs it), the "before" of its first settings."""
    from app.llm import services as llm

    entry = llm().catalogue.entry(model_id)
    return entry.prefs if entry else ModelPreferences()


def set_enabled(model_id: str, enabled: bool) -> None:
    save_model_settings(model_id, enabled=enabled)


def set_default_model(model_id: str) -> None:
    _set_site_setting(DEFAULT_MODEL_KEY, model_id, "model.default")


def set_prompt_cache(on: bool) -> None:
    """The engines reuse the prompts they have read (on), or read every prompt afresh (off)."""
    _set_site_setting(PROMPT_CACHE_KEY, "on" if on else "off", "serving.prompt_cache")


def _set_site_setting(key: str, value: str, audit_action: str) -> None:
    """A site-wide choice of the admin's, with its audit entry (before -> after) in the same
    transaction."""
    row = db.session.get(SiteSetting, key) or SiteSetting(key=key)
    before = row.value
    row.value = value
    db.session.add(row)
    record(audit_action, value, details={"before": {key: before}, "after": {key: value}})
    db.session.commit()
