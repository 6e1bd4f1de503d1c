"""A collection's form: its name, what it holds, and who may read it."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length

NAME_CHARS = 100
DESCRIPTION_CHARS = 300


def _strip(value: str | None) -> str:
    return (value or "").strip()


class CollectionForm(FlaskForm):
    name = StringField(
        _l("Name"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("Give the collection a name.")),
            Length(max=NAME_CHARS, message=_l("A collection name has 1 to 100 characters.")),
        ],
    )
    description = TextAreaField(
        _l("Description"),
        filters=[_strip],
        validators=[Length(max=DESCRIPTION_CHARS, message=_l("A description has at most 300 characters."))],
    )
    access = RadioField(
        _l("Who may read it"),
        choices=[
            SelectChoice("all", _l("Everyone")),
            SelectChoice("listed", _l("Only the people listed")),
        ],
        default="all",
        validate_choice=False,
        validators=[AnyOf(("all", "listed"), message=_l("Choose who may read the collection."))],
    )
    readers = StringField(_l("Readers (usernames, separated by commas or spaces)"), filters=[_strip])
