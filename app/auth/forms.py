"""The account forms; every message is translated lazily, in the visitor's language."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired, Length, Regexp

from app.auth.passwords import NotCommonPassword
from app.auth.services import PASSWORD_MAX, PASSWORD_MIN, USERNAME_PATTERN
from app.auth.usernames import DistinctUsername


def new_password_field(label) -> PasswordField:
    """A password being chosen: the policy's length, not among the most common, not the username."""
    return PasswordField(
        label,
        validators=[
            InputRequired(_l("Choose a password.")),
            Length(
                PASSWORD_MIN,
                PASSWORD_MAX,
                _l("A password has %(min)d to %(max)d characters.", min=PASSWORD_MIN, max=PASSWORD_MAX),
            ),
            NotCommonPassword(),
        ],
    )


def confirm_field(label) -> PasswordField:
    """The same password typed again, against a typo nobody could sign in with."""
    return PasswordField(
        label,
        validators=[
            InputRequired(_l("Repeat the password.")),
            EqualTo("password", _l("The two passwords differ.")),
        ],
    )


# Over-long sign-in fields are refused before any work, with the answer a wrong password gets.
_WRONG = _l("Wrong username or password.")


class LoginForm(FlaskForm):
    username = StringField(
        _l("Username"), validators=[InputRequired(_l("Enter your username.")), Length(max=64, message=_WRONG)]
    )
    password = PasswordField(
        _l("Password"),
        validators=[InputRequired(_l("Enter your password.")), Length(max=PASSWORD_MAX, message=_WRONG)],
    )
    remember = BooleanField(_l("Stay signed in"))


class RegisterForm(FlaskForm):
    username = StringField(
        _l("Username"),
        validators=[
            InputRequired(_l("Choose a username.")),
            Length(3, 64, _l("A username has 3 to 64 characters.")),
            Regexp(
                USERNAME_PATTERN,
                message=_l("Use letters, digits, dots, dashes and underscores only."),
            ),
            DistinctUsername(),
        ],
    )
    password = new_password_field(_l("Password"))
    confirm = confirm_field(_l("Repeat the password"))


class ChangePasswordForm(FlaskForm):
    current = PasswordField(
        _l("Current password"), validators=[InputRequired(_l("Enter your current password."))]
    )
    password = new_password_field(_l("New password"))
    confirm = confirm_field(_l("Repeat the new password"))
    revoke_keys = BooleanField(_l("Also revoke my API keys (scripts using them will stop working)"))
