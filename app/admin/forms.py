"""The admin's form for one model's settings; an empty field keeps the configured default."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, FloatField, HiddenField, IntegerField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional

THINK_CHOICES = {"": None, "on": True, "off": False}


def _between(low, high):
    return NumberRange(low, high, _l("Enter a number from %(min)s to %(max)s."))


class ModelSettingsForm(FlaskForm):
    model = HiddenField(validators=[InputRequired()])
    enabled = BooleanField(_l("Offered to users"))
    system_prompt = TextAreaField(
        _l("System prompt"),
        validators=[Length(max=4000, message=_l("A system prompt has at most 4000 characters."))],
    )
    temperature = FloatField(_l("Temperature"), validators=[Optional(), _between(0, 2)])
    top_k = IntegerField("top_k", validators=[Optional(), _between(1, 1000)])
    top_p = FloatField("top_p", validators=[Optional(), _between(0, 1)])
    context = IntegerField(_l("Context size (tokens)"), validators=[Optional(), _between(256, 131072)])
    threads = IntegerField(_l("Threads"), validators=[Optional(), _between(1, 256)])
    max_tokens = IntegerField(_l("Longest answer (tokens)"), validators=[Optional(), _between(1, 32768)])
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
        """The form's values as ModelSetting's columns."""
        names = ("enabled", "temperature", "top_k", "top_p", "context", "threads", "max_tokens")
        values = {name: getattr(self, name).data for name in names}
        values["system_prompt"] = (self.system_prompt.data or "").strip()
        values["think"] = THINK_CHOICES[self.think.data]
        return values

    @classmethod
    def for_entry(cls, entry_id: str, prefs, **kwargs) -> "ModelSettingsForm":
        think = next(key for key, value in THINK_CHOICES.items() if value == prefs.think)
        return cls(
            formdata=None,
            model=entry_id,
            enabled=prefs.enabled,
            system_prompt=prefs.system_prompt,
            temperature=prefs.temperature,
            top_k=prefs.top_k,
            top_p=prefs.top_p,
            context=prefs.context,
            threads=prefs.threads,
            max_tokens=prefs.max_tokens,
            think=think,
            **kwargs,
        )
