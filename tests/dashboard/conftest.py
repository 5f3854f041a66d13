"""A small clinic for the dashboard tests: two care teams, simulated weeks, logins."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from streamlit.testing.v1 import AppTest

from paceline.dashboard.auth import hash_password
from paceline.pacing import intake, ladder
from paceline.pacing.replay import play
from paceline.pacing.simulate import Persona, SimPatient
from paceline.store import accounts, registry, roles
from paceline.store.accounts import Role
from paceline.store.connection import connect
from paceline.store.testing import TEST_IDENTITY_KEY, service_dsn

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboard" / "streamlit_app.py"
PASSWORD = "a long clinic passphrase"  # noqa: S105 - test logins
SCRIPT_NOTE = "<script>alert('x')</script> knee sore after gardening"
DAYS = 42


@dataclass(frozen=True)
class Clinic:
    """Who is who in the test clinic."""

    dsn: str
    clinician_a: int
    clinician_b: int
    team_a: tuple[int, ...]
    team_b: tuple[int, ...]
    patient_login: str
    patient_id: int


def _person_accounts(conn: psycopg.Connection[Any], clinic: dict[str, Any]) -> None:
    pw = hash_password(PASSWORD)
    accounts.create_account(
        conn, username="dr.a", role=Role.CLINICIAN, clinician_id=clinic["a"], password_hash=pw
    )
    accounts.create_account(
        conn, username="dr.b", role=Role.CLINICIAN, clinician_id=clinic["b"], password_hash=pw
    )
    accounts.create_account(
        conn, username="pat.a", role=Role.PATIENT, patient_id=clinic["team_a"][0], password_hash=pw
    )
    accounts.create_account(conn, username="admin", role=Role.ADMIN, password_hash=pw)


def build_clinic(dsn: str) -> Clinic:
    """Two clinicians, four simulated patients played through six weeks, and their logins."""
    today = datetime.now(UTC).date()
    start = today - timedelta(days=DAYS)
    with connect(dsn) as conn:
        a = registry.create_clinician(conn, username="lee", display_name="Dr Lee")
        b = registry.create_clinician(conn, username="okafor", display_name="Dr Okafor")
        team_a: list[int] = []
        team_b: list[int] = []
        personas = [
            ("A-1", "Alex Boom", Persona.BOOM_BUST, a, team_a),
            ("A-2", "Avery Avoid", Persona.AVOIDER, a, team_a),
            ("A-3", "Sam Steady", Persona.STEADY, a, team_a),
            ("B-1", "Bea Other", Persona.STEADY, b, team_b),
        ]
        for i, (ref, name, persona, clinician, team) in enumerate(personas):
            p = registry.create_patient(
                conn,
                external_ref=ref,
                display_name=name,
                enrolled_at=datetime.combine(start, datetime.min.time(), UTC),
            )
            registry.assign_care_team(conn, clinician_id=clinician, patient_id=p.patient_id)
            conn.commit()
            play(
                conn,
                p.patient_id,
                SimPatient(persona, seed=i),
                start=start,
                days=DAYS,
                skip_exposures_every=5 if persona is Persona.AVOIDER else None,
            )
            team.append(p.patient_id)
        first = team_a[0]
        item = ladder.add_item(conn, first, activity="lifting a shopping bag", fear_rating=60)
        session = ladder.plan_session(
            conn, first, item.item_id, planned_at=datetime.now(UTC) - timedelta(days=2)
        )
        ladder.record_session(
            conn,
            first,
            session.session_id,
            done=True,
            fear_before=60,
            fear_after=35,
            expected_harm=70,
            actual_harm=20,
        )
        intake.submit_diary(
            conn,
            first,
            reported_at=datetime.now(UTC) - timedelta(hours=3),
            pain_now=5,
            fatigue=4,
            fear_of_movement=3,
            note=SCRIPT_NOTE,
        )
        conn.commit()
        _person_accounts(conn, {"a": a, "b": b, "team_a": team_a})
        conn.commit()
    return Clinic(dsn, a, b, tuple(team_a), tuple(team_b), "pat.a", team_a[0])


@pytest.fixture(scope="module")
def clinic(db_dsn: str) -> Iterator[Clinic]:
    """The module's database holding the test clinic."""
    yield build_clinic(db_dsn)


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test databases' identity key, in a 0600 file as the dashboard reads it."""
    path = tmp_path_factory.mktemp("secrets") / "identity.key"
    TEST_IDENTITY_KEY.save(path)
    return path


@pytest.fixture
def app_env(
    db_dsn: str, dashboard_dsn: str, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment `paceline dashboard` gives the app: its two roles and the key."""
    monkeypatch.setenv("PACELINE_DASHBOARD_DSN", dashboard_dsn)
    monkeypatch.setenv("PACELINE_DASHBOARD_LOGIN_DSN", service_dsn(db_dsn, roles.LOGIN))
    monkeypatch.setenv("PACELINE_IDENTITY_KEY_FILE", str(key_file))


@pytest.fixture
def app(clinic: Clinic, app_env: None) -> Iterator[AppTest]:
    """The dashboard app, not yet run, connected as the dashboard role."""
    yield AppTest.from_file(str(APP), default_timeout=60)


@pytest.fixture(scope="module", autouse=True)
def _close_pools() -> Iterator[None]:
    yield
    import streamlit as st

    from paceline.dashboard import ui

    for backend in list(ui.open_backends()):
        backend.close()
    st.cache_resource.clear()


def login(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    """Run the app, sign in through the form, and return it on the first page."""
    at.run()
    at.text_input(key="login_username").input(username)
    at.text_input(key="login_password").input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    return at.run()
