from flask import Blueprint

bp = Blueprint("admin", __name__)

from app.admin import routes, serving  # noqa: E402,F401
