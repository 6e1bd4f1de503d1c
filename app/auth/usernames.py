"""Usernames that cannot pass for another's (Unicode TS #39).

Two rules: names are compared by their folded key (`app.models.fold_username`: "Alice", "alice"
and "ａｌｉｃｅ" are one name, unique in the database), and a name may not mix scripts — "аlice"
with a Cyrillic "а" would look like "alice" on every page. The TS #39 "highly restrictive" level:
one script, or Latin with the scripts written together in Chinese, Japanese or Korean.

A character's script is read from its Unicode name ("CYRILLIC SMALL LETTER A"): Python has no
script property, and a name-based check is enough for letters that pass USERNAME_PATTERN.
"""

from __future__ import annotations

import unicodedata

from flask_babel import lazy_gettext as _l
from wtforms import Field, Form
from wtforms.validators import ValidationError

from app.models import fold_username

# Scripts that may share a name (TS #39 5.2, highly restrictive), besides a single script.
_TOGETHER = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)


def _script(character: str) -> str | None:
    """The script of a character, or None for those every script uses (digits, _ . -, marks)."""
    if character.isascii() and not character.isalpha():
        return None
    if unicodedata.category(character).startswith("M"):
        return None  # a combining mark belongs to the letter before it
    name = unicodedata.name(character, "")
    return name.split(" ", 1)[0].split("-", 1)[0] or "UNKNOWN"


def scripts_of(username: str) -> set[str]:
    return {s for c in unicodedata.normalize("NFKC", username) if (s := _script(c)) is not None}


def mixes_scripts(username: str) -> bool:
    scripts = scripts_of(username)
    return len(scripts) > 1 and not any(scripts <= together for together in _TOGETHER)


class DistinctUsername:
    """A WTForms validator: a username in one script, whose folded key fits its column (NFKC can
    make one character many: "ﷺ" is 18)."""

    def __call__(self, form: Form, field: Field) -> None:
        username = field.data or ""
        if mixes_scripts(username):
            raise ValidationError(
                _l("This username mixes alphabets (such as Latin and Cyrillic letters): write it in one.")
            )
        if len(fold_username(username)) > 64:
            raise ValidationError(_l("A username has 3 to 64 characters."))
