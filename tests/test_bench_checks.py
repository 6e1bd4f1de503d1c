"""The automatic checks: each kind with a known-good and a known-bad answer, as a model would write them."""

from __future__ import annotations

import pytest

from app.bench import checks
from app.bench.checks import CHECKS, CheckResult, describe, run, validate

PYGAME_SNAKE = """Voici un jeu Snake simple en Python avec **pygame**.

Installe d'abord la bibliothèque :

```bash
pip install pygame
```

```python
import random
import pygame

CELL, WIDTH, HEIGHT = 20, 30, 20

def main():
    pygame.init()
    screen = pygame.display.set_mode((CELL * WIDTH, CELL * HEIGHT))
    clock = pygame.time.Clock()
    snake = [(WIDTH // 2, HEIGHT // 2)]
    direction = (1, 0)
    food = (random.randrange(WIDTH), random.randrange(HEIGHT))
    running = True
    while running:
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                running = False
            elif event.type == pygame.KEYDOWN:
                keys = {pygame.K_UP: (0, -1), pygame.K_DOWN: (0, 1),
                        pygame.K_LEFT: (-1, 0), pygame.K_RIGHT: (1, 0)}
                direction = keys.get(event.key, direction)
        head = (snake[0][0] + direction[0], snake[0][1] + direction[1])
        if head in snake or not (0 <= head[0] < WIDTH and 0 <= head[1] < HEIGHT):
            running = False
        snake.insert(0, head)
        if head == food:
            food = (random.randrange(WIDTH), random.randrange(HEIGHT))
        else:
            snake.pop()
        screen.fill((0, 0, 0))
        for x, y in snake:
            pygame.draw.rect(screen, (0, 200, 0), (x * CELL, y * CELL, CELL, CELL))
        pygame.draw.rect(screen, (200, 0, 0), (food[0] * CELL, food[1] * CELL, CELL, CELL))
        pygame.display.flip()
        clock.tick(10)
    pygame.quit()

if __name__ == "__main__":
    main()
```

Lance-le avec `python snake.py` et dirige le serpent avec les flèches.
"""

TKINTER_SNAKE = """~~~py
import tkinter as tk

root = tk.Tk()
canvas = tk.Canvas(root, width=400, height=400, bg="black")
canvas.pack()
snake = [(10, 10)]

def step():
    x, y = snake[0]
    snake.insert(0, (x + 1, y))
    snake.pop()
    canvas.delete("all")
    for sx, sy in snake:
        canvas.create_rectangle(sx * 20, sy * 20, sx * 20 + 20, sy * 20 + 20, fill="green")
    root.after(100, step)

step()
root.mainloop()
~~~"""

PROSE_ONLY = """Pour créer un jeu Snake en Python, vous pouvez utiliser la bibliothèque pygame.
Il faut d'abord créer une fenêtre, puis dessiner le serpent, gérer les touches du clavier
et faire apparaître la nourriture. Bonne programmation !"""

SUMMARY = (
    "Une coopérative laitière a équipé de capteurs les cuves de ses fermes : les tournées sont "
    "recalculées chaque jour, les camions roulent 18 % de moins et aucun lot n'a été refusé."
)

# One good and one bad answer for every registered check: a check added without them fails below.
EXAMPLES = {
    "python_code": ({"kind": "python_code", "game_loop": True}, PYGAME_SNAKE, PROSE_ONLY),
    "contains": ({"kind": "contains", "facts": ["Paris", "Seine"]}, "Paris, sur la Seine.", "Lyon."),
    "word_count": ({"kind": "word_count", "min": 10, "max": 60}, SUMMARY, " ".join([SUMMARY] * 3)),
    "final_number": ({"kind": "final_number", "expected": 720}, "6 × 24 × 5 = 720", "La réponse est 144."),
    "cites_source": (
        {"kind": "cites_source"},
        "L'accident est déclaré sous 48 heures [2].",
        "L'accident est déclaré sous 48 heures [1].",
    ),
}
# What the run knows beside the answer, for the checks that read it: the passages' documents.
CONTEXT = {"cites_source": {"source": "securite.md", "sources": ["conges.md", "securite.md"]}}


