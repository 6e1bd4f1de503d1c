"""The settings page's forms: language and theme, and a preset."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, ValidationError

from app.settings.services import THEMES

LANGUAGE_NAMES = {"fr": "Français", "en": "English"}  # each in its own language, never translated
PRESET_NAME_CHARS = 100
PRESET_PROMPT_CHARS = 8000


def _strip(value: str | None) -> str:
    return (value or "").strip()


class AppearanceForm(FlaskForm):
    # validate_choice off: a value outside the choices gets these messages, not WTForms' own.
    language = RadioField(
        _l("Language"),
        choices=[SelectChoice(code, name) for code, name in LANGUAGE_NAMES.items()],
        validate_choice=False,
        validators=[AnyOf(LANGUAGE_NAMES, message=_l("Pick one of the languages offered."))],
    )
    theme = RadioField(
        _l("Theme"),
        choices=[
            SelectChoice("system", _l("Like the device")),
            SelectChoice("light", _l("Light")),
            SelectChoice("dark", _l("Dark")),
        ],
        validate_choice=False,
        validators=[AnyOf(THEMES, message=_l("Pick one of the themes offered."))],
    )


class PresetForm(FlaskForm):
    name = StringField(
        _l("Name"),
        filters=[_strip],
        validators=[
            DataRequired(message=_l("Give the preset a name.")),
            Length(max=PRESET_NAME_CHARS, message=_l("A preset name has 1 to 100 characters.")),
        ],
    )
    system_prompt = TextAreaField(
        _l("System prompt"),
        filters=[_strip],
        validators=[
            Length(max=PRESET_PROMPT_CHARS, message=_l("A system prompt has at most 8000 characters."))
        ],
    )
    model = SelectField(_l("Model"), default="", validate_choice=False)
    # The knowledge bases a conversation started from the preset is answered from.
    collection_ids = SelectMultipleField(_l("Knowledge bases"), default=[], validate_choice=False)

    def __init__(
        self, *args, models: list[tuple[str, str]], collections: list[tuple[int, str]] = (), **kwargs
    ) -> None:
        """`models`: the (id, name) of every model offered to users now; `collections`: the
        (id, name) of the knowledge bases the user may read."""
        super().__init__(*args, **kwargs)
        self.model.choices = [SelectChoice("", _l("The default model"))] + [
            SelectChoice(value, label) for value, label in models
        ]
        self.collection_ids.choices = [SelectChoice(str(value), label) for value, label in collections]

    def validate_collection_ids(self, field: SelectMultipleField) -> None:
        if not all(str(value).isdigit() for value in field.data or []):
            raise ValidationError(_l("Pick knowledge bases from the list."))

    def chosen_collections(self) -> list[int]:
        return [int(value) for value in self.collection_ids.data or []]

    def validate_model(self, field: SelectField) -> None:
        if field.data not in {choice.value for choice in field.choices}:
            raise ValidationError(_l("This model is not available."))
