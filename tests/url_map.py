"""The app's routes as a sweep sees them: every rule's URL with its variable parts filled."""

from __future__ import annotations

import itertools
import re

VARIABLE = re.compile(r"<(?:(?P<converter>[^:<>]+):)?(?P<name>\w+)>")


def url_of(rule, values: dict | None = None, default_id: int = 1) -> str:
    """The rule's URL, its variable parts filled: from `values`, else an any() converter's first
    choice, else `default_id` (every other variable part is an id)."""
    values = values or {}

    def fill(match: re.Match) -> str:
        name, converter = match["name"], match["converter"] or ""
        if name in values:
            return str(values[name])
        if converter.startswith("any("):
            return converter[4:-1].split(",")[0].strip(" '\"")
        return str(default_id)

    return VARIABLE.sub(fill, rule.rule)


def sweep(app, rules, values: dict[str, list] | None = None):
    """(rule, method, url) for every method of every rule, and every combination of `values` for
    its variable parts. Each URL is checked to reach its rule: a 404 because a URL matched
    nothing would prove nothing."""
    adapter = app.url_map.bind("localhost")
    values = values or {}
    for rule in rules:
        names = sorted(name for name in rule.arguments if name in values)
        for chosen in itertools.product(*(values[name] for name in names)):
            url = url_of(rule, dict(zip(names, chosen, strict=True)))
            for method in sorted(rule.methods):
                endpoint, _arguments = adapter.match(url, method)
                # OPTIONS matches the first rule of a path, whichever its methods
                assert method == "OPTIONS" or endpoint == rule.endpoint, f"{method} {url}: {endpoint}"
                yield rule, method, url
