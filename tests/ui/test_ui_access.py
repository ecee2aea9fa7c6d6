"""The optional gate: a shared password and OIDC login; nothing from the database before it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from stratlog.ui import auth

OpenApp = Callable[..., AppTest]
PASSWORD = "correct horse battery staple"
OIDC = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-long-random-cookie-secret-for-the-test",
    "client_id": "stratlog-dashboard",
    "client_secret": "not-a-real-secret",
    "server_metadata_url": "https://login.example.com/.well-known/openid-configuration",
    "allowed_domains": ["example.com"],
}


@pytest.fixture(autouse=True)
def no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong password costs a second in production; not here."""
    monkeypatch.setattr(auth, "WRONG_PASSWORD_DELAY_S", 0.0)


def shows_data(at: AppTest) -> bool:
    """True when anything fetched from the log is on the screen (or was asked for)."""
    return bool(
        at.metric or at.dataframe or at.get("vega_lite_chart") or at.selectbox or at.error
    ) and not any("password" in e.value.lower() for e in at.error)


def unlock(at: AppTest, password: str) -> AppTest:
    """Type the password into the gate's form and submit it."""
    at.text_input(key=auth.K_PASSWORD).input(password)
    next(b for b in at.button if b.label == "Unlock").click()
    return at.run()


def test_without_secrets_there_is_no_gate(open_app: OpenApp, demo_url: str) -> None:
    at = open_app(demo_url, strategy="credit-limit")
    assert not at.exception and at.metric
    assert not at.text_input and not [b for b in at.button if b.label in ("Lock", "Log out")]


@pytest.mark.parametrize("page", [None, "pages/runbook.py", "pages/row.py", "pages/health.py"])
def test_every_page_shows_only_the_form_before_login(
    open_app: OpenApp, down_url: str, page: str | None
) -> None:
    # The database is down: any query before login would show "Cannot reach the database".
    at = open_app(
        down_url, page, secrets={"auth": {"password": PASSWORD}}, strategy="credit-limit", row=1
    )
    assert not at.exception and not at.error and not at.warning
    assert [t.label for t in at.text_input] == ["Password"]
    assert not shows_data(at) and not at.page_link and not at.code
    assert at.query_params["strategy"] == "credit-limit"  # the link survives the login


def test_wrong_password_says_so_and_shows_nothing(open_app: OpenApp, demo_url: str) -> None:
    at = open_app(demo_url, secrets={"auth": {"password": PASSWORD}}, strategy="kyc-depth")
    unlock(at, "correct horse")
    assert not at.exception
    assert [e.value for e in at.error] == ["Wrong password."]  # no hint of any kind
    assert not at.metric and not at.dataframe and not at.get("vega_lite_chart")
    assert at.text_input(key=auth.K_PASSWORD).value == ""  # what was typed is not kept


def test_right_password_unlocks_the_session_and_lock_locks_it(
    open_app: OpenApp, demo_url: str, window: dict[str, str]
) -> None:
    at = open_app(demo_url, secrets={"auth": {"password": PASSWORD}}, strategy="kyc-depth")
    unlock(at, PASSWORD)
    assert not at.exception and not at.error
    assert [t.value for t in at.title] == ["Overview"] and at.metric
    next(b for b in at.button if b.label == "Lock").click().run()
    assert not at.metric and at.text_input[0].label == "Password"
    unlock(at, PASSWORD)
    at.run()  # later runs of the same session stay unlocked
    assert at.metric and not at.text_input


def test_a_broken_auth_section_keeps_the_dashboard_locked(open_app: OpenApp, demo_url: str) -> None:
    at = open_app(demo_url, secrets={"auth": {"password": ""}})
    assert not at.exception and not at.metric and not at.text_input
    assert "locked" in at.error[0].value


def test_oidc_login_is_required_before_anything_is_shown(open_app: OpenApp, down_url: str) -> None:
    at = open_app(down_url, secrets={"auth": OIDC}, user={"is_logged_in": False})
    assert not at.exception and not at.error
    assert [b.label for b in at.button] == ["Log in"]
    assert not shows_data(at)


def test_an_allowed_account_gets_in(open_app: OpenApp, demo_url: str) -> None:
    user = {"is_logged_in": True, "email": "oncall@example.com", "email_verified": True}
    at = open_app(demo_url, secrets={"auth": OIDC}, user=user, strategy="kyc-depth")
    assert not at.exception and at.metric
    assert "oncall@example.com" in [t.value for t in at.text]
    assert any(b.label == "Log out" for b in at.button)


@pytest.mark.parametrize(
    "user",
    [
        {"is_logged_in": True, "email": "mallory@evil.test"},
        {"is_logged_in": True, "email": "oncall@example.com", "email_verified": False},
        {"is_logged_in": True},
    ],
)
def test_other_accounts_are_refused(open_app: OpenApp, down_url: str, user: dict[str, Any]) -> None:
    at = open_app(down_url, secrets={"auth": OIDC}, user=user)
    assert not at.exception and not at.metric
    assert "may not open the dashboard" in at.error[0].value


def test_oidc_and_password_together(open_app: OpenApp, demo_url: str) -> None:
    user = {"is_logged_in": True, "email": "oncall@example.com"}
    at = open_app(demo_url, secrets={"auth": {**OIDC, "password": PASSWORD}}, user=user)
    assert not at.metric and at.text_input[0].label == "Password"
    unlock(at, PASSWORD)
    assert at.metric


def test_config_reading() -> None:
    named = {"redirect_uri": "x", "okta": {"client_id": "a"}, "azure": {"client_id": "b"}}
    assert auth._providers(named) == ("azure", "okta")
    assert auth._providers({**named, "client_id": "c"}) == (None, "azure", "okta")
    config = auth.GateConfig(allowed_emails=frozenset({"a@b.c"}), allowed_domains=frozenset())
    assert auth.email_allowed("A@B.C ", config) and not auth.email_allowed("x@b.c", config)
    assert auth.email_allowed("anyone@anywhere", auth.GateConfig())
    assert auth.password_matches("pässword", "pässword")
    assert not auth.password_matches("pässword", "password")
