"""The login page with and without single sign-on, and an idle single sign-on session (AppTest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from paceline.dashboard.auth import Identity, Session
from paceline.store.accounts import Role
from tests.dashboard.conftest import Clinic, login

LABEL = "Sign in with Clinic login"
AUTH = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "x" * 40,
    "paceline": {
        "client_id": "paceline-dashboard",
        "client_secret": "unused here",
        "server_metadata_url": "http://127.0.0.1:1/.well-known/openid-configuration",
    },
}


def _labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def test_without_single_sign_on_the_page_has_the_password_form_only(app: AppTest) -> None:
    at = app.run()
    assert not [label for label in _labels(at) if label.startswith("Sign in with")]
    assert at.text_input(key="login_username") is not None


def test_with_single_sign_on_the_page_offers_it_beside_the_password_form(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PACELINE_DASHBOARD_OIDC", "Clinic login")
    app.secrets["auth"] = AUTH
    at = app.run()
    assert LABEL in _labels(at)
    assert at.text_input(key="login_username") is not None
    # The password form still signs in.
    at = login(app, "dr.a")
    assert "Caseload" in [t.value for t in at.title]


@pytest.mark.parametrize("method", ["password", "oidc"])
def test_an_idle_session_ends_and_a_single_sign_on_also_ends_streamlits_identity(
    app: AppTest, clinic: Clinic, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    monkeypatch.setenv("PACELINE_DASHBOARD_OIDC", "Clinic login")
    app.secrets["auth"] = AUTH
    who = Identity(1, "dr.a", Role.CLINICIAN, "Dr Lee", clinician_id=clinic.clinician_a)
    idle = datetime.now(UTC) - timedelta(minutes=31)
    app.session_state["paceline_session"] = Session(who, idle, method=method)
    at = app.run()
    assert "paceline_session" not in at.session_state
    assert "Caseload" not in [t.value for t in at.title]
    if method == "password":
        assert [i.value for i in at.info] == [
            "You were signed out after 30 minutes without activity."
        ]
    else:
        # st.logout() has sent the browser to Streamlit's logout route; the run stops there.
        assert list(at.info) == [] and LABEL not in _labels(at)
