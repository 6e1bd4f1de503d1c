from flask import Blueprint

bp = Blueprint("auth", __name__)


@bp.record_once
def _time_limits(state) -> None:
    from app.auth import sessions

    sessions.init_app(state.app)


from app.auth import routes  # noqa: E402,F401
from app.auth.own_password import require_own_password  # noqa: E402

bp.before_app_request(require_own_password)
from app.auth.services import HashingBusy  # noqa: E402


@bp.app_errorhandler(HashingBusy)
def hashing_busy(_error: HashingBusy):
    """A hash that waited too long for its turn outside the sign-in forms (which say so in the
    form): the admin's new password for someone, for one."""
    from flask_babel import gettext as _

    from app.errors import render_error

    page, status = render_error(503, _("The server is busy with other sign-ins: try again in a few seconds."))
    return page, status, {"Retry-After": "5"}
