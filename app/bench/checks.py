"""Automatic checks of a benchmark answer, registered in one place.

A suite names a check as `{"kind": ..., **params}`. To add one: write a function
`(answer: str, **params) -> CheckResult` at the end of this module, register it with
`@check(kind, description, **param_types)`, put its notes in NOTES, and give it a good and a bad
answer in tests/test_bench_checks.py (a test fails while a registered check has none).

Checks read the answer only (the caller has already removed any thinking), and what the run
knows of the answer's making that a suite cannot say: a check's keyword-only parameters (after
`*`) are that context, given by the run to `run(spec, answer, **context)` (a documents suite's
`source`, and the `sources` its passages came from), never written in a suite.
"""

from __future__ import annotations

import ast
import inspect
import logging
import math
import re
import textwrap
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import LazyString
from flask_babel import lazy_gettext as _l

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    note: str  # a key of NOTES: what the admin reads, translated when shown
    values: dict = field(default_factory=dict)  # JSON-serialisable values for the note's placeholders

    def as_dict(self) -> dict:
        return {"passed": self.passed, "note": self.note, "values": dict(self.values)}


# A parameter is declared as a type, a tuple of types, or a function returning what is wrong with
# a value ("must be ...") or None when it is fine.
ParamType = type | tuple[type, ...] | Callable[[Any], str | None]
CheckFunction = Callable[..., CheckResult]


@dataclass(frozen=True)
class Check:
    kind: str
    function: CheckFunction
    params: dict[str, ParamType]
    description: LazyString
    required: frozenset[str]  # the parameters without a default in the function's signature


CHECKS: dict[str, Check] = {}

NOTES: dict[str, LazyString] = {
    "check_invalid": _l("This check cannot run: %(problem)s"),
    "check_crashed": _l("The %(kind)s check failed with an internal error (see the server log)."),
    "no_code_block": _l("No Python code block in the answer."),
    "syntax_error": _l("The Python code does not parse: %(error)s, line %(line)s of its block."),
    "code_parses": _l("The Python code parses (%(lines)s lines)."),
    "game_loop_found": _l("The Python code parses (%(lines)s lines) and has a game loop."),
    "no_game_loop": _l("The Python code parses but has no game loop."),
    "facts_present": _l("All expected facts are present: %(facts)s."),
    "facts_missing": _l("Missing: %(missing)s."),
    "words_within": _l("%(count)s words, within %(min)s to %(max)s."),
    "too_few_words": _l("%(count)s words, fewer than %(min)s."),
    "too_many_words": _l("%(count)s words, more than %(max)s."),
    "number_matches": _l("The last number is %(found)s, as expected."),
    "number_differs": _l("The last number is %(found)s; expected %(expected)s."),
    "no_number": _l("No number in the answer; expected %(expected)s."),
    "cites_source": _l("The answer cites %(cited)s, from %(source)s."),
    "cites_other_source": _l("The answer cites %(cited)s, none of them from %(source)s."),
    "cites_nothing": _l("The answer cites no passage (no [n] marker)."),
    "no_passages": _l("No passage was given with the question: nothing to cite."),
}


def check(
    kind: str, description: LazyString, **params: ParamType
) -> Callable[[CheckFunction], CheckFunction]:
    """Register a check function under `kind`; `params` declares the type of each of its parameters."""

    def register(function: CheckFunction) -> CheckFunction:
        signature = inspect.signature(function).parameters
        # The first is the answer; keyword-only ones are the run's context, not the suite's.
        names = [n for n in list(signature)[1:] if signature[n].kind is not inspect.Parameter.KEYWORD_ONLY]
        if set(names) != set(params) or kind in CHECKS:
            raise TypeError(f"check {kind!r}: declared {sorted(params)}, function takes {names}")
        required = frozenset(n for n in names if signature[n].default is inspect.Parameter.empty)
        CHECKS[kind] = Check(kind, function, dict(params), description, required)
        return function

    return register


