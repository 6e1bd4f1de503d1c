"""The admin's dashboard: per-model figures for a period, charts, the server now, CSV."""

import csv
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.metrics.dashboard import percentile
from app.models import Document, Generation, User, utcnow
from tests.conftest import PASSWORD


def measured(model: str, first: float, total: float, speed: float, cpu: float, **extra) -> Generation:
    values = {
        "engine": "llama.cpp",
        "model": model,
        "outcome": "complete",
        "first_token_seconds": first,
        "total_seconds": total,
        "tokens_per_second": speed,
        "process_cpu_percent_mean": cpu,
        "process_cpu_percent_peak": cpu + 5,
        "process_rss_peak_bytes": 300_000_000,
        "concurrent": 1,
        **extra,
    }
    return Generation(**values)


@pytest.fixture
def history(app, signed_in):
    with app.app_context():
        db.session.add_all(
            [measured("smollm2", 0.2 + i / 10, 3.0 + i, 60 + i, 90) for i in range(10)]
            + [measured("mistral:latest", 4.0, 40.0, 5.0, 99, engine="ollama@127.0.0.1:11434")]
            + [measured("mistral:latest", 9.9, 99.0, 1.0, 99, outcome="error")]
            + [measured("mistral:latest", 30.0, 90.0, 2.0, 50, concurrent=3)]  # shared the machine
            + [measured("gemma", 1.0, 2.0, 50, 50, created_at=utcnow() - timedelta(days=3))]
        )
        db.session.commit()
    return signed_in


def row_of(page: str, model: str) -> str:
    return page.split(f'data-model-id="{model}"')[1].split("</tr>")[0]


def test_each_model_gets_its_figures_side_by_side(history):
    page = history.get("/admin/dashboard?period=7d").get_data(as_text=True)
    smollm2 = row_of(page, "smollm2")
    assert ">10<" in smollm2 and "0.60 s / 1.10 s" in smollm2 and "7.00 s / 12.00 s" in smollm2
    assert "64.5" in smollm2 and "90% / 95%" in smollm2 and "0.30 GB" in smollm2
    mistral = row_of(page, "mistral:latest")
    assert ">3<" in mistral and "33%" in mistral  # one error in three answers
    assert "gemma" in page and page.count("<svg") >= 4


def test_answers_written_together_count_and_show_how_many_ran_at_once(history):
    mistral = row_of(history.get("/admin/dashboard").get_data(as_text=True), "mistral:latest")
    assert ">3<" in mistral and "1 / 3" in mistral  # three answers, one of them in a batch of three


def test_the_admin_can_keep_only_the_answers_written_alone(history):
    alone = history.get("/admin/dashboard?alone=1").get_data(as_text=True)
    assert ">2<" in row_of(alone, "mistral:latest") and "30.00 s" not in row_of(alone, "mistral:latest")


def test_the_share_of_each_prompt_taken_from_the_cache_is_shown(app, signed_in):
    with app.app_context():
        db.session.add_all(
            [
                measured("smollm2", 0.1, 1.0, 60, 90, prompt_tokens=100, cached_prompt_tokens=n)
                for n in (0, 80, 90)
            ]
        )
        db.session.commit()
    assert "80%" in row_of(signed_in.get("/admin/dashboard").get_data(as_text=True), "smollm2")


def test_the_period_chooses_the_answers(history):
    page = history.get("/admin/dashboard?period=24h").get_data(as_text=True)
    assert 'data-model-id="gemma"' not in page and 'data-model-id="smollm2"' in page


def test_a_period_that_does_not_exist_gets_a_clear_message(history):
    response = history.get("/admin/dashboard?period=1y")
    assert response.status_code == 400 and "24h, 7d or 30d" in response.get_data(as_text=True)


def test_the_records_download_as_csv(history):
    response = history.get("/admin/dashboard.csv?period=30d")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 14  # every answer of the period, as on the page
    assert {"model", "first_token_seconds", "process_cpu_seconds", "concurrent"} <= set(rows[0])


def test_the_live_panel_reads_the_machine_now(history):
    live = history.get("/admin/live").json
    assert 0 <= live["cpu_percent"] <= 100 and live["memory_total"] >= live["memory_used"] > 0
    assert isinstance(live["loaded"], list)


def test_users_cannot_see_the_dashboard(app, history):
    other = app.test_client()
    other.post("/register", data={"username": "bob", "password": PASSWORD, "confirm": PASSWORD})
    for path in ("/admin/dashboard", "/admin/dashboard.csv", "/admin/live"):
        assert other.get(path).status_code == 403


def test_an_empty_period_says_so(signed_in):
    assert "No answer in this period yet." in signed_in.get("/admin/dashboard").get_data(as_text=True)


