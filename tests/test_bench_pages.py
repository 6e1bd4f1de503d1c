"""The benchmark pages over a scripted engine: starting a run, its progress, its results,
cancel, exports and imports, the fit, and that only the admin gets in."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import threading
import time
from dataclasses import replace

import pytest

from app.extensions import db
from app.llm.types import Final, GenerationStats, Phase, Text, Thinking
from app.models import BenchmarkResult, BenchmarkRun
from tests.conftest import PASSWORD
from tests.fakes import ScriptedEngine
from tests.patience import patience

SNAKE = """Voici le jeu :

```python
import random

def main():
    snake = [(5, 5)]
    running = True
    while running:
        head = snake[0]
        snake.insert(0, (head[0] + 1, head[1]))
        snake.pop()
        running = random.random() < 0.9

main()
```
"""
GOOD_ANSWERS = {  # a good answer to each of the shipped "essentiel" prompts, by a word of the prompt
    "snake": SNAKE,
    "capitale": "La capitale de la France est Paris, traversée par la Seine.",
    "Résume": "La coopérative laitière modernise son usine pour réduire sa consommation d'énergie "
    "et mieux valoriser le lait de ses producteurs.",
    "atelier": "Le calcul donne 720.",
}


class BenchEngine(ScriptedEngine):
    """Answers each prompt of the suites with a scripted answer; the judge with a verdict."""

    def __init__(self, answers=None, delay=0.0, verdict='{"score": 8, "reason": "Correct."}'):
        super().__init__(model_ids=("tiny", "other", "thinker"), delay=delay)
        self.thinking_models = {"thinker"}
        self.answers = answers or GOOD_ANSWERS
        self.verdict = verdict
        self.unloaded: list[str] = []
        # Set: the benchmark's answers after the first `free` each wait for one release.
        self.passes: threading.Semaphore | None = None
        self.free = 0
        self.answered = 0
        self.sizes: dict[str, int] = {}  # bytes on disk, by model: none known unless a test says

    def list_models(self):
        return [replace(info, size_bytes=self.sizes.get(info.id, 0)) for info in super().list_models()]

    def unload(self, model_id):
        self.unloaded.append(model_id)
        return True

    def stream_chat(self, model_id, messages, options, cancel):
        self.requests.append(messages)
        self.options.append(options)
        yield Phase("prompt")
        question = messages[-1].content
        if options.json_schema:
            answer = self.verdict
        else:
            answer = next((a for key, a in self.answers.items() if key in question), "Bonjour.")
        stats = GenerationStats(
            prompt_tokens=12,
            finish_reason="stop",
            first_token_seconds=0.01,
            total_seconds=0.05,
            tokens_per_second=42.0,
            engine=self.name,
            threads=2,
        )
        if options.think:
            yield Thinking("Let me think.")
            stats.thinking_tokens = 3
            stats.first_answer_seconds = 0.03
        chat = question.startswith("Chat:")  # a colleague's message, never held
        if self.passes is not None and not chat:
            if self.answered >= self.free:
                assert self.passes.acquire(timeout=10), "the test never let this answer go"
            self.answered += 1
        for word in answer.split(" "):
            if cancel.is_set():
                stats.finish_reason = "cancelled"
                break
            if self.delay:
                time.sleep(self.delay)
            stats.completion_tokens += 1
            yield Text(word + " ")
        yield Final(stats)


@pytest.fixture
def engine() -> BenchEngine:
    return BenchEngine()


@pytest.fixture
def admin(signed_in):
    return signed_in


def start(client, **fields):
    data = {
        "models": ["tiny"],
        "suite": "essentiel",
        "repetitions": "1",
        "start": "warm",
        "thinking": "both",
        "judge": "",
    }
    data.update(fields)
    return client.post("/admin/benchmarks", data=data)


# A wait on the benchmark's thread: long, as a busy machine may need, and free when it is not.
WAIT_SECONDS = patience(20.0)


def wait_for_end(app, timeout=WAIT_SECONDS):
    assert app.extensions["bench"].idle.wait(timeout), "the benchmark did not end"


def latest_run(app) -> BenchmarkRun:
    with app.app_context():
        run = db.session.scalars(db.select(BenchmarkRun).order_by(BenchmarkRun.id.desc())).first()
        assert run.results is not None  # loaded while the session is open
        return run


def test_the_admin_runs_a_suite_and_reads_every_figure_per_model_and_prompt(app, admin, engine):
    response = start(admin, models=["tiny", "other"])
    assert response.status_code == 302 and "/admin/benchmarks/runs/" in response.headers["Location"]
    wait_for_end(app)
    run = latest_run(app)
    assert run.state == "done" and run.steps_done == run.steps_total == 8
    assert {(r.model, r.prompt_id) for r in run.results} == {
        (m, p) for m in ("tiny", "other") for p in ("snake", "capitale", "resume", "atelier")
    }
    assert all(r.passed for r in run.results), [(r.prompt_id, r.check) for r in run.results]
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert page.count('data-result-model="tiny"') == 4 and "42.0" in page
    assert "pass" in page and "fail" not in page.split("data-results")[1].split("</table>")[0].replace(
        "data-passed", ""
    )
    assert run.machine["logical_cores"] >= 1 and run.machine["cpu_model"] and run.machine["memory_bytes"] > 0
    assert "The machine" in page and run.machine["cpu_model"] in page


def test_answers_are_greedy_with_a_fixed_seed_so_a_run_can_be_repeated(app, admin, engine):
    start(admin)
    wait_for_end(app)
    measured = engine.options[1:]  # the first one is the warm-up
    assert measured and all(o.temperature == 0 and o.top_k == 1 and o.seed == 42 for o in measured)


def test_a_wrong_answer_fails_its_check_and_the_page_says_why(app, admin, engine):
    engine.answers = {**GOOD_ANSWERS, "capitale": "La capitale de la France est Lyon."}
    start(admin)
    wait_for_end(app)
    run = latest_run(app)
    failed = [r for r in run.results if r.passed is False]
    assert [r.prompt_id for r in failed] == ["capitale"]
    page = admin.get(f"/admin/benchmarks/runs/{run.id}").get_data(as_text=True)
    assert 'data-passed="no"' in page and "Missing" in page


def test_a_reasoning_model_is_measured_thinking_on_and_off(app, admin, engine):
    start(admin, models=["thinker"], thinking="both")
    wait_for_end(app)
    run = latest_run(app)
    assert sorted({r.think for r in run.results}) == [False, True]
    thought = [r for r in run.results if r.think]
    assert all(r.thinking_tokens == 3 and r.thinking_seconds == pytest.approx(0.02) for r in thought)
    assert all(not r.thinking_text for r in run.results if r.think is False)
    page = admin.get(f"/admin/benchmarks/runs/{run.id}").get_data(as_text=True)
    assert "thinking on" in page and "thinking off" in page


def test_a_cold_start_unloads_the_model_before_each_answer(app, admin, engine):
    start(admin, start="cold")
    wait_for_end(app)
    assert engine.unloaded == ["tiny"] * 4


def wait_for_progress(client, run_id, ready, timeout=WAIT_SECONDS) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = client.get(f"/admin/benchmarks/runs/{run_id}/progress").get_json()
        if ready(progress):
            return progress
        time.sleep(0.02)
    raise AssertionError(f"the run never got there: {progress}")


def second_answer_waiting(progress) -> bool:
    current = progress["current"] or {}
    return progress["done"] == 1 and current.get("repetition") == 2 and current.get("phase") == "prompt"


def test_progress_shows_the_current_prompt_and_cancel_keeps_what_was_measured(app, admin, engine):
    engine.passes, engine.free = threading.Semaphore(0), 2  # the warm-up and the first answer go
    start(admin, repetitions="2")
    run_id = latest_run(app).id
    progress = wait_for_progress(admin, run_id, second_answer_waiting)
    assert progress["state"] == "running" and progress["total"] == 8 and not progress["finished"]
    assert progress["current"]["model"] == "tiny" and progress["current"]["prompt"] == "Jeu snake en Python"
    response = admin.post(f"/admin/benchmarks/runs/{run_id}/cancel", follow_redirects=True)
    assert "The benchmark is cancelled" in response.get_data(as_text=True)
    engine.passes.release(10)
    wait_for_end(app)
    run = latest_run(app)
    assert run.state == "cancelled" and run.steps_done == 1 and len(run.results) == 1
    assert admin.get(f"/admin/benchmarks/runs/{run_id}/progress").get_json()["finished"]


def test_a_colleague_chatting_takes_turns_with_the_benchmark(app, admin, engine):
    """Through the same scheduler: the colleague's answer goes between two of the benchmark's,
    and none of the benchmark's answers is measured while the colleague's runs."""
    engine.passes, engine.free = threading.Semaphore(0), 1  # the warm-up goes
    start(admin, repetitions="2")
    run_id = latest_run(app).id
    wait_for_progress(admin, run_id, lambda p: (p["current"] or {}).get("phase") == "prompt")
    colleague = app.test_client()
    colleague.post("/register", data={"username": "bob", "password": PASSWORD, "confirm": PASSWORD})
    conversation = colleague.post("/conversations", json={"model": "other"}).get_json()["id"]
    answers = []

    def ask() -> None:
        response = colleague.post(
            f"/conversations/{conversation}/messages", json={"content": "Chat: bonjour ?"}
        )
        answers.append(response.get_data(as_text=True))

    asking = threading.Thread(target=ask)
    asking.start()
    # The colleague's answer is queued behind the benchmark's first answer (waited for: a busy
    # machine's thread may take longer than any fixed pause to get there).
    waiting = app.extensions["llm"].scheduler._waiting
    deadline = time.monotonic() + patience(10)
    while not waiting and time.monotonic() < deadline:
        time.sleep(0.02)
    assert waiting and not answers
    engine.passes.release()  # the benchmark's first answer ends: the colleague's turn comes next
    asking.join(patience(10))
    assert answers and "event: done" in answers[0]
    # The benchmark stores its first result in its own thread, maybe after the colleague's end.
    assert wait_for_progress(admin, run_id, lambda p: p["done"] >= 1)["done"] == 1
    engine.passes.release(10)
    wait_for_end(app)
    run = latest_run(app)
    assert run.state == "done" and all(r.concurrent == 1 for r in run.results)
    assert max(r.queue_seconds for r in run.results) > 0  # one answer waited for the colleague's


def test_cancelling_a_queued_run_then_deleting_it_leaves_the_next_run_alone(app, admin, engine):
    engine.passes, engine.free = threading.Semaphore(0), 1
    start(admin)
    first = latest_run(app).id
    start(admin)  # queued behind the first
    second = latest_run(app).id
    admin.post(f"/admin/benchmarks/runs/{second}/cancel")
    assert latest_run(app).state == "cancelled"
    admin.post(f"/admin/benchmarks/runs/{second}/delete")
    start(admin)  # SQLite may give it the deleted run's id
    third = latest_run(app).id
    engine.passes.release(100)
    wait_for_end(app)
    with app.app_context():
        assert db.session.get(BenchmarkRun, first).state == "done"
        assert db.session.get(BenchmarkRun, third).state == "done"


def test_a_run_this_server_does_not_run_is_marked_interrupted_when_cancelled(app, admin, engine):
    """A command-line run whose process was killed stays "running" in the database: Cancel ends it."""
    from app.bench.runs import Plan, create_run
    from app.bench.suites import load_suites

    with app.app_context():
        suite = load_suites(app.config["BENCH_SUITES_DIR"])["rapide"]
        run = create_run(Plan(suite, ["tiny"]), {}, source="cli", user_id=None)
        run.state = "running"
        db.session.commit()
        run_id = run.id
    page = admin.post(f"/admin/benchmarks/runs/{run_id}/cancel", follow_redirects=True).get_data(as_text=True)
    assert "not running in this server" in page
    assert latest_run(app).state == "interrupted"
    assert admin.post(f"/admin/benchmarks/runs/{run_id}/delete").status_code == 302
    with app.app_context():
        assert db.session.get(BenchmarkRun, run_id) is None


def test_thinking_left_to_the_model_follows_the_admins_setting(app, admin, engine):
    admin.post(
        "/admin/models/settings?model=thinker", data={"model": "thinker", "enabled": "y", "think": "off"}
    )
    start(admin, models=["thinker"], thinking="default")
    wait_for_end(app)
    run = latest_run(app)
    assert run.steps_total == 4 and {r.think for r in run.results} == {False}


def test_the_warm_up_loads_the_model_as_it_will_be_measured(app, admin, engine):
    admin.post("/admin/models/settings?model=tiny", data={"model": "tiny", "enabled": "y", "context": "1024"})
    start(admin)
    wait_for_end(app)
    warm_up, first = engine.options[0], engine.options[1]
    assert warm_up.max_tokens == 1 and warm_up.context == first.context == 1024


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"models": []}, "Pick at least one model."),
        ({"models": ["nope"]}, "Not available for a benchmark: nope."),
        ({"suite": "nope"}, "Pick one of the suites."),
        ({"repetitions": "0"}, "Repetitions: a whole number from 1 to 10."),
        ({"repetitions": "many"}, "Not a valid integer value"),
        ({"judge": "nope"}, "The judge must be one of the models installed here."),
        ({"start": "lukewarm"}, "Not a valid choice"),
    ],
)
def test_a_bad_choice_is_refused_with_a_message(app, admin, fields, message):
    response = start(admin, **fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(BenchmarkRun)) == 0


def test_the_judge_scores_each_answer_and_an_unreadable_verdict_is_no_score(app, admin, engine):
    start(admin, judge="other")
    wait_for_end(app)
    run = latest_run(app)
    assert run.steps_total == 8 and {r.judge_score for r in run.results} == {8}
    engine.verdict = "Je pense que c'est bien, 9 sur 10."
    start(admin, judge="other")
    wait_for_end(app)
    run = latest_run(app)
    assert {r.judge_score for r in run.results} == {None}
    page = admin.get(f"/admin/benchmarks/runs/{run.id}").get_data(as_text=True)
    assert page.count('data-score="none"') == 4 and "9/10" not in page


def test_exports_and_an_import_on_another_server_show_the_same_results(app, admin, engine, tmp_path):
    start(admin)
    wait_for_end(app)
    run = latest_run(app)
    exported = admin.get(f"/admin/benchmarks/runs/{run.id}.json")
    assert exported.headers["Content-Disposition"].startswith("attachment")
    document = json.loads(exported.get_data(as_text=True))
    rows = list(
        csv.reader(io.StringIO(admin.get(f"/admin/benchmarks/runs/{run.id}.csv").get_data(as_text=True)))
    )
    assert rows[0][:2] == ["run_uid", "machine"] and len(rows) == 5  # a line per answer
    assert "```python" in rows[1][rows[0].index("answer")]  # the answer itself, on its one line
    # Another server: its machine is described otherwise; importing it here twice adds it once.
    document["runs"][0]["uid"] = "f" * 32
    document["runs"][0]["machine"] = {
        **document["runs"][0]["machine"],
        "hostname": "atelier-20c",
        "logical_cores": 20,
    }
    document["runs"][0]["machine_label"] = "atelier-20c · 20 CPU"
    raw = json.dumps(document).encode()
    response = admin.post(
        "/admin/benchmarks/import", data={"file": (_file(raw), "other.json")}, follow_redirects=True
    )
    assert "1 benchmark(s) imported, from atelier-20c · 20 CPU." in response.get_data(as_text=True)
    again = admin.post(
        "/admin/benchmarks/import", data={"file": (_file(raw), "other.json")}, follow_redirects=True
    )
    assert "imported already" in again.get_data(as_text=True)
    page = admin.get("/admin/benchmarks?suite=essentiel").get_data(as_text=True)
    assert "atelier-20c · 20 CPU" in page and run.machine_label in page  # both machines in the chart
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(BenchmarkResult)) == 8


def _file(raw: bytes):
    return io.BytesIO(raw)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"not json", "This file is not JSON"),
        (b'{"format": "something-else"}', "not a benchmark export"),
        (b'{"format": "causerie-benchmark", "version": 99, "runs": []}', "version (99)"),
        (b'{"format": "causerie-benchmark", "version": 1, "runs": []}', "holds no runs"),
        (b'{"format": "causerie-benchmark", "version": 1, "runs": [{"uid": 3}]}', "Run 1: the field"),
    ],
)
def test_a_bad_import_is_refused_with_a_message_and_adds_nothing(app, admin, raw, message):
    response = admin.post(
        "/admin/benchmarks/import", data={"file": (_file(raw), "x.json")}, follow_redirects=True
    )
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(BenchmarkRun)) == 0


def test_the_fit_says_which_models_this_server_can_serve(app, admin, engine):
    start(admin, models=["tiny"])
    wait_for_end(app)
    page = admin.get("/admin/benchmarks").get_data(as_text=True)
    tiny = page.split('data-fit-model="tiny"')[1].split("</tr>")[0]
    assert "42.0 tokens/s" in tiny and "Good for chat" in tiny
    other = page.split('data-fit-model="other"')[1].split("</tr>")[0]
    assert "Run a benchmark" in other


def test_the_fit_does_not_recommend_a_fast_model_whose_answers_fail(app, admin, engine):
    engine.answers = {"snake": "Non.", "capitale": "Lyon.", "Résume": "Non.", "atelier": "Aucune idée."}
    start(admin, models=["tiny"])
    wait_for_end(app)
    page = admin.get("/admin/benchmarks").get_data(as_text=True)
    tiny = page.split('data-fit-model="tiny"')[1].split("</tr>")[0]
    assert "42.0 tokens/s" in tiny and "Good for chat" not in tiny
    assert "failed most checks of its last benchmark (0 of 4 passed)" in tiny


def test_only_the_admin_sees_benchmarks(app, client, auth, engine):
    auth.register()  # the first account: the admin
    start(client)
    wait_for_end(app)
    run_id = latest_run(app).id
    auth.logout()
    auth.register("bob")
    for url in (
        "/admin/benchmarks",
        f"/admin/benchmarks/runs/{run_id}",
        f"/admin/benchmarks/runs/{run_id}.json",
        f"/admin/benchmarks/runs/{run_id}/progress",
        "/admin/benchmarks/export.csv",
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/admin/benchmarks/runs/{run_id}/cancel").status_code == 403
    assert start(client).status_code == 403
    auth.logout()
    assert client.get("/admin/benchmarks").status_code in (302, 401)


def exported_run(app, admin) -> dict:
    start(admin)
    wait_for_end(app)
    return json.loads(admin.get(f"/admin/benchmarks/runs/{latest_run(app).id}.json").get_data(as_text=True))


def import_document(admin, document: dict):
    raw = json.dumps(document).encode()
    return admin.post(
        "/admin/benchmarks/import", data={"file": (_file(raw), "x.json")}, follow_redirects=True
    ).get_data(as_text=True)


def as_another_server(document: dict, uid: str) -> dict:
    run = document["runs"][0]
    return {**document, "runs": [{**run, "uid": uid, "machine": {**run["machine"], "hostname": "other"}}]}


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda run: run["machine"].update(memory_bytes="16 GB"), "machine.memory_bytes"),
        (lambda run: run["machine"].update(engines=5), "machine.engines"),
        (lambda run: run["results"][0].update(memory_peak_bytes=2**70), "memory_peak_bytes"),
        (lambda run: run["results"][0].update(tokens_per_second=-3), "tokens_per_second"),
        (lambda run: run["results"][0].update(model="m" * 500), "model"),
        (lambda run: run["results"][0].update(judge_score=11), "judge_score"),
        (lambda run: run.update(start="tiède"), "start"),
        (lambda run: run["results"][0].update(check=["passed"]), "check"),
    ],
)
def test_an_export_with_a_wrong_value_is_refused_naming_the_field(app, admin, engine, change, field):
    document = as_another_server(exported_run(app, admin), "a" * 32)
    change(document["runs"][0])
    page = import_document(admin, document)
    assert f"the field “{field}” is missing or wrong" in page
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(BenchmarkRun)) == 1  # ours only


def test_an_export_of_everything_imports_only_the_runs_not_here_yet(app, admin, engine):
    document = exported_run(app, admin)
    other = as_another_server(document, "b" * 32)["runs"][0]
    other["state"] = "running"  # exported mid-run on the other server: it will never end here
    page = import_document(admin, {**document, "runs": document["runs"] + [other]})
    assert "1 benchmark(s) imported" in page and "1 benchmark(s) of the file were here already" in page
    assert latest_run(app).state == "interrupted"


def test_a_file_over_the_upload_limit_is_refused_with_a_message(app, admin):
    big = b"{" + b" " * (app.config["MAX_CONTENT_LENGTH"] + 10) + b"}"
    response = admin.post(
        "/admin/benchmarks/import", data={"file": (_file(big), "big.json")}, follow_redirects=True
    )
    assert "export the runs one at a time" in response.get_data(as_text=True)


def test_a_user_cannot_import_nor_delete_benchmarks(app, client, auth, engine):
    auth.register()
    start(client)
    wait_for_end(app)
    run_id = latest_run(app).id
    auth.logout()
    auth.register("bob")
    assert client.post(f"/admin/benchmarks/runs/{run_id}/delete").status_code == 403
    raw = b'{"format": "causerie-benchmark"}'
    assert client.post("/admin/benchmarks/import", data={"file": (_file(raw), "x.json")}).status_code == 403
    with app.app_context():
        assert db.session.get(BenchmarkRun, run_id) is not None


# -- what the run page says, and what the start form offers (issue 16, item 12) ------------------
def cancelled_after_one_answer(app, admin, engine) -> int:
    """A run of the essential suite (4 prompts, thinking off and on: 8 steps) cancelled once
    its first answer is stored."""
    engine.passes, engine.free = threading.Semaphore(0), 2  # the warm-up and the first answer go
    start(admin, models=["thinker"], thinking="both")
    run_id = latest_run(app).id
    wait_for_progress(
        admin,
        run_id,
        lambda p: p["done"] == 1 and (p["current"] or {}).get("prompt") == "Capitale et fleuve",
    )
    admin.post(f"/admin/benchmarks/runs/{run_id}/cancel")
    engine.passes.release(10)
    wait_for_end(app)
    return run_id


def test_a_cancelled_run_says_how_far_it_got_and_how_long_it_ran(app, admin, engine):
    run_id = cancelled_after_one_answer(app, admin, engine)
    page = admin.get(f"/admin/benchmarks/runs/{run_id}").get_data(as_text=True)
    ended = page.split("data-ended>")[1].split("</p>")[0]
    run = latest_run(app)
    ran = (run.finished_at - run.started_at).total_seconds()
    assert run.state == "cancelled" and 1 <= run.steps_done < 8
    assert f"Cancelled after {run.steps_done} of 8 steps; it ran for {ran:.2f} s." in ended, ended


def test_a_cancelled_runs_time_is_marked_as_covering_only_the_prompts_it_reached(app, admin, engine):
    run_id = cancelled_after_one_answer(app, admin, engine)
    page = admin.get(f"/admin/benchmarks/runs/{run_id}").get_data(as_text=True)
    time_cell = page.split('data-summary-model="thinker"')[1].split('data-col="ok"')[0]
    reached = len({r.prompt_id for r in latest_run(app).results})
    assert reached < 4 and f"{reached} of 4 prompts only" in time_cell, time_cell


def test_right_answers_are_said_plainly_as_so_many_of_so_many(app, admin, engine):
    engine.answers = {**GOOD_ANSWERS, "capitale": "La capitale de la France est Lyon."}
    start(admin, models=["tiny"])
    wait_for_end(app)
    page = admin.get(f"/admin/benchmarks/runs/{latest_run(app).id}").get_data(as_text=True)
    summary = page.split("data-summary>")[1].split("</table>")[0]
    assert "Right answers" in summary
    assert '<td class="px-3 py-2" data-col="ok">3 of 4</td>' in summary


def run_header(admin, run_id) -> str:
    page = admin.get(f"/admin/benchmarks/runs/{run_id}").get_data(as_text=True)
    return " ".join(page.split("Asked on")[1].split("</p>")[0].split())


def test_the_header_speaks_of_thinking_only_for_models_that_can_think(app, admin, engine):
    start(admin, models=["tiny", "other"], thinking="both")
    wait_for_end(app)
    assert "thinking" not in run_header(admin, latest_run(app).id)
    start(admin, models=["tiny", "thinker"], thinking="both")
    wait_for_end(app)
    assert "thinking, for thinker: on and off" in run_header(admin, latest_run(app).id)


def checked(page: str, name: str) -> list[str]:
    """The values of the start form's ticked boxes (or chosen option) named `name`."""
    form = page.split("data-start-form")[1].split("</form>")[0]
    found = re.findall(rf'<input[^>]*name="{name}"[^>]*>', form) + re.findall(
        rf'<select[^>]*name="{name}".*?</select>', form, re.S
    )
    chosen = []
    for tag in found:
        if tag.startswith("<select"):
            chosen += re.findall(r'<option selected value="([^"]*)"|<option value="([^"]*)" selected', tag)
        elif "checked" in tag:
            chosen.append(re.search(r'value="([^"]*)"', tag).group(1))
    return [c if isinstance(c, str) else next(v for v in c if v) for c in chosen]


