"""A documents suite on the Benchmarks page, over a scripted engine: its documents indexed for
the run, each question sent with the passages found as the chat sends them, recall@5 and the
"cites the right document" check recorded per answer and shown, the documents gone after."""

from __future__ import annotations

import pytest

from app.documents.context import prompt_with_passages
from app.extensions import db
from app.models import BenchmarkRun, Chunk, Document
from tests.test_bench_pages import BenchEngine, latest_run, start, wait_for_end

SAFETY = """# Procédure de sécurité de la presse

Le port des chaussures de sécurité est obligatoire dans l'atelier.

Tout accident, même sans arrêt de travail, est déclaré au service des ressources humaines sous 48 heures.
"""
LEAVE = """# Congés

Chaque salarié acquiert 25 jours ouvrés de congés payés par an.

La fermeture estivale dure trois semaines en août.
"""
SUITE = """name = "Documents d'essai"
documents = "docs"

[[prompts]]
id = "accident"
name = "Accident"
prompt = "Sous quel délai un accident est-il déclaré ?"
source = "securite.md"
passage = "est déclaré au service des ressources humaines sous 48 heures."
check = { kind = "cites_source" }

[[prompts]]
id = "blessure"
name = "Blessure"
prompt = "Combien de temps pour signaler une blessure ?"
source = "securite.md"
passage = "est déclaré au service des ressources humaines sous 48 heures."
check = { kind = "cites_source" }

[[prompts]]
id = "conges"
name = "Congés"
prompt = "Combien de jours de congés payés par an ?"
source = "conges.md"
passage = "Chaque salarié acquiert 25 jours ouvrés de congés payés par an."
check = { kind = "cites_source" }
"""
ANSWERS = {  # by a word of the question
    "accident": "Sous 48 heures [1].",
    "blessure": "Je ne trouve pas la réponse dans les passages.",
    "congés": "25 jours, d'après le document des congés.",  # right, but cites nothing
}


@pytest.fixture
def engine() -> BenchEngine:
    return BenchEngine(answers=ANSWERS)


@pytest.fixture
def admin(signed_in):
    return signed_in


@pytest.fixture
def documents_suite(app, tmp_path):
    folder = tmp_path / "suites"
    (folder / "docs").mkdir(parents=True)
    (folder / "docs" / "securite.md").write_text(SAFETY, encoding="utf-8")
    (folder / "docs" / "conges.md").write_text(LEAVE, encoding="utf-8")
    (folder / "essai.toml").write_text(SUITE, encoding="utf-8")
    app.config["BENCH_SUITES_DIR"] = folder
    app.config["EMBEDDING_MODEL"] = ""  # full text: the test is about the run, not the ranking
    return folder


@pytest.fixture
def documents_run(app, admin, engine, documents_suite) -> BenchmarkRun:
    response = start(admin, suite="essai", thinking="default")
    assert response.status_code == 302
    wait_for_end(app)
    run = latest_run(app)
    assert run.state == "done", run.error
    return run


def results(run) -> dict:
    return {r.prompt_id: r for r in run.results}


def test_each_question_is_sent_with_the_passages_found_written_as_the_chat_writes_them(
    app, documents_run, engine
):
    sent = [messages[-1].content for messages in engine.requests if "accident" in messages[-1].content]
    assert len(sent) == 1  # one model, one repetition; the warm-up asks something else
    with app.test_request_context():  # the chat's own words (app/documents/context.py)
        expected, sources = prompt_with_passages("Sous quel délai un accident est-il déclaré ?", [])
    assert sent[0].startswith("Passages from documents:\n\n[1] securite.md")
    assert "sous 48 heures" in sent[0] and "citing each one you use by its number in brackets" in sent[0]
    assert sent[0].endswith(expected.rsplit("\n\n", 1)[1])  # "Question: Sous quel délai…"
    recorded = results(documents_run)["accident"].check["retrieval"]["passages"]
    assert recorded[0] == {"n": 1, "name": "securite.md", "page": None}


def test_recall_at_5_is_recorded_per_question_from_the_passages_found(documents_run):
    found = {prompt: r.check["retrieval"]["found"] for prompt, r in results(documents_run).items()}
    # "blessure" shares no word with the safety document: full text alone does not find it.
    assert found == {"accident": True, "blessure": False, "conges": True}


def test_an_answer_passes_only_when_it_cites_a_passage_of_the_right_document(documents_run):
    by_prompt = results(documents_run)
    assert by_prompt["accident"].passed is True and by_prompt["accident"].check["note"] == "cites_source"
    assert by_prompt["conges"].passed is False and by_prompt["conges"].check["note"] == "cites_nothing"
    assert by_prompt["blessure"].passed is False


def test_the_run_page_shows_recall_at_5_and_the_cites_check_per_answer(app, admin, documents_run):
    page = admin.get(f"/admin/benchmarks/runs/{documents_run.id}").get_data(as_text=True)
    summary = page.split("data-summary>")[1].split("</table>")[0]
    assert "Recall@5" in summary and "0.67" in summary and "2 of 3" in summary
    assert "1 of 3" in summary  # right answers: the one citing the right document
    assert page.count('data-recall="yes"') == 2 and page.count('data-recall="no"') == 1
    assert "The passage that answers was not among the 5 found." in page
    assert "The answer cites [1], from securite.md." in page


def test_the_run_page_says_it_in_french(app, admin, documents_run):
    page = admin.get(f"/admin/benchmarks/runs/{documents_run.id}", headers={"Accept-Language": "fr"})
    text = page.get_data(as_text=True)
    assert "Le passage qui répond était parmi les 5 trouvés." in text
    assert "La réponse ne cite aucun passage" in text


def test_the_suites_documents_are_removed_when_the_run_ends(app, documents_run):
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Document.id))) == 0
        assert db.session.scalar(db.select(db.func.count(Chunk.id))) == 0
    assert not any((app.config["DOCUMENTS_DIR"]).iterdir())


def command_line_run(app, folder) -> BenchmarkRun:
    from app.bench.runs import Plan, create_run
    from app.bench.suites import load_suites

    with app.app_context():
        plan = Plan(load_suites(folder)["essai"], ["tiny"])
        run_id = create_run(plan, {}, "cli", None).id  # no user: as `flask bench run` makes it
        app.extensions["bench"].execute(run_id)
    return latest_run(app)


def test_a_command_line_run_keeps_its_documents_with_an_administrator(app, admin, engine, documents_suite):
    run = command_line_run(app, documents_suite)
    assert run.state == "done", run.error
    assert {r.prompt_id: r.check["retrieval"]["found"] for r in run.results}["accident"] is True


def test_a_documents_run_with_no_administrator_fails_saying_why(app, engine, documents_suite):
    run = command_line_run(app, documents_suite)
    assert run.state == "failed" and "administrator" in run.error
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Document.id))) == 0
