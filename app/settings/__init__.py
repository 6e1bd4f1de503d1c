"""A user's settings: the language and theme of their pages, their presets; and the company's
look from the configuration (`brand`)."""

from flask import Blueprint

bp = Blueprint("settings", __name__, url_prefix="/settings")

from app.settings import routes  # noqa: E402,F401