def test_the_start_form_offers_the_smallest_run_first(app, admin, engine):
    engine.sizes = {"tiny": 300_000_000, "other": 90_000_000, "thinker": 1_200_000_000}
    page = admin.get("/admin/benchmarks").get_data(as_text=True)
    assert checked(page, "models") == ["other"]  # the lightest model alone
    assert checked(page, "suite") == ["rapide"]  # two short answers, not the essential four
    assert checked(page, "thinking") == ["default"]
    assert re.search(r'name="repetitions"[^>]*value="1"', page)


def estimate_shown(page: str) -> str:
    return " ".join(page.split("data-estimate")[1].split(">", 1)[1].split("</p>")[0].split())


def test_the_start_form_says_how_long_the_run_is_unknown_before_any_run_here(app, admin, engine):
    page = admin.get("/admin/benchmarks").get_data(as_text=True)
    assert estimate_shown(page) == (
        "How long it will take: unknown yet, this machine has not run these prompts with these models."
    )


def test_the_start_form_estimates_the_time_from_past_runs_on_this_machine(app, admin, engine):
    engine.sizes = {"tiny": 90_000_000, "other": 300_000_000, "thinker": 1_200_000_000}
    start(admin, models=["tiny"], suite="rapide", thinking="default")
    wait_for_end(app)
    page = admin.get("/admin/benchmarks").get_data(as_text=True)
    durations = json.loads(html.unescape(page.split('data-durations="')[1].split('"')[0]))
    with app.app_context():
        measured = db.session.scalars(db.select(BenchmarkResult.total_seconds)).all()
    assert durations["rapide"]["warm"]["default"]["tiny"] == pytest.approx(sum(measured), abs=0.1)
    assert durations["rapide"]["warm"]["default"]["other"] is None  # never run here
    assert durations["essentiel"]["warm"]["default"]["tiny"] is None  # nor this suite
    assert estimate_shown(page) == "About 1 s on this machine, from its past runs."


def test_each_answer_is_shown_under_its_prompt_ready_for_the_markdown_renderer(app, admin, engine):
    start(admin, models=["tiny"], suite="rapide", thinking="default")
    wait_for_end(app)
    page = admin.get(f"/admin/benchmarks/runs/{latest_run(app).id}").get_data(as_text=True)
    answers = page.split("data-answers>")[1].split("</section>")[0]
    first = answers.split("</details>")[0]
    assert "Quelle est la capitale de l&#39;Italie ? Réponds en une phrase courte." in first
    assert first.index("data-prompt") < first.index("data-answer")
    assert "data-answer data-markdown>La capitale de la France est Paris" in first, first
    assert "js/markdown.js" in page


def test_an_answer_holding_html_reaches_the_run_page_escaped_for_the_sanitising_renderer(app, admin, engine):
    engine.answers = {"capitale": '<img src=x onerror="alert(1)"> Rome', "multiplication": "56"}
    start(admin, models=["tiny"], suite="rapide", thinking="default")
    wait_for_end(app)
    page = admin.get(f"/admin/benchmarks/runs/{latest_run(app).id}").get_data(as_text=True)
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; Rome" in page
    assert "<img src=x" not in page
