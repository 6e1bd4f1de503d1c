"""The audit log as the admin reads it: each change leaves its entry in the change's own
transaction; the page filters, pages and exports them; old entries go after the retention.
(Every admin form and account event leaving exactly one entry: tests/test_audit_walk.py.)"""

from __future__ import annotations

import csv
import html
import io
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.audit import record
from app.extensions import db
from app.models import AuditEntry, ModelSetting, User, utcnow
from tests.conftest import AuthActions


def client_of(app, username: str, register: bool = False, address: str = "127.0.0.1"):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if register:
        AuthActions(client).register(username)
    else:
        AuthActions(client).login(username)
    return client


@pytest.fixture
def admin(app):
    return client_of(app, "admin", register=True)


@pytest.fixture
def bob(app, admin):
    client_of(app, "bob", register=True)
    return client_of(app, "bob", address="10.0.0.9")


def entries(app, action: str | None = None) -> list[AuditEntry]:
    with app.app_context():
        query = sa.select(AuditEntry).order_by(AuditEntry.id)
        if action:
            query = query.where(AuditEntry.action == action)
        found = list(db.session.scalars(query))
        db.session.expunge_all()
        return found


def add_entry(app, action: str, target: str = "", *, days_ago: float = 0, address: str = "", **details):
    """An entry as if written `days_ago` days ago, by nobody in particular."""
    with app.app_context():
        entry = record(action, target, details=details or None)
        entry.created_at = utcnow() - timedelta(days=days_ago)
        entry.address = address
        db.session.commit()


def user_id(app, name: str) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(User.id).where(User.username == name))


def page(client, **args) -> str:
    response = client.get("/admin/audit", query_string=args)
    return response.get_data(as_text=True)


# --- written with the change --------------------------------------------------------------


def test_a_change_and_its_entry_are_written_together(app, admin, bob):
    admin.post(f"/admin/users/{user_id(app, 'bob')}/disable")
    (entry,) = entries(app, "account.disable")
    assert (entry.actor_name, entry.target, entry.address) == ("admin", "bob", "127.0.0.1")
    with app.app_context():
        assert db.session.get(User, user_id(app, "bob")).disabled


def test_a_change_whose_write_fails_leaves_no_entry(app, admin):
    def refuse(*_args):
        raise RuntimeError("the disk is full")

    app.config["PROPAGATE_EXCEPTIONS"] = False  # the error page, as in production
    sa.event.listen(ModelSetting, "before_insert", refuse)
    try:
        response = admin.post(
            "/admin/models/settings", data={"model": "tiny", "enabled": "y", "temperature": "0.3"}
        )
    finally:
        sa.event.remove(ModelSetting, "before_insert", refuse)
    assert response.status_code == 500
    assert entries(app, "model.settings") == []
    with app.app_context():
        assert db.session.get(ModelSetting, "tiny") is None


def test_a_refused_file_of_an_upload_leaves_no_entry_and_the_accepted_one_leaves_its_own(app, admin):
    admin.post("/knowledge/new", data={"name": "Docs", "description": "", "access": "all", "readers": ""})
    with app.app_context():
        from app.models import Collection

        collection_id = db.session.scalar(sa.select(Collection.id))
    files = [(io.BytesIO(b"Bonjour."), "good.txt"), (io.BytesIO(b""), "empty.txt")]
    admin.post(
        f"/knowledge/{collection_id}/documents", data={"files": files}, content_type="multipart/form-data"
    )
    assert [e.target for e in entries(app, "document.upload")] == ["good.txt"]


def test_model_settings_record_only_the_fields_that_changed_before_and_after(app, admin):
    admin.post("/admin/models/settings", data={"model": "tiny", "enabled": "y", "temperature": "0.3"})
    admin.post("/admin/models/settings", data={"model": "tiny", "enabled": "y", "temperature": "0.7"})
    first, second = entries(app, "model.settings")
    assert first.details == {"before": {"temperature": None}, "after": {"temperature": 0.3}}
    assert second.details == {"before": {"temperature": 0.3}, "after": {"temperature": 0.7}}


def test_sign_in_failures_of_a_known_and_an_unknown_name_leave_the_same_entry(app, admin, bob):
    visitor = app.test_client()
    visitor.post("/login", data={"username": "bob", "password": "not the password at all"})
    visitor.post("/login", data={"username": "nobody", "password": "not the password at all"})
    known, unknown = entries(app, "signin.fail")
    assert (known.target, unknown.target) == ("bob", "nobody")
    assert known.details == unknown.details == {"reason": "password"}
    assert (
        known.actor_id is None and unknown.actor_id is None and known.actor_name == unknown.actor_name == ""
    )