def test_every_registered_check_has_a_good_and_a_bad_example():
    assert set(EXAMPLES) == set(CHECKS)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_known_good_answer_passes_and_known_bad_answer_fails(kind):
    spec, good, bad = EXAMPLES[kind]
    context = CONTEXT.get(kind, {})
    validate(spec)
    assert run(spec, good, **context).passed, describe(run(spec, good, **context).as_dict())
    assert not run(spec, bad, **context).passed


# --- cites_source ---


def test_an_answer_citing_a_passage_of_the_right_document_passes_among_other_markers():
    context = {"source": "securite.md", "sources": ["conges.md", "securite.md", "conges.md"]}
    result = run({"kind": "cites_source"}, "Sous 48 heures [1, 2]. Voir aussi [3].", **context)
    assert result.passed and result.values == {"cited": ["[1]", "[2]", "[3]"], "source": "securite.md"}
    assert run({"kind": "cites_source"}, "Sous 48 heures [3][2].", **context).passed


def test_an_answer_citing_only_other_documents_fails_and_names_what_it_cited():
    context = {"source": "securite.md", "sources": ["conges.md", "securite.md"]}
    result = run({"kind": "cites_source"}, "Quatre jours [1].", **context)
    assert not result.passed and result.note == "cites_other_source"
    assert "[1]" in describe(result.as_dict()) and "securite.md" in describe(result.as_dict())


def test_a_marker_past_the_passages_given_cites_nothing_real():
    context = {"source": "securite.md", "sources": ["securite.md"]}
    assert not run({"kind": "cites_source"}, "Sous 48 heures [7].", **context).passed


def test_an_answer_without_markers_fails_even_when_it_is_right():
    context = {"source": "securite.md", "sources": ["securite.md"]}
    result = run({"kind": "cites_source"}, "Sous 48 heures, d'après la procédure.", **context)
    assert not result.passed and result.note == "cites_nothing"


def test_the_source_is_the_runs_to_give_not_the_suites_to_write():
    with pytest.raises(ValueError, match="no parameter source"):
        validate({"kind": "cites_source", "source": "securite.md"})
    assert run({"kind": "cites_source"}, "Sous 48 heures [1].").note == "no_passages"


# --- python_code ---


def test_snake_answer_with_a_parsing_game_loop_passes():
    result = run({"kind": "python_code", "game_loop": True}, PYGAME_SNAKE)
    assert result.passed
    assert result.note == "game_loop_found"
    assert result.values["lines"] > 30


def test_a_tkinter_game_scheduling_its_next_frame_has_a_game_loop():
    assert run({"kind": "python_code", "game_loop": True}, TKINTER_SNAKE).passed


def test_prose_without_a_code_block_fails_and_says_so():
    result = run({"kind": "python_code"}, PROSE_ONLY)
    assert not result.passed
    assert result.note == "no_code_block"


def test_code_with_a_syntax_error_fails_and_says_which_line():
    answer = "```python\nimport random\n\ndef main(:\n    pass\n```"
    result = run({"kind": "python_code"}, answer)
    assert not result.passed
    assert result.note == "syntax_error"
    assert result.values["line"] == 3  # of the block, as the admin reads it
    assert "line 3" in describe(result.as_dict())


def test_a_python_block_without_a_game_loop_fails():
    answer = "```python\ndef move(snake, direction):\n    return [snake[0] + direction] + snake[:-1]\n```"
    assert run({"kind": "python_code"}, answer).passed
    result = run({"kind": "python_code", "game_loop": True}, answer)
    assert not result.passed
    assert result.note == "no_game_loop"


def test_an_unlabelled_shell_block_does_not_hide_the_python_block():
    answer = "```\npip install pygame\n```\n\n```\nwhile True:\n    pass\n```"
    assert run({"kind": "python_code", "game_loop": True}, answer).passed


