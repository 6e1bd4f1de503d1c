"""What a client may send, checked once before any view reads it: ids in URLs that fit the
database's integers, and JSON bodies that are objects of sound values (issue 16, item 19).

Each of these once reached a view and failed there (500): a body nested deeper than Python's
recursion limit, a lone surrogate (\\ud800) that no database can store nor any page encode (or
a NUL, which PostgreSQL refuses), a
number of 400 digits or 1e400 (infinity), a list or a string where every route reads an
object, an id past 2^63 in a URL. Here they get a 400 (or a 404 for the id) with a clear
message, as JSON since the client spoke JSON.
"""

from __future__ import annotations

import math

from flask import Flask, Response, request
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.routing import IntegerConverter
from werkzeug.routing import ValidationError as NoMatch
from wtforms.validators import NumberRange, ValidationError

# The ids' columns are INTEGER: 32 bits on PostgreSQL. A larger id names nothing.
ID_MAX = 2**31 - 1
# Beyond these, a JSON number means nothing here (a count, a temperature, a seed, an id) and
# would overflow the database's or the engine's integers.
INTEGER_MAX = 2**63 - 1
NESTING_MAX = 32  # levels of arrays and objects; the routes read two at most


class IdConverter(IntegerConverter):
    """`<int:…>` in a route: an id the database could hold, else no match (404)."""

    def to_python(self, value: str) -> int:
        if len(value) > len(str(ID_MAX)):  # int() of thousands of digits is refused, and slow
            raise NoMatch()
        number = super().to_python(value)
        if number > ID_MAX:
            raise NoMatch()
        return number


class BodyRefused(BadRequest):
    pass


class FormRefused(Exception):
    """A form the person must correct: `errors` says how, in their language, by the field each
    concerns (all at once, not one per try); the page shows each beside its field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


class NumberBetween(NumberRange):
    """WTForms' NumberRange, for a number of hundreds of digits too (its isnan() overflows)."""

    def __call__(self, form, field) -> None:
        try:
            super().__call__(form, field)
        except OverflowError:
            raise ValidationError(self.message % {"min": self.min, "max": self.max}) from None


def whole_number(text: str, highest: int) -> int | None:
    """The whole number from 0 to `highest` that `text` writes in ASCII digits, else None: a
    form's count, page or id. isdigit() alone takes "²", which int() refuses, and int() takes
    " 7", "+7" and "7_0", and refuses or slowly reads thousands of digits."""
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(highest)):
        return None
    number = int(text)
    return number if number <= highest else None


def register_converters(app: Flask) -> None:
    """Before the blueprints: a rule takes its converter when it is added."""
    app.url_map.converters["int"] = IdConverter


def init_app(app: Flask) -> None:
    from app.errors import render_error

    app.before_request(check_json_body)
    app.before_request(check_text_fields)
    app.register_error_handler(BodyRefused, lambda error: render_error(400, error.description))

    @app.after_request
    def json_refusal_for_json_clients(response: Response) -> Response:
        """A form page that refuses a JSON body re-renders itself, in HTML: a script that sent
        JSON gets JSON."""
        if request.is_json and 400 <= response.status_code < 500 and response.mimetype == "text/html":
            body, _status = render_error(response.status_code)
            response.set_data(body.get_data())  # the same response: its headers stay
            response.mimetype = body.mimetype
        return response


def check_json_body() -> None:
    """A JSON body is read here, once (Flask keeps it for the view), and refused unless it is an
    object of sound values."""
    if not request.is_json or not request.get_data(cache=True):
        return
    try:
        data = request.get_json(silent=False)
    except RecursionError:
        raise BodyRefused(_("The body is nested too deeply.")) from None
    except BadRequest:
        raise BodyRefused(_("The body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise BodyRefused(_("The body must be a JSON object."))
    problem = _problem_in(data)
    if problem:
        raise BodyRefused(problem)


def _problem_in(data: dict) -> str:
    """What is wrong with a parsed body, "" when nothing is: walked without recursion. A number
    out of range is told with the field it was sent in (the innermost named one)."""
    pending = [(data, 1, "")]
    while pending:
        value, depth, field = pending.pop()
        if isinstance(value, dict | list):
            if depth > NESTING_MAX:
                return _("The body is nested too deeply.")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and not _encodable(key):
                    return _invalid_text()
                pending.append((item, depth + 1, key if isinstance(key, str) else field))
        elif isinstance(value, str):
            if not _encodable(value):
                return _invalid_text()
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if abs(value) > INTEGER_MAX:
                return _number_out_of_range(field)
        elif isinstance(value, float) and not math.isfinite(value):
            return _number_out_of_range(field)
    return ""


def check_text_fields() -> None:
    """A form's fields and the query string, refused when they hold what a JSON body may not:
    PostgreSQL stores no NUL character in a text column nor takes one in a query (a 500 there,
    where SQLite took it)."""
    sources = [request.args]
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        try:
            sources.append(request.form)
        except RequestEntityTooLarge:
            return  # the view's own reading says so, in its words (and the key owner's language)
    # Every value of a repeated field (a MultiDict's values() gives only the first of each).
    fields = [value for source in sources for _key, values in source.lists() for value in values]
    if any(not _encodable(value) for value in fields):
        raise BodyRefused(_invalid_text())


def _encodable(text: str) -> bool:
    if "\x00" in text:  # a NUL: no PostgreSQL text column holds one
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _invalid_text() -> str:
    return _("The text holds a character that cannot be stored (a NUL or a lone surrogate).")


def _number_out_of_range(field: str) -> str:
    if field:
        return _("The number given for “%(field)s” is out of range.", field=field)
    return _("A number in the body is out of range.")
