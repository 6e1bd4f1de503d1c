"""The API for scripts, notebooks and editors: `/api/v1` (ours) and `/v1` (OpenAI's shape).

Both take only `Authorization: Bearer <key>` (keys made by each user on the Settings page),
never the session cookie: so they need no CSRF token, and a page of another site cannot use a
signed-in browser to call them.
"""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")
openai_bp = Blueprint("openai", __name__, url_prefix="/v1")
keys_bp = Blueprint("api_keys", __name__)  # the Settings page's key forms (session and CSRF)

from app.api import auth, document_routes, key_routes, openai_routes, routes  # noqa: E402,F401
