from flask import Blueprint

bp = Blueprint("auth", __name__)


@bp.record_once
def _time_limits(state) -> None:
    from app.auth import sessions

    sessions.init_app(state.app)


from app.auth import routes  # noqa: E402,F401