def test_sign_ins_refused_by_the_throttle_leave_no_entry(app, admin):
    visitor = app.test_client()
    statuses = [
        visitor.post("/login", data={"username": "admin", "password": "not the password at all"}).status_code
        for _ in range(8)
    ]
    assert 429 in statuses, "the throttle refused the last tries unchecked"
    assert len(entries(app, "signin.fail")) == statuses.count(401)


# --- the page -----------------------------------------------------------------------------


def test_the_page_shows_when_who_from_where_what_and_the_change(app, admin):
    admin.post("/admin/models/settings", data={"model": "tiny", "enabled": "y", "temperature": "0.3"})
    text = page(admin, action="model.settings")
    row = text.split('data-entry="model.settings"')[1].split("</tr>")[0]
    assert "admin" in row and "127.0.0.1" in row and "Model settings" in row and "tiny" in row
    assert "Temperature" in row and "<del" in row and "0.3</ins>" in row  # the form's label


def test_times_are_shown_in_the_readers_time_zone(app, admin):
    add_entry(app, "signout", "carol")
    with app.app_context():
        entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.target == "carol"))
        entry.created_at = entry.created_at.replace(year=2026, month=1, day=15, hour=9, minute=30, second=0)
        db.session.commit()
    admin.set_cookie("tz", "Asia%2FTokyo")
    assert "18:30:00" in page(admin, person="carol")  # 09:30 UTC is 18:30 in Tokyo
    admin.set_cookie("tz", "UTC")
    assert "09:30:00" in page(admin, person="carol")


def test_the_filter_keeps_one_kind_one_person_one_period_and_one_address(app, admin):
    add_entry(app, "account.disable", "bob", days_ago=10, address="10.0.0.1")
    add_entry(app, "account.enable", "bob", days_ago=1, address="10.0.0.2")
    add_entry(app, "account.enable", "carol", days_ago=1, address="192.168.1.5")
    add_entry(app, "apikey.create", "bob's key", days_ago=1, address="10.0.0.3")

    def shown(**args) -> list[str]:
        text = page(admin, **args)
        return [
            row.split("data-target>")[1].split("</td>")[0].split("</span>")[-1].strip()
            for row in text.split("data-entry=")[1:]
        ]

    assert shown(action="account.enable") == ["carol", "bob"]
    # A kind: every account.* action (the admin's registration is one).
    assert shown(action="account") == ["admin", "carol", "bob", "bob"]
    assert shown(person="BOB") == ["bob", "bob"]
    day = (utcnow() - timedelta(days=10)).date().isoformat()
    assert shown(since=day, until=day, person="bob") == ["bob"]
    assert shown(address="10.0.0.", action="account") == ["bob", "bob"]
    assert shown(address="192.168.1.5") == ["carol"]


@pytest.mark.parametrize(
    "args, english, french",
    [
        ({"since": "2026-13-40"}, "“2026-13-40” is not a date", "« 2026-13-40 » n'est pas une date"),
        (
            {"action": "account.explode"},
            "There is no action “account.explode”",
            "Il n'y a pas d'action « account.explode »",
        ),
        (
            {"since": "2026-12-07", "until": "2026-12-01"},
            "The first day comes after the last one",
            "Le premier jour vient après le dernier",
        ),
        ({"address": "<script>"}, "is not an address", "n'est pas une adresse"),
    ],
)
def test_a_filter_not_understood_says_why_in_english_and_in_french(app, admin, args, english, french):
    response = admin.get("/admin/audit", query_string=args)
    assert response.status_code == 400 and english in response.get_data(as_text=True)
    admin.post("/language", data={"lang": "fr"})
    response = admin.get("/admin/audit/export.csv", query_string=args)
    assert response.status_code == 400 and french in html.unescape(response.get_data(as_text=True))


@pytest.mark.parametrize(
    "args",
    [
        {"page": "\u00b2"},
        {"page": "9" * 5000},
        {"page": "-3"},
        {"since": "0001-01-01", "until": "9999-12-31"},
    ],
)
def test_odd_pages_and_the_ends_of_the_calendar_show_the_log(app, admin, args):
    admin.set_cookie("tz", "Pacific%2FKiritimati")  # UTC+14: the first day's midnight is before year 1
    response = admin.get("/admin/audit", query_string=args)
    assert response.status_code == 200 and 'data-entry="account.register"' in response.get_data(as_text=True)