def validate(spec: dict) -> None:
    """Raise ValueError, in plain English, when `spec` does not name a known check with valid parameters."""
    if not isinstance(spec, dict):
        raise ValueError('a check must be a table such as { kind = "contains", facts = ["Paris"] }')
    kind = spec.get("kind")
    if not isinstance(kind, str) or kind not in CHECKS:
        raise ValueError(f"unknown check kind {kind!r} (known: {', '.join(sorted(CHECKS))})")
    declared = CHECKS[kind]
    params = {name: value for name, value in spec.items() if name != "kind"}
    unknown = sorted(set(params) - set(declared.params))
    if unknown:
        known = ", ".join(sorted(declared.params)) or "none"
        raise ValueError(f"check {kind!r} has no parameter {', '.join(unknown)} (its parameters: {known})")
    missing = sorted(declared.required - set(params))
    if missing:
        raise ValueError(f"check {kind!r} needs {', '.join(missing)}")
    for name, value in params.items():
        problem = _problem(declared.params[name], value)
        if problem:
            raise ValueError(f"check {kind!r}: {name} {problem}, not {value!r}")
    # One convention across checks, rather than a hook per check: a range must not be empty.
    if "min" in params and "max" in params and params["min"] > params["max"]:
        raise ValueError(f"check {kind!r}: min ({params['min']}) is greater than max ({params['max']})")


def run(spec: dict, answer: str, **context: Any) -> CheckResult:
    """The check's verdict on `answer`; never raises, whatever the answer or the stored spec.
    `context` is what the run knows beside the answer; a check takes the parts it declares."""
    try:
        validate(spec)
    except ValueError as exc:
        return CheckResult(False, "check_invalid", {"problem": str(exc)})
    kind = spec["kind"]
    params = {name: value for name, value in spec.items() if name != "kind"}
    function = CHECKS[kind].function
    wanted = inspect.signature(function).parameters
    for name, value in context.items():
        if name in wanted and wanted[name].kind is inspect.Parameter.KEYWORD_ONLY:
            params[name] = value
    try:
        return function(answer if isinstance(answer, str) else "", **params)
    except Exception:  # a bug in one check must not sink a whole benchmark run
        logger.exception("The %s check failed on an answer", kind)
        return CheckResult(False, "check_crashed", {"kind": kind})


def describe(result: dict) -> str:
    """The translated sentence for a stored result (CheckResult.as_dict); never raises."""
    note = result.get("note", "") if isinstance(result, dict) else ""
    template = NOTES.get(note) if isinstance(note, str) else None
    if template is None:
        return str(note)
    values = result.get("values")
    try:
        return str(template) % _Values(values if isinstance(values, dict) else {})
    except (TypeError, ValueError):  # a translation with a broken placeholder
        return str(template)


class _Values(dict):
    """Placeholder values as the admin reads them: lists joined, a missing value shown as '?'."""

    def __getitem__(self, key: str) -> str:
        value = self.get(key, "?")
        if isinstance(value, list | tuple):
            return ", ".join(str(item) for item in value)
        return str(value)


_TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "text", list: "a list"}


def _problem(expected: ParamType, value: Any) -> str | None:
    if not isinstance(expected, type | tuple):
        return expected(value)
    types = expected if isinstance(expected, tuple) else (expected,)
    # bool is a subclass of int: `min = true` must not pass for 1.
    if isinstance(value, types) and (bool in types or not isinstance(value, bool)):
        return None
    return "must be " + " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


