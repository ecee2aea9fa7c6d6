"""The optional gate in front of every page: a shared password and/or Streamlit's OIDC login.

Both are configured in the ``[auth]`` section of ``.streamlit/secrets.toml`` (see
``.streamlit/secrets.toml.example`` and docs/dashboard.md); without a secrets file, or without
the section, the dashboard is open. The gate runs before anything touches the database, so a
visitor who has not passed it sees the login form and nothing else.

- ``password = "..."``: a shared password, compared with ``hmac.compare_digest``. Passing it
  unlocks the browser session (a reload or a new tab asks again). Wrong passwords are counted
  across every session of the process (:class:`LoginThrottle`): ``MAX_FAILURES`` in a row lock
  the form for everyone for a while. The example's password is refused outright.
- ``redirect_uri`` + ``cookie_secret`` + a provider (``client_id``... in ``[auth]`` or in
  ``[auth.<name>]``): Streamlit's OIDC login (``st.login``). ``allowed_emails`` and
  ``allowed_domains`` narrow who may in; with neither, every account of the provider may.

With both configured, an operator logs in with OIDC and then gives the password. OIDC accounts
get in only when the provider vouches for the address (``email_verified`` is true).
"""

from __future__ import annotations

import enum
import hmac
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import streamlit as st

log = logging.getLogger("stratlog.auth")

K_PASSWORD = "auth_password"
K_UNLOCKED = "stratlog.unlocked"
K_FAILED = "stratlog.auth_failed"
#: Seconds a wrong password costs its session (slows guessing; the form says nothing else).
WRONG_PASSWORD_DELAY_S = 1.0
#: Wrong passwords in a row, from any session of the process, that lock the form for everyone:
#: a sleep per session alone does not stop guessing from many sessions at once.
MAX_FAILURES = 5
#: Failures are "in a row" while none comes later than this after the previous failure or the
#: end of the last lockout; a quiet spell this long forgets them and the doubling below.
FAILURE_WINDOW_S = 15 * 60.0
#: The first lockout; each further one without a right password between doubles, up to the cap.
LOCKOUT_S = 60.0
LOCKOUT_MAX_S = 30 * 60.0
#: The password of .streamlit/secrets.toml.example (and of older docs): a dashboard copied
#: with it would be protected by a published password, so it refuses to start instead.
EXAMPLE_PASSWORDS = ("replace-with-a-long-random-passphrase", "a-long-random-passphrase")
EXAMPLE_PASSWORD_REFUSED = (
    "The dashboard does not start: [auth] password in .streamlit/secrets.toml is the example "
    "password, which is published. An administrator must set a real password there (a long "
    "random passphrase) and restart the dashboard."
)
UNVERIFIED_EMAIL = (
    "This account may not open the dashboard: the identity provider did not confirm that its "
    "e-mail address is verified (email_verified)."
)


class Verdict(enum.Enum):
    """What a password attempt came to."""

    UNLOCKED = "unlocked"
    WRONG = "wrong"
    #: Locked out: this attempt started the lockout, or came during one and was not compared.
    LOCKED = "locked"


@dataclass
class LoginThrottle:
    """Wrong passwords of every session in this process (sessions run in threads: one lock)."""

    clock: Callable[[], float] = time.monotonic
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _failures: int = 0
    _lockouts: int = 0
    _quiet_since: float = -math.inf
    _locked_until: float = -math.inf

    def remaining(self) -> float:
        """Seconds the lockout still lasts (0 when the form is open)."""
        with self._lock:
            return max(0.0, self._locked_until - self.clock())

    def verify(self, given: str, expected: str) -> Verdict:
        """Compare a typed password unless locked out, and count the outcome for everyone."""
        with self._lock:
            now = self.clock()
            if now < self._locked_until:
                return Verdict.LOCKED
            if password_matches(given, expected):
                self._failures = self._lockouts = 0
                return Verdict.UNLOCKED
            return self._failed(now)

    def _failed(self, now: float) -> Verdict:
        if now - self._quiet_since > FAILURE_WINDOW_S:
            self._failures = self._lockouts = 0
        self._failures += 1
        self._quiet_since = now
        failures = self._failures
        if failures < MAX_FAILURES:
            log.warning("wrong password at the dashboard gate (%d in a row)", failures)
            return Verdict.WRONG
        seconds = min(LOCKOUT_S * 2**self._lockouts, LOCKOUT_MAX_S)
        self._failures, self._lockouts = 0, self._lockouts + 1
        self._locked_until = self._quiet_since = now + seconds
        log.warning(
            "wrong password at the dashboard gate (%d in a row): locked for %.0f s",
            failures,
            seconds,
        )
        return Verdict.LOCKED


#: The one record of the process; tests put in one with their own clock.
THROTTLE = LoginThrottle()


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


def is_example_password(password: str) -> bool:
    """True when ``password`` is the published example's (compared in constant time)."""
    # a list, not a generator: every comparison runs, whichever matches
    return any([password_matches(password, example) for example in EXAMPLE_PASSWORDS])


def _heading(text: str) -> None:
    st.title(":material/lock: stratlog", anchor=False)
    st.caption(text)


def _locked(message: str) -> NoReturn:
    _heading("Operator dashboard of the scoring engine's audit log.")
    st.error(message, icon=":material/lock:")
    st.stop()


def _check_password(expected: str) -> None:
    """Form callback: unlock on the right password; never keep (or log) what was typed."""
    given = str(st.session_state.get(K_PASSWORD) or "")
    st.session_state[K_PASSWORD] = ""
    verdict = THROTTLE.verify(given, expected)
    if verdict is Verdict.UNLOCKED:
        st.session_state[K_UNLOCKED] = True
        st.session_state.pop(K_FAILED, None)
        return
    if verdict is Verdict.WRONG:
        time.sleep(WRONG_PASSWORD_DELAY_S)
        st.session_state[K_FAILED] = True


def _lockout_message(seconds: float) -> str:
    return (
        "Too many wrong passwords: the dashboard is locked for everyone for a while. "
        f"Try again in {math.ceil(seconds)} s."
    )


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
        failed = st.session_state.pop(K_FAILED, False)
        locked_for = THROTTLE.remaining()
        if locked_for > 0:
            st.error(_lockout_message(locked_for), icon=":material/timer:")
        elif failed:
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
    # exactly True: a missing claim, None or a string "true" is no promise from the provider
    if user.get("email_verified") is not True:
        _refused(UNVERIFIED_EMAIL, email)
    if not email_allowed(email, config):
        _refused("This account may not open the dashboard.", email)


def _refused(message: str, email: str) -> NoReturn:
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        _heading("Operator dashboard of the scoring engine's audit log.")
        st.error(message, icon=":material/block:")
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
    if config.password and is_example_password(config.password):
        log.error("[auth] password is the example's: the dashboard does not start")
        _locked(EXAMPLE_PASSWORD_REFUSED)
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
