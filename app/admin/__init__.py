from flask import Blueprint

bp = Blueprint("admin", __name__)


@bp.app_template_global()
def pending_approvals() -> int:
    """How many accounts wait for the admin's approval, for the badge in the admin's navigation
    (0 for anyone else): asked of the database only by a page that shows the badge."""
    from flask_login import current_user

    from app.admin.users import pending_count

    return pending_count() if current_user.is_authenticated and current_user.is_admin else 0


from app.admin import account_routes, routes, serving  # noqa: E402,F401
