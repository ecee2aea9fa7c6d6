"""The optional gate in front of every page: a shared password and/or Streamlit's OIDC login.

Both are configured in the ``[auth]`` section of ``.streamlit/secrets.toml`` (see
``.streamlit/secrets.toml.example`` and docs/dashboard.md); without a secrets file, or without
the section, the dashboard is open. The gate runs before anything touches the database, so a
visitor who has not passed it sees the login form and nothing else.

- ``password = "..."``: a shared password, compared with ``hmac.compare_digest``. Passing it
  unlocks the browser session (a reload or a new tab asks again).
- ``redirect_uri`` + ``cookie_secret`` + a provider (``client_id``... in ``[auth]`` or in
  ``[auth.<name>]``): Streamlit's OIDC login (``st.login``). ``allowed_emails`` and
  ``allowed_domains`` narrow who may in; with neither, every account of the provider may.

With both configured, an operator logs in with OIDC and then gives the password.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import streamlit as st

log = logging.getLogger("stratlog.auth")

K_PASSWORD = "auth_password"
K_UNLOCKED = "stratlog.unlocked"
K_FAILED = "stratlog.auth_failed"
#: Seconds a wrong password costs (slows guessing; the form says nothing else).
WRONG_PASSWORD_DELAY_S = 1.0


@dataclass(frozen=True)
class GateConfig:
    """What the ``[auth]`` section asks for."""

    password: str | None = None
    oidc: bool = False
    #: OIDC providers to offer: ``None`` is the one configured directly in ``[auth]``.
    providers: tuple[str | None, ...] = ()
    allowed_emails: frozenset[str] = field(default_factory=frozenset)
    allowed_domains: frozenset[str] = field(default_factory=frozenset)
    #: A secrets file exists but cannot be read, or ``[auth]`` is malformed: stay locked.
    broken: str | None = None

    @property
    def active(self) -> bool:
        """True when some gate is configured."""
        return bool(self.password or self.oidc or self.broken)


def _secrets_file_exists() -> bool:
    paths = st.get_option("secrets.files") or []
    return any(os.path.exists(str(path)) for path in paths)


def _auth_section() -> Mapping[str, Any] | None:
    """The ``[auth]`` section; ``None`` without one. Raises ``ValueError`` when unreadable."""
    try:
        section = st.secrets.get("auth")
    except FileNotFoundError as exc:  # no secrets file (or one that does not parse)
        if _secrets_file_exists():
            log.error("secrets.toml cannot be read: %s", type(exc).__name__)
            raise ValueError("the secrets file cannot be read") from None
        return None
    if section is not None and not isinstance(section, Mapping):
        raise ValueError("[auth] in the secrets is not a table")
    return section


def _lowered(section: Mapping[str, Any], key: str) -> frozenset[str]:
    values = section.get(key) or []
    if isinstance(values, str) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"[auth] {key} must be a list of strings")
    return frozenset(v.strip().lower().lstrip("@") for v in values if v.strip())


def _providers(section: Mapping[str, Any]) -> tuple[str | None, ...]:
    named = [k for k, v in section.items() if isinstance(v, Mapping) and "client_id" in v]
    default: list[str | None] = [None] if "client_id" in section else []
    return (*default, *sorted(named))


def read_config() -> GateConfig:
    """The gate the secrets ask for (no secrets file, no ``[auth]``: no gate)."""
    try:
        section = _auth_section()
        if not section:
            return GateConfig()
        password = section.get("password")
        if password is not None and (not isinstance(password, str) or not password):
            raise ValueError("[auth] password must be a non-empty string")
        oidc = "redirect_uri" in section
        providers = _providers(section) if oidc else ()
        if oidc and not providers:
            raise ValueError("[auth] has a redirect_uri but no provider (client_id)")
        return GateConfig(
            password=password,
            oidc=oidc,
            providers=providers,
            allowed_emails=_lowered(section, "allowed_emails"),
            allowed_domains=_lowered(section, "allowed_domains"),
        )
    except ValueError as exc:
        return GateConfig(broken=str(exc))


def email_allowed(email: str, config: GateConfig) -> bool:
    """True when the allow-lists admit this address (no lists: everyone)."""
    if not (config.allowed_emails or config.allowed_domains):
        return True
    address = email.strip().lower()
    domain = address.rpartition("@")[2]
    return address in config.allowed_emails or (bool(domain) and domain in config.allowed_domains)


def password_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of the typed password with the configured one."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _heading(text: str) -> None:
    st.title(":material/lock: stratlog", anchor=False)
    st.caption(text)


def _locked(message: str) -> NoReturn:
    _heading("Operator dashboard of the scoring engine's audit log.")
    st.error(message, icon=":material/lock:")
    st.stop()


def _check_password(expected: str) -> None:
    """Form callback: unlock on the right password; never keep what was typed."""
    given = str(st.session_state.get(K_PASSWORD) or "")
    st.session_state[K_PASSWORD] = ""
    if password_matches(given, expected):
        st.session_state[K_UNLOCKED] = True
        st.session_state.pop(K_FAILED, None)
        return
    time.sleep(WRONG_PASSWORD_DELAY_S)
    st.session_state[K_FAILED] = True


def _password_gate(expected: str) -> None:
    if st.session_state.get(K_UNLOCKED):
        return
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        _heading("This dashboard is protected. Enter the operators' shared password.")
        with st.form("unlock", border=True, enter_to_submit=True):
            st.text_input(
                "Password", key=K_PASSWORD, type="password", autocomplete="current-password"
            )
            st.form_submit_button(
                "Unlock", type="primary", on_click=_check_password, args=(expected,)
            )
        if st.session_state.pop(K_FAILED, False):
            st.error("Wrong password.", icon=":material/block:")
    st.stop()


def _login(provider: str | None) -> None:
    try:
        if provider is None:
            st.login()
        else:
            st.login(provider)
    except Exception as exc:  # e.g. Authlib missing or a bad provider section
        log.error("OIDC login failed to start: %s", type(exc).__name__)
        st.session_state[K_FAILED] = type(exc).__name__


def _oidc_gate(config: GateConfig) -> None:
    user = st.user
    if not user.get("is_logged_in", False):
        _, middle, _ = st.columns([1, 2, 1])
        with middle:
            _heading("Log in with your organisation's account to see the audit log.")
            for provider in config.providers:
                label = f"Log in with {provider}" if provider else "Log in"
                st.button(label, icon=":material/login:", key=f"login_{provider or 'default'}",
                          on_click=_login, args=(provider,), type="primary")  # fmt: skip
            failure = st.session_state.pop(K_FAILED, None)
            if failure:
                st.error(
                    "The login could not start: check the [auth] settings and that Authlib is "
                    "installed (pip install 'streamlit[auth]').",
                    icon=":material/error:",
                )
        st.stop()
    email = str(user.get("email") or "")
    if user.get("email_verified") is False or not email_allowed(email, config):
        _, middle, _ = st.columns([1, 2, 1])
        with middle:
            _heading("Operator dashboard of the scoring engine's audit log.")
            st.error("This account may not open the dashboard.", icon=":material/block:")
            st.text(email)  # shown literally: it comes from the identity provider
            st.button("Log out", icon=":material/logout:", on_click=st.logout)
        st.stop()


def gate() -> GateConfig:
    """Stop the run with a login form until the configured gate is passed."""
    config = read_config()
    if config.broken:
        _locked(
            "The dashboard is locked: its access settings in .streamlit/secrets.toml cannot be "
            "used. An administrator must fix them (see the server log)."
        )
    if config.oidc:
        _oidc_gate(config)
    if config.password:
        _password_gate(config.password)
    return config


def _lock() -> None:
    st.session_state.pop(K_UNLOCKED, None)


def account(config: GateConfig) -> None:
    """Who is signed in and the way out (sidebar), when a gate is on."""
    if not config.active:
        return
    if config.oidc:
        email = str(st.user.get("email") or "")
        st.caption("Signed in as")
        st.text(email)
        st.button("Log out", icon=":material/logout:", on_click=st.logout, width="stretch")
    elif config.password:
        st.button("Lock", icon=":material/lock:", on_click=_lock, width="stretch", key="lock")
