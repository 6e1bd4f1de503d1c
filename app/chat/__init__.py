from flask import Blueprint

bp = Blueprint("chat", __name__)

from app.chat import archive_routes, routes  # noqa: E402,F401
