"""Streamlit glue shared by the pages: the backend, the signed-in session, role guards, audit.

Page files call these and read like a description of the page. State that
belongs to one person lives in `st.session_state` (one per browser session),
never in a cache shared across sessions; the only shared resource is the
connection pool, which hands out connections, not results.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

import psycopg
import streamlit as st

from paceline.dashboard import auth
from paceline.dashboard.auth import Identity, Session
from paceline.dashboard.backend import Backend, dsn_from_env, key_from_env, login_dsn_from_env
from paceline.store import access
from paceline.store.accounts import Role

_SESSION = "paceline_session"
_NOTICE = "paceline_notice"
_OIDC_REFUSED = "paceline_oidc_refused"


_OPEN: list[Backend] = []


@st.cache_resource(show_spinner=False)
def _backend(dsn: str, login_dsn: str, key_file: str) -> Backend:
    b = Backend(dsn, key_from_env(), login_dsn=login_dsn)
    _OPEN.append(b)
    return b


def open_backends() -> list[Backend]:
    """The pools this process opened (for tests, to close them)."""
    return list(_OPEN)


def backend() -> Backend:
    """The process-wide connection pool (connections only; no person's data is cached)."""
    return _backend(
        dsn_from_env(), login_dsn_from_env(), os.environ.get("PACELINE_IDENTITY_KEY_FILE", "")
    )


def now() -> datetime:
    """The current instant (UTC)."""
    return datetime.now(UTC)


def current() -> Identity | None:
    """Who is signed in to this browser session, ending the session after the idle timeout."""
    session: Session | None = st.session_state.get(_SESSION)
    if session is None:
        return None
    moment = now()
    timeout = auth.idle_timeout()
    if session.expired(moment, timeout):
        _end(
            session,
            f"You were signed out after {timeout.seconds // 60} minutes without activity.",
        )
        return None
    session.touch(moment)
    return session.identity


def signed_in() -> Identity | None:
    """Who is signed in: this browser session's login, or a single sign-on just completed."""
    return current() or _oidc_return()


def _oidc_return() -> Identity | None:
    """Map the identity provider's verified e-mail (`st.user`) to an account and sign it in.

    The account is found on the login role's connection, as a password is
    checked; the session that follows is the same as after a password login.
    A refusal is kept for this browser session (and shown on the login page)
    instead of being asked again at every rerun.
    """
    if auth.oidc_label() is None or not st.user.get("is_logged_in"):
        return None
    if _OIDC_REFUSED in st.session_state:
        return None
    moment = now()
    try:
        email = auth.verified_email(st.user.to_dict(), now=moment, max_age=auth.idle_timeout())
        with backend().login() as conn:
            who = auth.identity_for_email(conn, email, now=moment)
    except auth.LoginError as exc:
        st.session_state[_OIDC_REFUSED] = str(exc)
        return None
    sign_in(who, method="oidc")
    return who


def sign_in(who: Identity, *, method: str = "password") -> None:
    """Start a session for `who` (and record the login, and how it was made, in the audit log)."""
    st.session_state.clear()
    st.session_state[_SESSION] = Session(who, now(), method=method)
    if who.role in (Role.CLINICIAN, Role.PATIENT):
        with backend().person(who) as conn:
            audit(conn, who, page="login", action="login", detail={"method": method})


def sign_out() -> None:
    """End the session (and a single sign-on's identity cookie with it)."""
    _end(st.session_state.get(_SESSION), "You are signed out.")


def _end(session: Session | None, notice: str) -> None:
    st.session_state.clear()
    st.session_state[_NOTICE] = notice
    if session is not None and session.method == "oidc":
        # Without this Streamlit's identity cookie would sign the browser straight back
        # in; st.logout removes it and sends the browser to the provider's own logout.
        # Nothing may follow in this run: a rerun can drop the redirect it queued.
        st.logout()
        st.stop()


def login_page() -> None:
    """The sign-in form, and the single sign-on button when it is configured."""
    st.title("Paceline")
    st.caption("Graded activity and exposure, for clinicians and patients.")
    notice = st.session_state.pop(_NOTICE, None)
    if notice:
        st.info(notice)
    provider = auth.oidc_label()
    if provider is not None:
        _oidc_buttons(provider)
    with st.form("login", clear_on_submit=False):
        username = st.text_input("Username or e-mail", key="login_username")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    try:
        with backend().login() as conn:
            who = auth.authenticate(conn, username, password, now=now())
    except auth.LoginError as exc:
        st.error(str(exc))
        return
    sign_in(who)
    st.rerun()


def _oidc_buttons(provider: str) -> None:
    refused = st.session_state.get(_OIDC_REFUSED)
    if refused:
        st.error(refused)
    if st.button(f"Sign in with {provider}", key="oidc_login"):
        st.session_state.pop(_OIDC_REFUSED, None)
        st.login(auth.OIDC_PROVIDER)
        st.stop()  # the browser leaves for the provider; nothing else belongs in this run
    if (
        refused
        and st.user.get("is_logged_in")
        and st.button(f"Sign out of {provider}", key="oidc_logout")
    ):
        st.session_state.pop(_OIDC_REFUSED, None)
        st.logout()
        st.stop()
    st.caption("Or with your Paceline username and password:")


def sidebar(who: Identity) -> None:
    """Who is signed in, and the sign-out button (on the page itself for patients, on phones)."""
    if who.role is Role.PATIENT:
        return
    with st.sidebar:
        st.text(f"Signed in as {who.display_name} ({who.role.value})")
        sign_out_button()


def sign_out_button() -> None:
    """The sign-out button."""
    if st.button("Sign out", key="logout"):
        sign_out()
        st.rerun()


def require(*roles: Role) -> Identity:
    """The signed-in person if their role may see this page; otherwise stop the page."""
    who = current()
    if who is None:
        st.warning("Please sign in.")
        st.stop()
    if who.role not in roles:
        st.error("This page is not available to your account.")
        st.stop()
    return who


def deny(message: str) -> NoReturn:
    """Show why the page cannot be shown, and stop."""
    st.error(message)
    st.stop()


@contextmanager
def person(who: Identity) -> Iterator[psycopg.Connection[Any]]:
    """One transaction in `who`'s person session."""
    with backend().person(who) as conn:
        yield conn


@contextmanager
def admin(who: Identity) -> Iterator[psycopg.Connection[Any]]:
    """One transaction in `who`'s administrator session (accounts and audit log only)."""
    if who.role is not Role.ADMIN:
        deny("This page is not available to your account.")
    with backend().admin(who) as conn:
        yield conn


def audit(
    conn: psycopg.Connection[Any],
    who: Identity,
    *,
    page: str,
    action: str = "view",
    patient_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record who looked at or changed which patient's data, on which page."""
    if who.role is Role.PATIENT:
        patient_id = who.patient_id  # a patient's every row is about themself
    access.audit(
        conn,
        actor=who.actor,
        action=f"dashboard.{action}",
        obj=page,
        patient_id=patient_id,
        clinician_id=who.clinician_id,
        detail={"page": page, "account": who.username, **(detail or {})},
    )


def query_int(name: str) -> int | None:
    """An integer query parameter (None when absent or not a number)."""
    raw = st.query_params.get(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def chosen_patient() -> int:
    """The patient a clinician's page is about: the query's, else the one chosen last; or stop."""
    patient_id = query_int("patient") or st.session_state.get("patient_id")
    if patient_id is None:
        deny("Choose a patient on the caseload first.")
    st.session_state["patient_id"] = patient_id
    return int(patient_id)
