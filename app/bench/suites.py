"""Benchmark suites: named prompts with their settings and checks, read from TOML files.

A file is one suite, its id the file's stem::

    name = "Essentiel"
    description = "..."

    [defaults]            # per-prompt settings, each prompt may override them
    max_tokens = 512

    [[prompts]]
    id = "capitale"
    name = "Capitale"
    prompt = "Quelle est la capitale de la France ?"
    reference = "Paris."  # what a good answer contains, for the judge
    check = { kind = "contains", facts = ["Paris"] }

A suite about company documents names a folder of documents beside the file, and each
prompt the document and the exact passage that answer it (the run indexes the folder, retrieves
passages for each question and records whether that passage was among them)::

    documents = "documents"

    [[prompts]]
    source = "securite-presses.md"
    passage = "est déclaré au service des ressources humaines sous 48 heures."
    check = { kind = "cites_source" }

Unknown keys are refused: a misspelt setting must not be silently ignored.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.bench import checks

SHIPPED_SUITES = Path(__file__).resolve().parents[2] / "benchmarks" / "suites"

# Greedy decoding with a fixed seed: the same model on the same suite gives the same answers.
SETTINGS: dict[str, Any] = {"max_tokens": 512, "temperature": 0.0, "top_k": 1, "top_p": 1.0, "seed": 42}
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_DOCUMENT_KEYS = ("source", "passage")


class SuiteError(ValueError):
    """A suite that cannot be used; the message names the file (or suite) and the problem."""


@dataclass(frozen=True)
class Prompt:
    id: str
    name: str
    text: str
    system: str = ""
    reference: str = ""  # what a good answer contains, for the judge
    max_tokens: int = SETTINGS["max_tokens"]
    temperature: float = SETTINGS["temperature"]
    top_k: int = SETTINGS["top_k"]
    top_p: float = SETTINGS["top_p"]
    seed: int = SETTINGS["seed"]
    check: dict = field(default_factory=dict)  # {"kind": ..., **params}; required in a suite
    source: str = ""  # a documents suite: the file that answers
    passage: str = ""  # and the words of its passage that answer, verbatim

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Suite:
    id: str  # the file's stem, e.g. "essentiel"
    name: str
    description: str
    prompts: tuple[Prompt, ...]
    documents: str = ""  # a folder beside the suite's file whose documents the questions are about

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "documents": self.documents,
            "prompts": [prompt.as_dict() for prompt in self.prompts],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Suite:
        """The inverse of as_dict (a run keeps its suite as it was), validated; raises SuiteError."""
        where = f"suite {data.get('id')!r}" if isinstance(data, dict) else "suite"
        try:
            return _suite(data)
        except ValueError as exc:
            raise SuiteError(f"{where}: {exc}") from None


def load_suite(path: str | Path) -> Suite:
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise SuiteError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SuiteError(f"{path}: not valid TOML: {exc}") from None
    try:
        suite = _suite(_from_toml(path.stem, data))
        if suite.documents:
            _check_documents(suite, path.parent)
        return suite
    except ValueError as exc:
        raise SuiteError(f"{path}: {exc}") from None


def document_files(suite: Suite, folder: str | Path) -> list[Path]:
    """The documents of a documents suite whose file is in `folder`, by name; [] for other suites."""
    if not suite.documents:
        return []
    return sorted(p for p in (Path(folder) / suite.documents).iterdir() if p.is_file())


def _check_documents(suite: Suite, folder: Path) -> None:
    where = Path(folder) / suite.documents
    if not where.is_dir():
        raise ValueError(f"documents = {suite.documents!r}: no such folder beside the suite")
    names = {path.name for path in document_files(suite, folder)}
    for prompt in suite.prompts:
        if prompt.source not in names:
            raise ValueError(f"prompt {prompt.id!r}: source {prompt.source!r} is not in {where}")


def load_suites(folder: str | Path = SHIPPED_SUITES) -> dict[str, Suite]:
    """Every *.toml in `folder`, by id; one broken file raises SuiteError naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SuiteError(f"{folder}: no such folder of benchmark suites")
    suites = [load_suite(path) for path in sorted(folder.glob("*.toml"))]
    return {suite.id: suite for suite in sorted(suites, key=lambda suite: suite.id)}


def _from_toml(stem: str, data: dict) -> dict:
    """The file's layout turned into as_dict's: defaults merged into each prompt, `prompt` as `text`."""
    _refuse_unknown(data, {"name", "description", "documents", "defaults", "prompts"}, "the file")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ValueError("[defaults] must be a table")
    _refuse_unknown(defaults, set(SETTINGS), "[defaults]")
    prompts = data.get("prompts")
    if not isinstance(prompts, list) or not prompts:
        raise ValueError("no [[prompts]]")
    keys = {"id", "name", "prompt", "system", "reference", "check", *_DOCUMENT_KEYS, *SETTINGS}
    merged = []
    for index, entry in enumerate(prompts, 1):
        if not isinstance(entry, dict):
            raise ValueError(f"prompt {index} must be a table")
        _refuse_unknown(entry, keys, f"prompt {entry.get('id', index)!r}")
        entry = {**defaults, **entry}
        if "prompt" in entry:
            entry["text"] = entry.pop("prompt")
        merged.append(entry)
    return {
        "id": stem,
        "name": data.get("name"),
        "description": data.get("description", ""),
        "documents": data.get("documents", ""),
        "prompts": merged,
    }


