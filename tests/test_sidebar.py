"""The sidebar's list: pinned conversations on top, the others under the day they were last
written in ("Aujourd'hui", "Hier", "7 derniers jours", "Plus ancien"), in the reader's time zone."""

import html
import re
from datetime import datetime, timedelta

import pytest

from app.chat import routes
from app.extensions import db
from app.models import Conversation, utcnow

JSON = {"Accept": "application/json"}
FRENCH = {"Accept-Language": "fr"}


def new_conversation(client, title: str) -> int:
    response = client.post("/conversations", json={}, headers=JSON)
    assert response.status_code == 201, response.data
    conversation_id = response.json["id"]
    client.post(f"/conversations/{conversation_id}/rename", json={"title": title}, headers=JSON)
    return conversation_id


def last_written(app, conversation_id: int, moment: datetime) -> None:
    with app.app_context():
        db.session.get(Conversation, conversation_id).updated_at = moment
        db.session.commit()


def sidebar(client, path: str = "/", headers=None) -> list[tuple[str, list[str]]]:
    """The sidebar's groups as shown: (heading, [titles]) in order, empty groups left out."""
    page = client.get(path, headers={**FRENCH, **(headers or {})}).get_data(as_text=True)
    listed = page.split('id="conversation-list"')[1].split("</aside>")[0]
    groups = []
    for section in re.findall(r"<section (.*?)</section>", listed, re.S):
        if section.startswith('class="hidden"'):
            continue
        heading = html.unescape(re.search(r"<h2[^>]*>([^<]*)</h2>", section)[1])
        titles = re.findall(r"data-title>([^<]*)</span>", section)
        groups.append((heading, [html.unescape(title) for title in titles]))
    return groups


def pin(client, conversation_id: int, pinned, headers=JSON):
    return client.post(f"/conversations/{conversation_id}/pin", json={"pinned": pinned}, headers=headers)


def test_the_sidebar_groups_conversations_under_today_yesterday_the_previous_7_days_and_older(app, signed_in):
    now = utcnow()
    for title, age in (("Vieille", 30), ("Semaine", 5), ("Veille", 1), ("Du jour", 0)):
        last_written(app, new_conversation(signed_in, title), now - timedelta(days=age))
    assert sidebar(signed_in) == [
        ("Aujourd'hui", ["Du jour"]),
        ("Hier", ["Veille"]),
        ("7 derniers jours", ["Semaine"]),
        ("Plus ancien", ["Vieille"]),
    ]


def test_the_sidebar_dates_a_conversation_in_the_time_zone_the_browser_gives(app, signed_in, monkeypatch):
    monkeypatch.setattr(routes, "utcnow", lambda: datetime(2026, 12, 7, 1, 0))  # 02:00 in Paris
    last_written(app, new_conversation(signed_in, "Tard le soir"), datetime(2026, 12, 6, 23, 30))
    assert sidebar(signed_in) == [("Hier", ["Tard le soir"])]  # no zone known: UTC
    signed_in.set_cookie("tz", "Europe/Paris")  # as app.js writes it
    assert sidebar(signed_in) == [("Aujourd'hui", ["Tard le soir"])]  # 00:30 in Paris
    signed_in.set_cookie("tz", "Mars/Olympus_Mons")
    assert sidebar(signed_in) == [("Hier", ["Tard le soir"])]


def test_the_time_zone_counts_as_the_browser_writes_its_cookie_percent_encoded(app, signed_in, monkeypatch):
    """app.js writes the zone with encodeURIComponent ("Europe%2FParis"), which the server reads as is."""
    from urllib.parse import quote

    monkeypatch.setattr(routes, "utcnow", lambda: datetime(2026, 12, 7, 1, 0))  # 02:00 in Paris
    last_written(app, new_conversation(signed_in, "Tard le soir"), datetime(2026, 12, 6, 23, 30))
    signed_in.set_cookie("tz", quote("Europe/Paris", safe=""))  # encodeURIComponent's "Europe%2FParis"
    assert sidebar(signed_in) == [("Aujourd'hui", ["Tard le soir"])]  # 00:30 in Paris


def test_a_pinned_conversation_stays_on_top_under_its_heading_until_unpinned(app, signed_in):
    older = new_conversation(signed_in, "Notes de projet")
    last_written(app, older, utcnow() - timedelta(days=40))
    new_conversation(signed_in, "Question du jour")
    assert pin(signed_in, older, True).json["pinned"] is True
    assert sidebar(signed_in) == [("Épinglées", ["Notes de projet"]), ("Aujourd'hui", ["Question du jour"])]
    listed = signed_in.get("/conversations", headers=JSON).json["conversations"]
    assert [(c["title"], c["pinned"]) for c in listed] == [
        ("Notes de projet", True),
        ("Question du jour", False),
    ]
    assert pin(signed_in, older, False).json["pinned"] is False
    assert sidebar(signed_in) == [("Aujourd'hui", ["Question du jour"]), ("Plus ancien", ["Notes de projet"])]


def test_pinning_from_the_conversations_menu_form_comes_back_to_it_pinned(app, signed_in):
    conversation_id = new_conversation(signed_in, "À garder")
    page = signed_in.get("/", headers=FRENCH).get_data(as_text=True)
    form = re.search(
        rf'<form method="post" action="/conversations/{conversation_id}/pin".*?</form>', page, re.S
    )[0]
    assert 'name="pinned" value="1"' in form and ">Épingler</button>" in form
    response = signed_in.post(f"/conversations/{conversation_id}/pin", data={"pinned": "1"})
    assert response.status_code == 302 and response.headers["Location"] == f"/c/{conversation_id}"
    page = signed_in.get(f"/c/{conversation_id}", headers=FRENCH).get_data(as_text=True)
    form = re.search(
        rf'<form method="post" action="/conversations/{conversation_id}/pin".*?</form>', page, re.S
    )[0]
    assert 'name="pinned" value="0"' in form and ">Détacher</button>" in form
    assert sidebar(signed_in, f"/c/{conversation_id}") == [("Épinglées", ["À garder"])]


@pytest.mark.parametrize(
    "language, message",
    [
        ("fr", "Une conversation est épinglée ou ne l'est pas."),
        ("en", "A conversation is either pinned or not."),
    ],
)
def test_pinning_with_neither_yes_nor_no_is_refused_with_a_message(signed_in, language, message):
    conversation_id = new_conversation(signed_in, "Intacte")
    signed_in.post("/language", data={"lang": language})
    for value in ("maybe", None, 1, ["1"]):
        response = pin(signed_in, conversation_id, value)
        assert response.status_code == 400 and response.json["error"] == message, value
    page = signed_in.post(f"/conversations/{conversation_id}/pin", data={"pinned": "oui"})
    assert page.status_code == 400 and message.replace("'", "&#39;") in page.get_data(as_text=True)
    assert signed_in.get("/conversations", headers=JSON).json["conversations"][0]["pinned"] is False
