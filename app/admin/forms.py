"""The admin's form for one model's settings; an empty field keeps the configured default."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    FloatField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, Optional

from app.admin.services import PREFERENCE_FIELDS
from app.answers.sampling import THINK_CHOICES
from app.auth.forms import RegisterForm
from app.errors.inputs import NumberBetween
from app.llm.catalogue import ModelPreferences


def _between(low, high):
    return NumberBetween(low, high, _l("Enter a number from %(min)s to %(max)s."))


class ModelSettingsForm(FlaskForm):
    model = HiddenField(validators=[InputRequired()])
    enabled = BooleanField(_l("Offered to users"))
    display_name = StringField(
        _l("Name users see"),
        validators=[Length(max=80, message=_l("A name has at most 80 characters."))],
        description=_l("Empty: a name made from the model's id."),
    )
    description = StringField(
        _l("Description"),
        validators=[Length(max=200, message=_l("A description has at most 200 characters."))],
        description=_l("One line users read beside the name: what the model is good at, how fast it is."),
    )
    system_prompt = TextAreaField(
        _l("System prompt"),
        validators=[Length(max=4000, message=_l("A system prompt has at most 4000 characters."))],
    )
    temperature = FloatField(_l("Temperature"), validators=[Optional(), _between(0, 2)])
    top_k = IntegerField(_l("Top K"), validators=[Optional(), _between(1, 1000)])
    top_p = FloatField(_l("Top P"), validators=[Optional(), _between(0, 1)])
    context = IntegerField(_l("Context size (tokens)"), validators=[Optional(), _between(256, 131072)])
    threads = IntegerField(_l("Threads"), validators=[Optional(), _between(1, 256)])
    max_tokens = IntegerField(_l("Longest answer (tokens)"), validators=[Optional(), _between(1, 32768)])
    document_tokens = IntegerField(
        _l("Documents sent with a question (tokens)"),
        validators=[
            Optional(),
            NumberBetween(
                200, 32000, _l("The documents’ budget is a whole number of tokens from %(min)s to %(max)s.")
            ),
        ],
    )
    think = SelectField(
        _l("Thinking"),
        choices=[
            SelectChoice("", _l("The model's habit")),
            SelectChoice("on", _l("On")),
            SelectChoice("off", _l("Off")),
        ],
        default="",
    )

    def preferences(self) -> dict:
        """The form's values, named as ModelPreferences' fields (and ModelSetting's columns)."""
        values = {name: getattr(self, name).data for name in PREFERENCE_FIELDS}
        values["system_prompt"] = (values["system_prompt"] or "").strip()
        for one_line in ("display_name", "description"):
            values[one_line] = " ".join((values[one_line] or "").split())
        values["think"] = THINK_CHOICES[values["think"]]
        return values

    @classmethod
    def for_model(cls, model_id: str, prefs: ModelPreferences) -> "ModelSettingsForm":
        values = {name: getattr(prefs, name) for name in PREFERENCE_FIELDS}
        values["think"] = next(key for key, value in THINK_CHOICES.items() if value is prefs.think)
        return cls(formdata=None, model=model_id, **values)


class NewAccountForm(FlaskForm):
    """A local account the admin makes: its name checked as a registration's (same rules,
    same field); the password is the server's, shown once."""

    username = RegisterForm.username
    is_admin = BooleanField(_l("Administrator"))
    manages_knowledge = BooleanField(_l("May manage the knowledge bases"))
