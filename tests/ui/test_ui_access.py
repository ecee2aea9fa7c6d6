"""The optional gate: a shared password and OIDC login; nothing from the database before it."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from stratlog.ui import auth

OpenApp = Callable[..., AppTest]
PASSWORD = "correct horse battery staple"
EXAMPLE = Path(__file__).resolve().parents[2] / ".streamlit" / "secrets.toml.example"
OIDC = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-long-random-cookie-secret-for-the-test",
    "client_id": "stratlog-dashboard",
    "client_secret": "not-a-real-secret",
    "server_metadata_url": "https://login.example.com/.well-known/openid-configuration",
    "allowed_domains": ["example.com"],
}


class Clock:
    """A clock the test moves by hand (seconds, like ``time.monotonic``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def password_box(at: AppTest) -> list[Any]:
    """The gate's password inputs (the sidebar's request search is another text input)."""
    return [t for t in at.text_input if t.label == "Password"]


@pytest.fixture(autouse=True)
def no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong password costs a second in production; not here."""
    monkeypatch.setattr(auth, "WRONG_PASSWORD_DELAY_S", 0.0)


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A fresh process-wide record of failed logins in every test, on a hand-moved clock."""
    fake = Clock()
    monkeypatch.setattr(auth, "THROTTLE", auth.LoginThrottle(clock=fake))
    return fake


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
    assert not password_box(at) and not [b for b in at.button if b.label in ("Lock", "Log out")]


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
    assert at.metric and not password_box(at)


def test_a_broken_auth_section_keeps_the_dashboard_locked(open_app: OpenApp, demo_url: str) -> None:
    at = open_app(demo_url, secrets={"auth": {"password": ""}})
    assert not at.exception and not at.metric and not password_box(at)
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
    user = {"is_logged_in": True, "email": "oncall@example.com", "email_verified": True}
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


def locked_out(at: AppTest) -> str:
    """The lockout message on the screen ("" when there is none)."""
    return next((e.value for e in at.error if "Too many wrong passwords" in e.value), "")


def test_failed_logins_in_one_session_lock_out_every_session(
    open_app: OpenApp, demo_url: str, clock: Clock
) -> None:
    secrets = {"auth": {"password": PASSWORD}}
    other = open_app(demo_url, secrets=secrets, strategy="kyc-depth")  # its form is open
    at = open_app(demo_url, secrets=secrets, strategy="kyc-depth")
    for _ in range(auth.MAX_FAILURES - 1):
        assert [e.value for e in unlock(at, "guess").error] == ["Wrong password."]
    assert "Try again in 60 s" in locked_out(unlock(at, "guess"))
    clock.now += 15
    unlock(other, PASSWORD)  # the right password, in another session, while locked out
    assert not other.exception and not other.metric
    assert "Try again in 45 s" in locked_out(other)
    fresh = open_app(demo_url, secrets=secrets)  # a new session sees the lockout at once
    assert "Try again in 45 s" in locked_out(fresh) and not shows_data(fresh)
    clock.now += 45
    assert unlock(other, PASSWORD).metric and not locked_out(other)


def test_the_lockout_doubles_up_to_a_cap_and_a_success_resets_it(clock: Clock) -> None:
    throttle = auth.THROTTLE

    def fail(times: int) -> auth.Verdict:
        verdicts = [throttle.verify("guess", PASSWORD) for _ in range(times)]
        return verdicts[-1]

    assert fail(auth.MAX_FAILURES - 1) is auth.Verdict.WRONG and throttle.remaining() == 0
    assert fail(1) is auth.Verdict.LOCKED and throttle.remaining() == auth.LOCKOUT_S
    assert throttle.verify(PASSWORD, PASSWORD) is auth.Verdict.LOCKED  # not even compared
    lockouts = []
    for _ in range(8):
        clock.now += throttle.remaining()
        assert fail(auth.MAX_FAILURES) is auth.Verdict.LOCKED
        lockouts.append(throttle.remaining())
    assert lockouts[:3] == [2 * auth.LOCKOUT_S, 4 * auth.LOCKOUT_S, 8 * auth.LOCKOUT_S]
    assert max(lockouts) == lockouts[-1] == auth.LOCKOUT_MAX_S
    clock.now += throttle.remaining()
    assert throttle.verify(PASSWORD, PASSWORD) is auth.Verdict.UNLOCKED
    assert fail(auth.MAX_FAILURES) is auth.Verdict.LOCKED  # back to the first, short lockout
    assert throttle.remaining() == auth.LOCKOUT_S


def test_failures_far_apart_are_not_in_a_row(clock: Clock) -> None:
    for _ in range(3 * auth.MAX_FAILURES):
        assert auth.THROTTLE.verify("guess", PASSWORD) is auth.Verdict.WRONG
        clock.now += auth.FAILURE_WINDOW_S + 1


def test_failed_logins_are_logged_without_what_was_typed(
    open_app: OpenApp, demo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    typed = "Tr0ub4dor&3-almost-right"  # 24 characters
    caplog.set_level(logging.INFO, logger="stratlog")
    at = open_app(demo_url, secrets={"auth": {"password": PASSWORD}})
    for _ in range(auth.MAX_FAILURES):
        unlock(at, typed)
    records = [r for r in caplog.records if r.name == "stratlog.auth"]
    messages = [r.getMessage() for r in records]
    assert sum("wrong password" in m for m in messages) == auth.MAX_FAILURES
    assert any("locked" in m and "60 s" in m for m in messages)
    assert all(r.levelno >= logging.WARNING for r in records)
    for record in records:
        shown = f"{record.getMessage()} {record.args!r}"
        assert typed not in shown and typed[:6] not in shown and "24" not in shown


def example_password() -> str:
    """The password of .streamlit/secrets.toml.example."""
    return str(tomllib.loads(EXAMPLE.read_text())["auth"]["password"])


@pytest.mark.parametrize("page", [None, "pages/runbook.py", "pages/health.py"])
def test_the_example_password_keeps_the_dashboard_from_starting(
    open_app: OpenApp, down_url: str, page: str | None
) -> None:
    at = open_app(down_url, page, secrets={"auth": {"password": example_password()}}, row=1)
    assert not at.exception and not password_box(at) and not at.button
    assert [e.value for e in at.error] == [auth.EXAMPLE_PASSWORD_REFUSED]
    assert "example password" in at.error[0].value and "set a real" in at.error[0].value
    assert not at.metric and not at.dataframe and not at.page_link and not at.code


def test_the_example_password_is_refused_with_oidc_too(open_app: OpenApp, down_url: str) -> None:
    user = {"is_logged_in": True, "email": "oncall@example.com", "email_verified": True}
    secrets = {"auth": {**OIDC, "password": example_password()}}
    at = open_app(down_url, secrets=secrets, user=user)
    assert [e.value for e in at.error] == [auth.EXAMPLE_PASSWORD_REFUSED] and not password_box(at)


@pytest.mark.parametrize("claim", [{}, {"email_verified": None}, {"email_verified": "true"},
                                   {"email_verified": 1}])  # fmt: skip
def test_an_account_is_let_in_only_with_email_verified_true(
    open_app: OpenApp, demo_url: str, claim: dict[str, Any]
) -> None:
    user = {"is_logged_in": True, "email": "oncall@example.com", **claim}
    at = open_app(demo_url, secrets={"auth": OIDC}, user=user, strategy="kyc-depth")
    assert not at.exception and not at.metric and not at.dataframe
    assert [e.value for e in at.error] == [auth.UNVERIFIED_EMAIL]
    assert "may not open the dashboard" in at.error[0].value and "verified" in at.error[0].value
    assert any(b.label == "Log out" for b in at.button)
