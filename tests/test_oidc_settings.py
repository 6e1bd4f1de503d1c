"""The OIDC settings are checked at start: a wrong one stops the app, naming the variable."""

from __future__ import annotations

import pytest

from app import create_app
from app.directory.settings import DirectoryConfigurationError
from config import TestConfig

OIDC = {
    "OIDC_ISSUER": "https://sso.example.com/realms/staff",
    "OIDC_CLIENT_ID": "causerie",
    "OIDC_CLIENT_SECRET": "s3cret",
}


def start_with(tmp_path, **settings):
    config = type("Config", (TestConfig,), {"DOCUMENTS_DIR": tmp_path / "documents", **settings})
    return create_app(config)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"OIDC_CLIENT_ID": "causerie"}, "OIDC_ISSUER"),
        ({"OIDC_CA_FILE": "/etc/ssl/ca.pem"}, "OIDC_ISSUER"),
        ({**OIDC, "OIDC_ISSUER": "http://sso.example.com"}, "OIDC_ISSUER"),
        ({**OIDC, "OIDC_ISSUER": "sso.example.com"}, "OIDC_ISSUER"),
        ({**OIDC, "OIDC_CLIENT_ID": ""}, "OIDC_CLIENT_ID"),
        ({**OIDC, "OIDC_CLIENT_SECRET": ""}, "OIDC_CLIENT_SECRET"),
        ({**OIDC, "OIDC_SCOPES": "profile email"}, "OIDC_SCOPES"),
        ({**OIDC, "OIDC_GROUPS_CLAIM": "my groups"}, "OIDC_GROUPS_CLAIM"),
        ({**OIDC, "OIDC_USERNAME_CLAIM": ""}, "OIDC_USERNAME_CLAIM"),
        ({**OIDC, "OIDC_REDIRECT_URI": "https://causerie.example.com/login"}, "OIDC_REDIRECT_URI"),
        ({**OIDC, "OIDC_TIMEOUT_SECONDS": 0}, "OIDC_TIMEOUT_SECONDS"),
        ({**OIDC, "OIDC_CA_FILE": "/nonexistent/ca.pem"}, "OIDC_CA_FILE"),
    ],
)
def test_a_wrong_oidc_setting_stops_the_start_naming_the_variable(tmp_path, settings, named):
    with pytest.raises(DirectoryConfigurationError, match=named):
        start_with(tmp_path, **settings)


def test_an_oidc_ca_file_without_a_certificate_stops_the_start_naming_the_variable(tmp_path):
    not_a_certificate = tmp_path / "ca.pem"
    not_a_certificate.write_text("not a certificate\n")
    with pytest.raises(DirectoryConfigurationError, match="OIDC_CA_FILE.*no PEM certificate"):
        start_with(tmp_path, **OIDC, OIDC_CA_FILE=str(not_a_certificate))


def test_a_complete_oidc_setting_starts(tmp_path):
    app = start_with(tmp_path, **OIDC, OIDC_REDIRECT_URI="https://causerie.example.com/auth/oidc/callback")
    assert app.config["OIDC_ISSUER"] == "https://sso.example.com/realms/staff"
