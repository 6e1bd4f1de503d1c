"""The directory settings are checked at start: a wrong one stops the app with its name."""

from __future__ import annotations

import pytest

from app import create_app
from app.directory.settings import DirectoryConfigurationError
from config import TestConfig

LDAP = {"LDAP_URL": "ldap://127.0.0.1:389", "LDAP_USER_BASE": "ou=people,dc=example,dc=com"}


def start_with(tmp_path, **settings):
    config = type("Config", (TestConfig,), {"DOCUMENTS_DIR": tmp_path / "documents", **settings})
    return create_app(config)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"LDAP_USER_BASE": "ou=people,dc=example,dc=com"}, "LDAP_URL"),
        ({"LDAP_URL": "ldap://127.0.0.1:389"}, "LDAP_USER_BASE"),
        ({**LDAP, "LDAP_URL": "https://dc1.example.com"}, "LDAP_URL"),
        ({**LDAP, "LDAP_URL": "ldaps://dc1.example.com", "LDAP_STARTTLS": True}, "LDAP_STARTTLS"),
        ({**LDAP, "LDAP_BIND_DN": "cn=causerie,dc=example,dc=com"}, "LDAP_BIND_PASSWORD"),
        ({**LDAP, "LDAP_USER_FILTER": "(uid=alice)"}, "LDAP_USER_FILTER"),
        ({**LDAP, "LDAP_USER_FILTER": "(uid={user})"}, "LDAP_USER_FILTER"),
        ({**LDAP, "LDAP_GROUP_FILTER": "member={dn}"}, "LDAP_GROUP_FILTER"),
        ({**LDAP, "LDAP_ID_ATTRIBUTE": "entry UUID"}, "LDAP_ID_ATTRIBUTE"),
        ({**LDAP, "LDAP_TIMEOUT_SECONDS": 0}, "LDAP_TIMEOUT_SECONDS"),
        ({**LDAP, "LDAP_CA_FILE": "/nonexistent/ca.pem"}, "LDAP_CA_FILE"),
    ],
)
def test_a_wrong_directory_setting_stops_the_start_naming_the_variable(tmp_path, settings, named):
    with pytest.raises(DirectoryConfigurationError, match=named):
        start_with(tmp_path, **settings)


def test_a_ca_file_without_a_certificate_stops_the_start_naming_the_variable(tmp_path):
    not_a_certificate = tmp_path / "ca.pem"
    not_a_certificate.write_text("not a certificate\n")
    with pytest.raises(DirectoryConfigurationError, match="LDAP_CA_FILE.*no PEM certificate"):
        start_with(tmp_path, **LDAP, LDAP_CA_FILE=str(not_a_certificate))


def test_a_complete_ldap_setting_starts(tmp_path):
    service = {"LDAP_BIND_DN": "cn=causerie,dc=example,dc=com", "LDAP_BIND_PASSWORD": "secret"}
    app = start_with(tmp_path, **LDAP, **service)
    assert app.config["LDAP_URL"] == "ldap://127.0.0.1:389"
