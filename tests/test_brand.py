"""The company's look from the admin's configuration: its colour on every page, its logo beside
the name, and a typo refused when the server starts rather than shown to users."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import flask_migrate
import pytest

from app import create_app
from app.llm import LLMServices
from app.llm.catalogue import Catalogue
from app.llm.scheduler import Scheduler
from app.settings.brand import BrandConfigurationError
from config import TestConfig
from tests.conftest import AuthActions
from tests.test_pages import ROOT

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'


def branded_app(tmp_path, engine, **settings):
    """An app started with these BRAND_*/APP_NAME settings, as the admin would configure them."""

    class Config(TestConfig):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'brand.sqlite3'}"
        MODELS_DIR = tmp_path / "models"

    for name, value in settings.items():
        setattr(Config, name, value)
    catalogue = Catalogue([engine], default_model="tiny")
    app = create_app(Config, llm_services=LLMServices(catalogue, Scheduler(catalogue)))
    with app.app_context():
        flask_migrate.upgrade()
    return app


# -- the colour -------------------------------------------------------------------------------
def test_brand_css_carries_the_configured_colour_to_visitors_too(tmp_path, engine):
    client = branded_app(tmp_path, engine, BRAND_COLOR="#0A6E4F").test_client()
    response = client.get("/brand.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert response.get_data(as_text=True).strip() == ":root { --brand: #0a6e4f; }"
    assert response.cache_control.public and response.cache_control.max_age > 0


def test_brand_css_is_empty_without_a_colour(client):
    response = client.get("/brand.css")
    assert response.status_code == 200 and response.mimetype == "text/css"
    assert response.data == b""


def test_brand_css_is_not_sent_again_to_a_browser_that_has_it(tmp_path, engine):
    client = branded_app(tmp_path, engine, BRAND_COLOR="#0a6e4f").test_client()
    etag = client.get("/brand.css").headers["ETag"]
    assert client.get("/brand.css", headers={"If-None-Match": etag}).status_code == 304


def test_every_page_loads_the_brand_colour_after_the_apps_stylesheet(app, signed_in):
    pages = [app.test_client().get("/login")] + [signed_in.get(path) for path in ("/", "/settings")]
    for page in pages:
        text = page.get_data(as_text=True)
        assert text.index("/static/css/app.css") < text.index('href="/brand.css"'), page.request.path


def test_every_brand_shade_is_mixed_from_the_one_colour():
    css = (ROOT / "static" / "css" / "app.css").read_text()
    assert "--color-brand-600:var(--brand)" in css


@pytest.mark.parametrize(
    "colour", ["green", "#12345", "0a6e4f", "#0a6e4g", "#0a6e4f; } body { display: none"]
)
def test_a_bad_brand_colour_refuses_to_start_naming_the_variable(tmp_path, engine, colour):
    with pytest.raises(BrandConfigurationError, match="BRAND_COLOR must be a hex colour such as #0a6e4f"):
        branded_app(tmp_path, engine, BRAND_COLOR=colour)


def test_a_short_hex_colour_is_accepted(tmp_path, engine):
    client = branded_app(tmp_path, engine, BRAND_COLOR="#0a6").test_client()
    assert client.get("/brand.css").get_data(as_text=True).strip() == ":root { --brand: #0a6; }"


def test_a_colour_too_light_for_white_text_starts_with_a_warning(tmp_path, engine, caplog, monkeypatch):
    # Every migration run disables the loggers that existed before it: this one is turned back on.
    monkeypatch.setattr(logging.getLogger("app.settings.brand"), "disabled", False)
    with caplog.at_level(logging.WARNING, logger="app.settings.brand"):
        branded_app(tmp_path, engine, BRAND_COLOR="#ffd700")
    assert "BRAND_COLOR #ffd700" in caplog.text and "contrast" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="app.settings.brand"):
        (tmp_path / "dark").mkdir()
        branded_app(tmp_path / "dark", engine, BRAND_COLOR="#0a6e4f")
    assert "BRAND_COLOR" not in caplog.text


def test_the_server_refuses_to_start_with_a_bad_brand_colour(tmp_path):
    env = os.environ | {"CAUSERIE_INSTANCE": str(tmp_path), "BRAND_COLOR": "vert", "OLLAMA_HOSTS": ""}
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "routes"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "BRAND_COLOR must be a hex colour such as #0a6e4f (or empty), not 'vert'." in result.stderr


# -- the logo ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content", "mimetype"),
    [
        ("logo.png", PNG, "image/png"),
        ("logo.svg", SVG, "image/svg+xml"),
        ("Logo.JPG", b"\xff\xd8\xff", "image/jpeg"),
    ],
)
def test_the_logo_is_served_to_visitors_with_its_type(tmp_path, engine, name, content, mimetype):
    logo = tmp_path / name
    logo.write_bytes(content)
    client = branded_app(tmp_path, engine, BRAND_LOGO=str(logo)).test_client()
    response = client.get("/brand/logo")
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.data == content


def test_the_logo_is_shown_beside_the_name_with_the_name_as_its_text(tmp_path, engine):
    logo = tmp_path / "acme.svg"
    logo.write_bytes(SVG)
    client = branded_app(tmp_path, engine, BRAND_LOGO=str(logo), APP_NAME="Acme Chat").test_client()
    shown = '<img src="/brand/logo" alt="Acme Chat"'
    assert shown in client.get("/login").get_data(as_text=True)
    AuthActions(client).register()
    assert shown in client.get("/").get_data(as_text=True)
    assert shown in client.get("/account/password").get_data(as_text=True)


def test_without_a_logo_none_is_shown_and_its_address_answers_404(client):
    assert client.get("/brand/logo").status_code == 404
    assert "/brand/logo" not in client.get("/login").get_data(as_text=True)


def test_a_missing_logo_file_refuses_to_start_naming_the_variable(tmp_path, engine):
    missing = tmp_path / "nowhere" / "logo.png"
    with pytest.raises(
        BrandConfigurationError, match="BRAND_LOGO names a file that does not exist"
    ) as refused:
        branded_app(tmp_path, engine, BRAND_LOGO=str(missing))
    assert str(missing) in str(refused.value)


def test_a_logo_of_another_kind_refuses_to_start_naming_the_variable(tmp_path, engine):
    logo = tmp_path / "logo.gif"
    logo.write_bytes(b"GIF89a")
    with pytest.raises(
        BrandConfigurationError, match=r"BRAND_LOGO must be an image file \(.jpeg, .jpg, .png, .svg, .webp\)"
    ):
        branded_app(tmp_path, engine, BRAND_LOGO=str(logo))