def test_blocks_in_other_languages_are_not_python():
    answer = "```javascript\nwhile (true) {}\n```"
    assert run({"kind": "python_code"}, answer).note == "no_code_block"


def test_a_block_cut_off_by_the_token_limit_is_judged_as_written():
    answer = "```python\nwhile True:\n    print('snake')\n"
    assert run({"kind": "python_code", "game_loop": True}, answer).passed
    assert run({"kind": "python_code"}, "```python\ndef main(\n").note == "syntax_error"


def test_a_fence_indented_in_a_numbered_list_is_read():
    answer = "1. Le code :\n\n    ```python\n    while True:\n        pass\n    ```\n"
    assert run({"kind": "python_code", "game_loop": True}, answer).passed


# --- contains ---


def test_all_facts_present_passes():
    result = run(
        {"kind": "contains", "facts": ["Paris", "Seine"]}, "La capitale est Paris, traversée par la Seine."
    )
    assert result.passed
    assert result.values["facts"] == ["Paris", "Seine"]


def test_missing_fact_is_named():
    result = run({"kind": "contains", "facts": ["Paris", "Seine"]}, "La capitale de la France est Paris.")
    assert not result.passed
    assert result.values["missing"] == ["Seine"]
    assert "Seine" in describe(result.as_dict())


def test_accents_and_case_do_not_matter():
    spec = {"kind": "contains", "facts": ["Île-de-France", "cœur"]}
    assert run(spec, "PARIS, AU COEUR DE L'ILE DE FRANCE").passed


def test_one_alternative_of_a_fact_is_enough():
    spec = {"kind": "contains", "facts": [["Seine", "la Seine"], "Paris"]}
    assert run(spec, "Paris et la Seine").passed
    result = run(spec, "Paris et la Loire")
    assert result.values["missing"] == ["Seine / la Seine"]


def test_facts_are_whole_words():
    assert not run({"kind": "contains", "facts": ["1889"]}, "En 18890.").passed
    assert not run({"kind": "contains", "facts": ["Lyon"]}, "Un plat lyonnais.").passed
    assert run({"kind": "contains", "facts": ["tour Eiffel"]}, "La Tour\n  Eiffel (1889).").passed


# --- word_count ---


def test_summary_within_the_bounds_passes():
    result = run({"kind": "word_count", "min": 10, "max": 60}, SUMMARY)
    assert result.passed
    assert result.values == {"count": 30, "min": 10, "max": 60}


def test_summary_over_the_bound_fails():
    result = run({"kind": "word_count", "min": 10, "max": 60}, " ".join([SUMMARY] * 3))
    assert not result.passed
    assert result.note == "too_many_words"
    assert describe(result.as_dict()) == "90 words, more than 60."


def test_a_too_short_answer_fails():
    assert run({"kind": "word_count", "min": 10, "max": 60}, "Des capteurs.").note == "too_few_words"


def test_markdown_symbols_are_not_words():
    assert checks.count_words("## Résumé\n\n- **l'usine** — recalcule *les tournées*") == 5


# --- final_number ---


def test_last_number_is_the_answer():
    answer = "Il y a 6 heures productives par jour, soit 6 × 24 = 144 pièces. En 5 jours : **720 pièces**."
    assert run({"kind": "final_number", "expected": 720}, answer).passed


def test_a_wrong_last_number_fails_and_gives_it():
    result = run({"kind": "final_number", "expected": 720}, "7 × 24 × 5 = 840 pièces.")
    assert not result.passed
    assert result.values == {"found": "840", "expected": 720}
    assert "840" in describe(result.as_dict())


def test_no_number_fails_and_says_so():
    result = run({"kind": "final_number", "expected": 56}, "Je ne sais pas.")
    assert result.note == "no_number"


def test_french_decimal_comma():
    assert run({"kind": "final_number", "expected": 2.5}, "Cela fait 2,5 heures.").passed
    assert run({"kind": "final_number", "expected": 155}, "Total : 155,0").passed


