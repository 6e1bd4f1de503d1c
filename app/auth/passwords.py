"""Which passwords are refused beyond their length: the most common ones, and the username.

No composition rule (ASVS 6.2.5): any characters, spaces and emoji included. The list
(ASVS 6.2.4 asks for at least the top 3 000; it holds 30 000) is common-passwords.txt,
built by scripts/build-common-passwords from zxcvbn's (MIT licence).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import Field, Form
from wtforms.validators import ValidationError

COMMON_PASSWORDS_FILE = Path(__file__).with_name("common-passwords.txt")


@cache
def common_passwords() -> frozenset[str]:
    """The list, read once, at the first password checked rather than at every start-up."""
    with COMMON_PASSWORDS_FILE.open(encoding="utf-8") as lines:
        return frozenset(line.rstrip("\n") for line in lines if line.strip() and not line.startswith("#"))


def is_common(password: str) -> bool:
    # Case does not make a listed password any less guessable: "PASSWORD1234" is tried too.
    return password.casefold() in common_passwords()


class NotCommonPassword:
    """A WTForms validator: neither a listed password nor the account's own name.

    The name is the form's `username_field`, or, on a form without one (a password change),
    the signed-in user's.
    """

    def __init__(self, username_field: str = "username") -> None:
        self.username_field = username_field

    def __call__(self, form: Form, field: Field) -> None:
        password = field.data or ""
        if is_common(password):
            raise ValidationError(_l("This password is among the most common ones: choose another."))
        username = self._username(form)
        if username and password.strip().casefold() == username.strip().casefold():
            raise ValidationError(_l("A password cannot be your username: choose another."))

    def _username(self, form: Form) -> str:
        if self.username_field in form:
            return form[self.username_field].data or ""
        return current_user.username if current_user.is_authenticated else ""