def test_the_log_is_newest_first_fifty_to_a_page(app, admin):
    for number in range(60):
        add_entry(app, "signout", f"person{number:02d}", days_ago=(60 - number) / 1000)
    first = page(admin, action="signout")
    assert first.index("person59") < first.index("person58") and "person09" not in first
    second = page(admin, action="signout", page=2)
    assert "person09" in second and "person00" in second and "person59" not in second
    assert 'rel="prev"' in second and "action=signout" in second.split('rel="prev"')[1].split(">")[0]


# --- the CSV export -----------------------------------------------------------------------


def test_the_csv_export_keeps_quotes_commas_and_lines_and_defuses_formulas(app, admin):
    add_entry(
        app,
        "collection.create",
        '=HYPERLINK("http://evil.example","clic")',
        note='a "quote", a comma\nand a line',
    )
    add_entry(app, "collection.create", "+33 1 23", note="@SUM(A1)")
    add_entry(app, "collection.create", "-2+3")
    add_entry(app, "account.enable", "plain")
    response = admin.get("/admin/audit/export.csv", query_string={"action": "collection.create"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["target"] for row in rows] == [
        "'-2+3",
        "'+33 1 23",
        '\'=HYPERLINK("http://evil.example","clic")',
    ]
    assert rows[1]["details"] == '{"note": "@SUM(A1)"}'  # a JSON text starts with {: nothing to defuse
    assert rows[2]["details"] == '{"note": "a \\"quote\\", a comma\\nand a line"}'


# --- retention ----------------------------------------------------------------------------


def test_retention_deletes_the_older_entries_at_once_and_logs_the_deletion(app, admin):
    add_entry(app, "signout", "old", days_ago=40)
    add_entry(app, "signout", "recent", days_ago=20)
    response = admin.post("/admin/audit/retention", data={"days": "30"}, follow_redirects=True)
    assert "1 older entry was deleted" in response.get_data(as_text=True)
    targets = [e.target for e in entries(app)]
    assert "old" not in targets and "recent" in targets
    (purge,) = entries(app, "audit.purge")
    assert purge.details["deleted"] == 1 and purge.actor_name == "" and purge.address == ""
    (setting,) = entries(app, "audit.retention")
    assert setting.details == {"before": {"days": 0}, "after": {"days": 30}}


def test_retention_is_applied_by_the_first_request_of_each_day(app, admin):
    admin.post("/admin/audit/retention", data={"days": "30"})
    add_entry(app, "signout", "old", days_ago=40)
    admin.get("/settings")
    assert "old" in [e.target for e in entries(app)]  # today's deletion ran already
    app.extensions["audit_purged_on"] = utcnow().date() - timedelta(days=1)  # a new day
    admin.get("/settings")
    assert "old" not in [e.target for e in entries(app)]


def test_zero_days_keeps_entries_forever(app, admin):
    add_entry(app, "signout", "ancient", days_ago=3650)
    response = admin.post("/admin/audit/retention", data={"days": "0"}, follow_redirects=True)
    assert "kept forever" in response.get_data(as_text=True)
    assert "ancient" in [e.target for e in entries(app)]


@pytest.mark.parametrize("days", ["-1", "thirty", "", "99999999", "\u00b2", "9" * 5000])
def test_a_retention_not_a_number_of_days_is_refused_with_a_message(app, admin, days):
    response = admin.post("/admin/audit/retention", data={"days": days}, follow_redirects=True)
    assert "Keep entries for a whole number of days" in response.get_data(as_text=True)
    assert entries(app, "audit.retention") == []


# --- who may read it ----------------------------------------------------------------------


def test_only_admins_read_export_or_set_the_audit_log(app, admin, bob):
    assert bob.get("/admin/audit").status_code == 403
    assert bob.get("/admin/audit/export.csv").status_code == 403
    assert bob.post("/admin/audit/retention", data={"days": "1"}).status_code == 403
    assert entries(app, "audit.retention") == []
    assert app.test_client().get("/admin/audit").status_code in (302, 401)


def test_a_deleted_accounts_entries_stay_under_its_name(app, admin, bob):
    bob.post("/settings/api-keys", data={"name": "script"})
    with app.app_context():
        db.session.execute(sa.delete(User).where(User.username == "bob"))
        db.session.commit()
    (entry,) = entries(app, "apikey.create")
    assert entry.actor_id is None and entry.actor_name == "bob"
