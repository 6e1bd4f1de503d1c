"""What every page guarantees: its look on errors, its language, its security headers, its assets."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))


def test_unknown_page_shows_the_custom_404_with_a_way_back(signed_in):
    response = signed_in.get("/no/such/page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "This page does not exist." in page
    assert 'href="/"' in page


def test_unknown_page_answers_json_to_scripts(signed_in):
    response = signed_in.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json == {"error": "This page does not exist.", "status": 404}


def test_admin_pages_answer_403_to_other_users(client, auth):
    auth.register("admin")
    auth.logout()
    auth.register("worker")
    response = client.get("/admin/models")
    assert response.status_code == 403
    assert "for administrators" in response.get_data(as_text=True)


def test_admin_sees_every_model_and_why_one_is_unusable(app, signed_in, engine):
    from app.llm.types import ModelInfo

    broken = ModelInfo(
        id="broken", engine="scripted", name="Broken", problem="not a GGUF file: /m/broken.gguf"
    )
    engine.list_models = lambda: [ModelInfo(id="tiny", engine="scripted", name="Tiny"), broken]
    page = signed_in.get("/admin/models").get_data(as_text=True)
    assert "Tiny" in page and "Offered" in page
    assert "not a GGUF file: /m/broken.gguf" in page


def test_server_error_shows_the_500_page_without_a_stack_trace(app, client, auth):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    auth.register()
    response = client.get("/boom")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "Something went wrong on the server" in page
    assert "secret internals" not in page and "Traceback" not in page


def test_every_response_forbids_scripts_from_anywhere_but_the_app(client, signed_in):
    for path in ("/login", "/", "/no/such/page", "/static/js/app.js"):
        policy = client.get(path).headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "default-src 'self'" in policy
        assert "unsafe-inline" not in policy


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_templates_have_no_inline_script_or_event_handler(template):
    text = template.read_text()
    for tag in re.findall(r"<script\b[^>]*>", text):
        assert "src=" in tag, f"inline script in {template.name}: {tag}"
    assert not re.search(r"\son[a-z]+\s*=", text), f"event handler attribute in {template.name}"
    assert not re.search(r"\sstyle\s*=", text), f"style attribute in {template.name}"


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_templates_load_nothing_from_another_site(template):
    assert not re.search(r"(src|href|action)\s*=\s*[\"']?(https?:)?//", template.read_text())


def test_pages_speak_french_by_default(tmp_path, engine):
    from app import create_app
    from app.llm import LLMServices
    from app.llm.catalogue import Catalogue
    from app.llm.scheduler import Scheduler
    from config import Config, TestConfig

    class ProductionLanguage(TestConfig):
        BABEL_DEFAULT_LOCALE = Config.BABEL_DEFAULT_LOCALE

    catalogue = Catalogue([engine], "tiny")
    app = create_app(ProductionLanguage, llm_services=LLMServices(catalogue, Scheduler(catalogue)))
    page = app.test_client().get("/login").get_data(as_text=True)
    assert '<html lang="fr"' in page
    assert "Se connecter" in page


def test_pages_follow_the_browser_language(client):
    page = client.get("/login", headers={"Accept-Language": "en-GB,en;q=0.8"}).get_data(as_text=True)
    assert '<html lang="en"' in page and "Sign in" in page


def test_language_switch_is_remembered(client):
    client.post("/language", data={"lang": "fr"})
    page = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="fr"' in page


def test_form_errors_are_in_the_users_language(client):
    client.post("/language", data={"lang": "fr"})
    response = client.post("/register", data={"username": "bob", "password": "court", "confirm": "court"})
    assert "Un mot de passe compte de 12 à 128 caractères." in response.get_data(as_text=True)


def test_french_catalogue_translates_every_string_in_the_code(tmp_path):
    # Extract afresh: a new _() string fails here even before anyone re-extracts the catalogue.
    template_path = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "-o",
            str(template_path),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with open(template_path, "rb") as f:
        template = read_po(f)
    with open(ROOT / "app/translations/fr/LC_MESSAGES/messages.po", "rb") as f:
        catalogue = read_po(f)

    def translated(message) -> bool:
        # A plural message's msgstr is a tuple: every form must be filled.
        string = message.string if message else ""
        return all(string) if isinstance(string, tuple | list) else bool(string)

    untranslated = [m.id for m in template if m.id and not translated(catalogue.get(m.id))]
    fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
    assert len(template) > 80
    assert untranslated == [] and fuzzy == []


def _css_escape(name: str) -> str:
    return re.sub(r"([^a-zA-Z0-9_-])", r"\\\1", name)


def _template_classes() -> set[str]:
    """Every class named in a template's class attribute, including Jinja literals inside it."""
    classes = set()
    for template in TEMPLATES:
        for value in re.findall(r'class="((?:[^"{]|\{\{.*?\}\}|\{%.*?%\})*)"', template.read_text()):
            literals = re.findall(r"'([^']*)'", " ".join(re.findall(r"\{\{.*?\}\}", value)))
            plain = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", " ", value)
            classes.update(token for part in [plain, *literals] for token in part.split())
    return classes


def test_committed_css_has_every_class_the_templates_use():
    css = (ROOT / "static/css/app.css").read_text()
    missing = sorted(c for c in _template_classes() if "." + _css_escape(c) not in css)
    assert missing == [], "run scripts/build-assets and commit static/css/app.css"


def test_the_class_check_would_notice_a_missing_class():
    css = (ROOT / "static/css/app.css").read_text()
    assert "." + _css_escape("md:flex") in css
    assert "." + _css_escape("dark:bg-slate-950") in css
    assert "." + _css_escape("bg-fuchsia-950") not in css


def test_static_assets_the_pages_name_exist(signed_in):
    page = signed_in.get("/").get_data(as_text=True)
    assets = re.findall(r'(?:src|href)="(/static/[^"?]+)', page)
    assert len(assets) >= 6
    for asset in assets:
        assert signed_in.get(asset).status_code == 200, asset


def test_language_chosen_before_signing_in_is_kept_after(client, auth):
    client.post("/language", data={"lang": "fr"})
    auth.register()
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="fr"' in page


def test_every_page_offers_both_languages(client, auth):
    pages = [client.get("/login")]
    auth.register()
    pages.append(client.get("/"))
    for page in pages:
        html = page.get_data(as_text=True)
        assert 'name="lang" value="fr"' in html and 'name="lang" value="en"' in html


def test_an_unlisted_client_error_gets_a_client_error_message(signed_in):
    response = signed_in.post(
        "/conversations", data="x", headers={"Content-Type": "text/plain", "Accept": "application/json"}
    )
    assert response.status_code in (201, 409)  # form-less POST still works: the default model
    from werkzeug.exceptions import UnsupportedMediaType

    from app.errors import render_error

    with signed_in.application.test_request_context(headers={"Accept": "application/json"}):
        body, status = render_error(UnsupportedMediaType.code)
    assert status == 415 and body.json["error"] == "The request could not be understood."