def _suite(data: Any) -> Suite:
    if not isinstance(data, dict):
        raise ValueError("must be a table")
    _refuse_unknown(data, {"id", "name", "description", "documents", "prompts"}, "the suite")
    suite_id = data.get("id")
    if not isinstance(suite_id, str) or not _SLUG.fullmatch(suite_id):
        raise ValueError(
            f"id {suite_id!r} must be lowercase letters, digits, - or _ (a file name like essentiel)"
        )
    name, description = data.get("name"), data.get("description", "")
    if not isinstance(name, str) or not name.strip():
        raise ValueError('needs a name, such as name = "Essentiel"')
    if not isinstance(description, str):
        raise ValueError("description must be text")
    documents = data.get("documents", "")
    # A folder's name, not a path: a suite must not reach files outside its own folder.
    if documents != "" and (not isinstance(documents, str) or not _SLUG.fullmatch(documents)):
        raise ValueError(f"documents {documents!r} must be the name of a folder beside the suite")
    entries = data.get("prompts")
    if not isinstance(entries, list | tuple) or not entries:
        raise ValueError("has no prompts")
    prompts = tuple(_prompt(entry, index) for index, entry in enumerate(entries, 1))
    seen: set[str] = set()
    for prompt in prompts:
        if prompt.id in seen:
            raise ValueError(f"prompt id {prompt.id!r} is used twice")
        seen.add(prompt.id)
        if bool(documents) != bool(prompt.source):
            raise ValueError(
                f"prompt {prompt.id!r}: a source and passage go with a suite's documents folder, "
                "each with the other"
            )
        if prompt.check.get("kind") == "cites_source" and not prompt.source:
            raise ValueError(f"prompt {prompt.id!r}: the cites_source check needs the prompt's source")
    return Suite(suite_id, name.strip(), description.strip(), prompts, documents)


def _prompt(entry: Any, index: int) -> Prompt:
    if not isinstance(entry, dict):
        raise ValueError(f"prompt {index} must be a table")
    prompt_id = entry.get("id")
    if not isinstance(prompt_id, str) or not _SLUG.fullmatch(prompt_id):
        raise ValueError(f"prompt {index}: id {prompt_id!r} must be lowercase letters, digits, - or _")
    where = f"prompt {prompt_id!r}"
    keys = {"id", "name", "text", "system", "reference", "check", *_DOCUMENT_KEYS, *SETTINGS}
    _refuse_unknown(entry, keys, where)
    for key in ("name", "text"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise ValueError(f"{where}: {'prompt' if key == 'text' else key} must be non-empty text")
    for key in ("system", "reference", *_DOCUMENT_KEYS):
        if not isinstance(entry.get(key, ""), str):
            raise ValueError(f"{where}: {key} must be text")
    if bool(entry.get("source")) != bool(entry.get("passage", "").strip()):
        raise ValueError(f"{where}: source and passage go together (the document, and its words that answer)")
    settings = {key: entry.get(key, default) for key, default in SETTINGS.items()}
    _check_settings(settings, where)
    if "check" not in entry:  # every answer gets an automatic verdict; the judge is optional
        raise ValueError(
            f'{where}: needs a check, such as check = {{ kind = "contains", facts = ["Paris"] }}'
        )
    check = entry["check"]
    try:
        checks.validate(check)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return Prompt(
        id=prompt_id,
        name=entry["name"].strip(),
        text=entry["text"],
        system=entry.get("system", ""),
        reference=entry.get("reference", "").strip(),
        max_tokens=settings["max_tokens"],
        temperature=float(settings["temperature"]),
        top_k=settings["top_k"],
        top_p=float(settings["top_p"]),
        seed=settings["seed"],
        check=dict(check),
        source=entry.get("source", ""),
        passage=entry.get("passage", "").strip(),
    )


def _check_settings(settings: dict, where: str) -> None:
    ranges = {
        "max_tokens": (int, 1, 8192),
        "temperature": (float, 0, 2),
        "top_k": (int, 0, 1000),  # 0: no top-k cut
        "top_p": (float, 0, 1),
        "seed": (int, 0, 2**32 - 1),
    }
    for key, (kind, low, high) in ranges.items():
        value = settings[key]
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if not is_number or (kind is int and not isinstance(value, int)) or not math.isfinite(value):
            raise ValueError(
                f"{where}: {key} must be a {'whole ' if kind is int else ''}number, not {value!r}"
            )
        if not low <= value <= high:
            raise ValueError(f"{where}: {key} must be between {low} and {high}, not {value!r}")


def _refuse_unknown(table: dict, known: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in set(table) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key {', '.join(unknown)} (allowed: {', '.join(sorted(known))})")
