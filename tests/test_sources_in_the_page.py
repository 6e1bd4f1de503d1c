"""The fold of sources under an answer, as the server renders a stored conversation: its title
says how much of the documents was read, or that nothing relevant was found; its passages are
text, whatever markup a document holds. (Live, citations.js writes the same words: see
tests/browser/test_documents_in_browser.py.)"""

import re
from html import unescape

import sqlalchemy as sa

from app.extensions import db
from app.models import Message

JSON = {"Accept": "application/json"}
STREAM = {"Accept": "text/event-stream"}
SUMMARY = re.compile(r"<summary[^>]*data-sources-summary>(.*?)</summary>", re.S)


def answered_conversation(client, app, sources: dict) -> int:
    """A conversation of one answered question, the question's stored sources set to `sources`."""
    conversation = client.post("/conversations", json={}, headers=JSON).json["id"]
    client.post(
        f"/conversations/{conversation}/messages", json={"content": "Une question ?"}, headers=STREAM
    ).get_data()
    with app.app_context():
        question = db.session.scalar(sa.select(Message).where(Message.role == "user"))
        question.sources = sources
        db.session.commit()
    return conversation


def passage(n: int, text: str = "Un passage.", page: int | None = 3) -> dict:
    return {
        "n": n,
        "chunk_id": n,
        "document_id": 1,
        "name": "rapport.pdf",
        "page": page,
        "heading": "",
        "text": text,
    }


def thread(client, conversation: int) -> str:
    """The conversation's page in French, up to the empty messages the scripts copy."""
    page = client.get(f"/c/{conversation}", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    return page.split('<template id="question-template">')[0]


def summaries(client, conversation: int) -> list[str]:
    page = thread(client, conversation)
    return [" ".join(unescape(s).split()) for s in SUMMARY.findall(page)]


def test_an_answer_whose_documents_held_nothing_relevant_says_so_under_it(app, signed_in):
    read = {"passages": 0, "pages": 42, "documents": 1, "whole": []}
    conversation = answered_conversation(signed_in, app, {"passages": [], "read": read})
    assert summaries(signed_in, conversation) == ["Aucun extrait pertinent trouvé dans les documents"]


def test_an_answer_from_some_passages_says_how_many_of_how_many_pages(app, signed_in):
    read = {"passages": 3, "pages": 42, "documents": 1, "whole": []}
    conversation = answered_conversation(
        signed_in, app, {"passages": [passage(1), passage(2), passage(3)], "read": read}
    )
    assert summaries(signed_in, conversation) == ["Sources (3 extraits sur 42 pages)"]


def test_an_answer_from_a_whole_document_names_it_read_in_full(app, signed_in):
    read = {"passages": 2, "pages": 2, "documents": 1, "whole": ["rapport.pdf"]}
    conversation = answered_conversation(signed_in, app, {"passages": [passage(1), passage(2)], "read": read})
    assert summaries(signed_in, conversation) == ["Sources : rapport.pdf lu en entier"]


def test_an_answer_from_a_whole_document_and_other_passages_counts_the_others(app, signed_in):
    read = {"passages": 3, "pages": 50, "documents": 2, "whole": ["rapport.pdf"]}
    others = [dict(passage(n), name="manuel.pdf") for n in (2, 3)]
    conversation = answered_conversation(signed_in, app, {"passages": [passage(1), *others], "read": read})
    assert summaries(signed_in, conversation) == [
        "Sources : rapport.pdf lu en entier · 2 extraits d'autres documents"
    ]


def test_an_answer_without_documents_has_no_sources_fold(app, signed_in):
    conversation = answered_conversation(signed_in, app, None)
    page = thread(signed_in, conversation)
    fold = re.search(r'<details class="([^"]*)"[^>]*data-sources>', page)
    assert fold and "hidden" in fold[1].split()


def test_a_passages_markup_is_shown_as_text(app, signed_in):
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    read = {"passages": 1, "pages": 1, "documents": 1, "whole": ["note.html"]}
    conversation = answered_conversation(
        signed_in, app, {"passages": [passage(1, hostile, None)], "read": read}
    )
    page = thread(signed_in, conversation)
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "<script>alert" not in page