def _number(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return None
    return "must be a number"


def _non_negative_number(value: Any) -> str | None:
    return _number(value) or (None if value >= 0 else "must not be negative")


def _facts(value: Any) -> str | None:
    def is_fact(item: Any) -> bool:
        return isinstance(item, str) and bool(_words(item).strip())

    if not isinstance(value, list) or not value:
        return "must be a non-empty list"
    for item in value:
        if not (is_fact(item) or (isinstance(item, list) and item and all(is_fact(i) for i in item))):
            return "must hold texts, or lists of alternative texts, each with a letter or digit"
    return None


# --- python_code -------------------------------------------------------------------------------------

# Lenient on indentation: models often indent a fence inside a numbered list.
_OPENING = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([^\s`]*)")
_PYTHON = {"", "python", "python3", "py", "py3"}
# Calls that schedule the next frame in toolkits without a `while` loop: tkinter, turtle, pyglet.
_FRAME_SCHEDULERS = {"after", "ontimer", "schedule_interval"}


def code_blocks(answer: str) -> list[tuple[str, str]]:
    """The fenced blocks as (language, code); a block cut off by the token limit counts as written."""
    blocks, lines, fence, language = [], [], "", ""
    for line in answer.splitlines():
        if not fence:
            opening = _OPENING.match(line)
            if opening:
                fence, language, lines = opening.group(1), opening.group(2).lower(), []
        elif line.strip().startswith(fence) and not line.strip().strip(fence[0]):
            blocks.append((language, textwrap.dedent("\n".join(lines))))
            fence = ""
        else:
            lines.append(line)
    if fence:
        blocks.append((language, textwrap.dedent("\n".join(lines))))
    return blocks


def _parse(code: str) -> ast.Module | SyntaxError:
    try:
        return ast.parse(code)
    except SyntaxError as exc:
        return exc
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return SyntaxError(str(exc))


def has_game_loop(tree: ast.AST) -> bool:
    """A `while` loop anywhere (pygame, curses, console games), or a call scheduling the next frame."""
    for node in ast.walk(tree):
        if isinstance(node, ast.While):
            return True
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _FRAME_SCHEDULERS:
                return True
    return False


@check(
    "python_code",
    _l("The answer has a Python code block that parses; with game_loop, the code also has a game loop."),
    game_loop=bool,
)
def python_code(answer: str, game_loop: bool = False) -> CheckResult:
    """Passes when one block (```python, ```py, ``` or ~~~) parses; blocks in other languages are ignored.

    A block with no statement (empty, comments only) is not code. With `game_loop`, one of the
    parsing blocks must have a game loop (see has_game_loop): a program is often split over blocks.
    On failure the note names the syntax error of the longest block, the likely program.
    """
    candidates = [code for language, code in code_blocks(answer) if language in _PYTHON]
    parsed = [(code, _parse(code)) for code in candidates]
    trees = [(code, tree) for code, tree in parsed if isinstance(tree, ast.Module) and tree.body]
    errors = [(code, error) for code, error in parsed if isinstance(error, SyntaxError)]
    if not trees:
        if not errors:
            return CheckResult(False, "no_code_block")
        _, error = max(errors, key=lambda pair: len(pair[0]))
        return CheckResult(
            False, "syntax_error", {"error": error.msg or str(error), "line": error.lineno or 0}
        )
    if not game_loop:
        code, _ = max(trees, key=lambda pair: len(pair[0]))
        return CheckResult(True, "code_parses", {"lines": len(code.splitlines())})
    looping = [code for code, tree in trees if has_game_loop(tree)]
    if not looping:
        return CheckResult(False, "no_game_loop")
    return CheckResult(True, "game_loop_found", {"lines": len(max(looping, key=len).splitlines())})


# --- contains ----------------------------------------------------------------------------------------


def _words(text: str) -> str:
    """Text compared without case, accents or punctuation: ' l ile de france ' for "L'Île-de-France"."""
    text = unicodedata.normalize("NFKD", text.casefold().replace("œ", "oe").replace("æ", "ae"))
    text = "".join(char for char in text if not unicodedata.combining(char))
    return " " + " ".join(re.findall(r"[^\W_]+", text)) + " "


@check(
    "contains",
    _l("Every expected fact (or one of its alternatives) appears in the answer, as whole words."),
    facts=_facts,
)
def contains(answer: str, facts: list) -> CheckResult:
    """Passes when each fact appears; a fact may be a list of alternatives, one of which is enough.

    Case, accents, punctuation and spacing do not matter, but words must be whole: "Lyon" is not
    found in "Lyonnais", nor "1889" in "18890". A fact can be several words ("tour Eiffel").
    """
    text = _words(answer)
    missing = []
    for fact in facts:
        alternatives = [fact] if isinstance(fact, str) else fact
        if not any(_words(alternative) in text for alternative in alternatives):
            missing.append(" / ".join(alternatives))
    if missing:
        return CheckResult(False, "facts_missing", {"missing": missing})
    return CheckResult(True, "facts_present", {"facts": [f if isinstance(f, str) else f[0] for f in facts]})


# --- word_count --------------------------------------------------------------------------------------


def count_words(text: str) -> int:
    """Whitespace-separated pieces with a letter or digit: markdown's #, -, ** are not words."""
    return sum(1 for piece in text.split() if any(char.isalnum() for char in piece))


@check("word_count", _l("The answer's length in words is within the bounds."), min=int, max=int)
def word_count(answer: str, min: int, max: int) -> CheckResult:
    """Counts the whole answer, title included, as a word processor would ("l'usine" is one word)."""
    count = count_words(answer)
    values = {"count": count, "min": min, "max": max}
    if count < min:
        return CheckResult(False, "too_few_words", values)
    if count > max:
        return CheckResult(False, "too_many_words", values)
    return CheckResult(True, "words_within", values)


# --- final_number ------------------------------------------------------------------------------------

# French first: a comma or a dot before digits is a decimal separator ("2,5" is 2.5, and so is "2.5");
# a space (ordinary, no-break or narrow no-break) between groups of three digits separates thousands
# ("1 200"). A number glued to a letter on its left belongs to a word (H2O, the 30 of 14h30).
_NUMBER = re.compile(r"(?<![\w.,])([-\u2212]?)(\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?!\d)|\d+)(?:[.,](\d+))?")


def last_number(text: str) -> tuple[str, float] | None:
    """The last number in `text`, as written and as a value (infinite when absurdly long)."""
    found = None
    for found in _NUMBER.finditer(text):  # noqa: B007 - the last match is the one wanted
        pass
    if found is None:
        return None
    sign, whole, decimals = found.groups()
    value = float(("-" if sign else "") + re.sub(r"\D", "", whole) + ("." + decimals if decimals else ""))
    written = found.group(0)
    return (written if len(written) <= 40 else written[:39] + "…"), value


@check(
    "final_number",
    _l("The last number in the answer equals the expected one, within the tolerance."),
    expected=_number,
    tolerance=_non_negative_number,
)
def final_number(answer: str, expected: float, tolerance: float = 0) -> CheckResult:
    """Passes when the last number equals `expected`: a reasoning answer ends with its result."""
    found = last_number(answer)
    if found is None:
        return CheckResult(False, "no_number", {"expected": expected})
    written, value = found
    values = {"found": written, "expected": expected}
    # A float margin so that 0.1 + 0.2 style answers compare as equal when tolerance is 0.
    close = math.isfinite(value) and abs(value - expected) <= tolerance + 1e-9 * max(1.0, abs(expected))
    return CheckResult(close, "number_matches" if close else "number_differs", values)


# --- cites_source ------------------------------------------------------------------------------------

# The markers the chat's prompt asks for: [2], and several at once as [1][3], [1, 3] or [1; 3].
_MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\s*\]")


def cited_numbers(answer: str) -> list[int]:
    """The passage numbers the answer cites, in the order first cited."""
    numbers: list[int] = []
    for marker in _MARKER.finditer(answer):
        for number in re.findall(r"\d+", marker.group(1)):
            if int(number) not in numbers:
                numbers.append(int(number))
    return numbers


@check("cites_source", _l("The answer cites, with a [n] marker, a passage of the document that answers."))
def cites_source(answer: str, *, source: str = "", sources: list | tuple = ()) -> CheckResult:
    """Passes when one [n] marker names a passage from `source`; `sources` are the documents of
    the passages given with the question, [1] first. A marker past the passages cites nothing."""
    if not sources:
        return CheckResult(False, "no_passages")
    numbers = cited_numbers(answer)
    if not numbers:
        return CheckResult(False, "cites_nothing")
    cited = [f"[{n}]" for n in numbers]
    values = {"cited": cited, "source": source}
    if any(1 <= n <= len(sources) and sources[n - 1] == source for n in numbers):
        return CheckResult(True, "cites_source", values)
    return CheckResult(False, "cites_other_source", values)