@pytest.mark.parametrize("written", ["1 200", "1\u00a0200", "1\u202f200", "1200"])
def test_thousands_separated_by_spaces(written):
    assert run({"kind": "final_number", "expected": 1200}, f"Il faut {written} pièces.").passed


def test_negative_numbers_and_ranges():
    assert run({"kind": "final_number", "expected": -3}, "La température est de -3 °C.").passed
    assert run({"kind": "final_number", "expected": 4}, "Entre 3-4 jours.").passed


def test_a_number_inside_a_word_or_a_longer_number_is_not_read_apart():
    assert run({"kind": "final_number", "expected": 155}, "155 molécules de H2O").passed
    assert run({"kind": "final_number", "expected": 18890}, "18890").passed


def test_tolerance():
    spec = {"kind": "final_number", "expected": 3.14, "tolerance": 0.01}
    assert run(spec, "π vaut environ 3,141").passed
    assert not run(spec, "π vaut environ 3,2").passed


# --- the registry ---


def test_validate_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown check kind 'regex'"):
        validate({"kind": "regex"})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "word_count", "min": 10}, "needs max"),
        ({"kind": "word_count", "min": 10, "max": 60, "maxi": 5}, "no parameter maxi"),
        ({"kind": "word_count", "min": "10", "max": 60}, "min must be a whole number"),
        ({"kind": "word_count", "min": True, "max": 60}, "min must be a whole number"),
        ({"kind": "word_count", "min": 60, "max": 10}, "greater than max"),
        ({"kind": "python_code", "game_loop": "yes"}, "game_loop must be true or false"),
        ({"kind": "contains", "facts": []}, "facts must be a non-empty list"),
        ({"kind": "contains", "facts": ["Paris", 75]}, "facts must hold texts"),
        ({"kind": "contains", "facts": ["?!"]}, "facts must hold texts"),
        ({"kind": "final_number", "expected": float("nan")}, "expected must be a number"),
        ({"kind": "final_number", "expected": 1, "tolerance": -1}, "tolerance must not be negative"),
        ("contains", "must be a table"),
    ],
)
def test_validate_rejects_a_bad_param(spec, message):
    with pytest.raises(ValueError, match=message):
        validate(spec)


def test_describe_gives_a_sentence():
    result = CheckResult(False, "facts_missing", {"missing": ["Seine", "Paris"]})
    assert describe(result.as_dict()) == "Missing: Seine, Paris."


def test_describe_tolerates_unknown_notes_and_missing_values():
    assert describe({"passed": False, "note": "from_a_future_version"}) == "from_a_future_version"
    assert describe({"note": "number_differs", "values": {}}) == "The last number is ?; expected ?."
    assert describe({}) == ""


def test_describe_works_in_a_french_request():
    from app import create_app
    from config import TestConfig

    app = create_app(TestConfig)
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        sentence = describe({"note": "too_many_words", "values": {"count": 90, "max": 60}})
    assert "90" in sentence and "60" in sentence


ODD_ANSWERS = [
    "",
    " \n\t ",
    "```",
    "~~~python",
    "```python\n\x00\n```",
    "```python\n" + "(" * 500 + "\n```",
    "```python\n" + "1+" * 50_000 + "1\n```",
    "9" * 10_000,
    "-" * 100_000 + "{",
    "🐍" * 1000 + "\u202e\u0301\ufeff",
    "x = 1\n" * 100_000,
]


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
@pytest.mark.parametrize("answer", ODD_ANSWERS, ids=range(len(ODD_ANSWERS)))
def test_run_never_raises_on_odd_answers(kind, answer):
    result = run(EXAMPLES[kind][0], answer, **CONTEXT.get(kind, {}))
    assert isinstance(result.passed, bool)
    describe(result.as_dict())


def test_run_reports_a_spec_it_cannot_run_instead_of_raising():
    result = run({"kind": "removed_since"}, "answer")
    assert not result.passed
    assert result.note == "check_invalid"
    assert "removed_since" in describe(result.as_dict())
