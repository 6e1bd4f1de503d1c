"""The admin's groups: who is in them (chosen, or from a directory group), which models they use
and which knowledge bases they read (the rule itself is app.accounts.access)."""

from flask import Blueprint

bp = Blueprint("groups", __name__)

from app.groups import routes  # noqa: E402,F401
