"""The admin's form to start a benchmark: models, suite, repetitions, start, thinking, judge."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField, RadioField, SelectField, SelectMultipleField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from app.bench.runs import Plan
from app.errors.inputs import NumberBetween

MAX_REPETITIONS = 10


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class BenchmarkForm(FlaskForm):
    models = CheckboxesField(
        _l("Models"), validators=[InputRequired(_l("Pick at least one model."))], validate_choice=False
    )
    suite = SelectField(_l("Suite"), validate_choice=False)
    repetitions = IntegerField(
        _l("Repetitions"),
        default=1,
        validators=[
            InputRequired(_l("Say how many times each prompt is asked.")),
            NumberBetween(1, MAX_REPETITIONS, _l("Repetitions: a whole number from %(min)s to %(max)s.")),
        ],
    )
    start = RadioField(
        _l("Start"),
        choices=[
            SelectChoice("warm", _l("Warm: the model is loaded before the first measure")),
            SelectChoice("cold", _l("Cold: the model is unloaded before each answer; load times count")),
        ],
        default="warm",
    )
    thinking = SelectField(
        _l("Thinking (reasoning models)"),
        choices=[
            SelectChoice("default", _l("The model's setting")),
            SelectChoice("on", _l("On")),
            SelectChoice("off", _l("Off")),
            SelectChoice("both", _l("Both, to compare")),
        ],
        default="default",
    )
    judge = SelectField(_l("Judge (optional)"), validate_choice=False)

    def fill(self, suites: dict, usable: list[str]) -> "BenchmarkForm":
        self.suites, self.usable = suites, usable
        self.models.choices = [(m, m) for m in usable]
        self.suite.choices = [(s.id, f"{s.name} ({len(s.prompts)})") for s in suites.values()]
        self.judge.choices = [("", _l("No judge"))] + [(m, m) for m in usable]
        return self

    def validate_models(self, field) -> None:
        unknown = [m for m in field.data or [] if m not in self.usable]
        if unknown:
            raise ValidationError(_l("Not available for a benchmark: %(models)s.", models=", ".join(unknown)))

    def validate_suite(self, field) -> None:
        if field.data not in self.suites:
            raise ValidationError(_l("Pick one of the suites."))

    def validate_judge(self, field) -> None:
        if field.data and field.data not in self.usable:
            raise ValidationError(_l("The judge must be one of the models installed here."))

    def plan(self) -> Plan:
        return Plan(
            suite=self.suites[self.suite.data],
            models=list(dict.fromkeys(self.models.data)),  # each once, in the order ticked
            repetitions=self.repetitions.data,
            start=self.start.data,
            thinking=self.thinking.data,
            judge_model=self.judge.data or "",
        )
