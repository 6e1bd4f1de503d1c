"""Conversations shown read-only to colleagues and groups, and conversations moved in from
another chat (Open WebUI, ChatGPT, Causerie's own JSON export)."""

from flask import Blueprint

bp = Blueprint("sharing", __name__)

from app.sharing import routes  # noqa: E402,F401
