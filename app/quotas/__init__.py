"""Quotas as people and the admin see them: what is left today (the composer, Settings), use
against limits per group, each group's and person's limits (the rules: app.accounts.quotas)."""

from flask import Blueprint

bp = Blueprint("quotas", __name__)

from app.quotas import routes  # noqa: E402,F401