def test_percentiles_take_the_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (50.0, 95.0)
    assert percentile([3.0], 0.95) == 3.0 and percentile([], 0.5) is None


def test_a_model_name_that_looks_like_a_formula_stays_text_in_the_csv(app, signed_in):
    with app.app_context():
        db.session.add(measured("=HYPERLINK(1)", 1.0, 2.0, 3.0, 4.0))
        db.session.commit()
    rows = list(csv.DictReader(io.StringIO(signed_in.get("/admin/dashboard.csv").get_data(as_text=True))))
    assert rows[0]["model"] == "'=HYPERLINK(1)"


@pytest.fixture
def documents_history(app, signed_in):
    """smollm2's answers of the period: three that drew on documents, three that did not."""
    with app.app_context():
        drew = {"documents_wait_seconds": 1.5, "retrieval_seconds": 0.012, "passages": 3}
        db.session.add_all(
            [measured("smollm2", 3.0 + i, 9.0, 50, 90, passage_tokens=500 + 20 * i, **drew) for i in range(3)]
            + [measured("smollm2", 0.5, 4.0, 60, 90) for _ in range(3)]
            + [measured("gemma", 0.7, 3.0, 40, 90)]  # never drew on documents: not in the table
        )
        db.session.commit()
    return signed_in


def documents_table(page: str) -> str:
    return page.split("data-documents-costs")[1].split("</table>")[0]


def test_the_first_token_with_documents_is_shown_beside_the_same_models_without(documents_history):
    table = documents_table(documents_history.get("/admin/dashboard").get_data(as_text=True))
    smollm2 = row_of(table, "smollm2")
    assert ">3<" in smollm2 and "4.00 s / 0.50 s" in smollm2  # medians: with documents, without
    assert "1.50 s" in smollm2 and "0.012 s" in smollm2 and ">520<" in smollm2  # wait, retrieval, tokens
    assert 'data-model-id="gemma"' not in table


def test_each_answer_with_documents_lists_its_wait_retrieval_passages_and_first_token(documents_history):
    page = documents_history.get("/admin/dashboard").get_data(as_text=True)
    answers = page.split("data-document-answers")[1].split("</table>")[0]
    assert answers.count("data-generation=") == 3  # the three that drew on documents, no other
    newest = answers.split("data-generation=")[1]
    assert "1.50 s" in newest and "0.012 s" in newest and ">3<" in newest and ">540<" in newest
    assert "5.00 s" in newest


def test_the_documents_figures_are_written_in_french_for_a_french_reader(documents_history):
    documents_history.post("/settings", data={"language": "fr", "theme": "system"})
    page = documents_history.get("/admin/dashboard").get_data(as_text=True)
    table = documents_table(page)
    assert "Premier jeton avec / sans documents (médiane)" in table and "4,00 s / 0,50 s" in table
    assert "0,012 s" in table and "Documents indexés" in page and "4.00 s" not in table


def test_the_indexing_panel_counts_the_periods_documents_pages_per_second_and_errors(app, signed_in):
    with app.app_context():
        owner = db.session.scalar(sa.select(User.id))

        def document(n: int, **values) -> Document:
            return Document(
                owner_id=owner, filename=f"d{n}.pdf", kind="pdf", size_bytes=1000, sha256="0" * 64,
                stored_as=f"file{n}", **values,
            )  # fmt: skip

        db.session.add_all(
            [
                document(1, state="ready", pages=50, chunks=120, index_seconds=10.0, indexed_at=utcnow()),
                document(2, state="ready", pages=20, chunks=40, index_seconds=2.0, indexed_at=utcnow()),
                document(3, state="ready", pages=10, chunks=20, index_seconds=10.0, indexed_at=utcnow()),
                document(4, state="error", error_code="encrypted"),
                document(5, state="indexing"),  # not indexed yet: not counted
                document(  # indexed before the period
                    6,
                    state="ready",
                    pages=900,
                    chunks=900,
                    index_seconds=1.0,
                    indexed_at=utcnow() - timedelta(days=10),
                    created_at=utcnow() - timedelta(days=10),
                ),  # fmt: skip
            ]
        )
        db.session.commit()
    panel = signed_in.get("/admin/dashboard?period=7d").get_data(as_text=True).split("data-indexing")[1]
    panel = panel.split("</dl>")[0]
    assert "data-documents>3<" in panel and "data-passages>180<" in panel and "data-errors>1<" in panel
    assert "data-pages-per-second>5.0<" in panel  # 5, 10 and 1 pages per second: the median


def test_a_period_without_answers_drawing_on_documents_says_so(history):
    page = history.get("/admin/dashboard").get_data(as_text=True)
    assert "No answer drew on documents in this period." in page and "data-document-answers" not in page
