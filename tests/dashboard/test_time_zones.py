"""Instants on the dashboard are the patient's wall time with the zone's label.

The module's database has its TimeZone set to Asia/Tokyo, so psycopg hands
every timestamptz over in Tokyo time: text formatted from the value as it
comes would show Tokyo's wall time for a Los Angeles patient.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql
from streamlit.testing.v1 import AppTest

from paceline.dashboard import auth, caseload
from paceline.dashboard.auth import hash_password
from paceline.dashboard.patient_view import Range
from paceline.dashboard.times import shown_at
from paceline.pacing import intake
from paceline.pacing.overview import CaseloadEntry
from paceline.store import accounts, registry
from paceline.store.accounts import Role
from paceline.store.connection import connect
from tests.dashboard.conftest import APP, PASSWORD, login

SERVER_ZONE = "Asia/Tokyo"
#: 19:10 PST on 29 November for the patient; 12:10 on the 30th in Tokyo.
EVENING = datetime(2026, 11, 30, 3, 10, tzinfo=UTC)
#: 1 November 2026 in Los Angeles: 01:30 PDT, then the clocks go back and 01:30 PST.
BEFORE_FALL_BACK = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)
AFTER_FALL_BACK = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
NOTE = "stiff after the drive home"
#: The three alerts, newest first, as the patient lived them: the same wall time twice
#: on 1 November, told apart by the zone's label.
SHOWN = ["2026-11-29 19:10 PST", "2026-11-01 01:30 PST", "2026-11-01 01:30 PDT"]


def _alert(conn: psycopg.Connection[Any], patient_id: int, rule: str, at: datetime) -> int:
    row = conn.execute(
        "INSERT INTO alert (patient_id, rule_id, window_start, severity, status, summary,"
        " opened_at, created_at) VALUES (%s, %s, %s, 'warning', 'open', 'x', %s, %s)"
        " RETURNING alert_id",
        (patient_id, rule, at, at, at),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def la_patient(db_dsn: str) -> int:
    """A Los Angeles patient with three alerts, a diary note and a dead letter, in Tokyo."""
    with connect(db_dsn, autocommit=True) as c:
        c.execute(
            sql.SQL("ALTER DATABASE {} SET timezone = {}").format(
                sql.Identifier(c.info.dbname), sql.Literal(SERVER_ZONE)
            )
        )
    with connect(db_dsn) as conn:
        clinician = registry.create_clinician(conn, username="ito", display_name="Dr Ito")
        p = registry.create_patient(
            conn,
            external_ref="LA-1",
            display_name="Lou Angel",
            timezone="America/Los_Angeles",
            enrolled_at=datetime(2026, 10, 1, 8, tzinfo=UTC),
        )
        registry.assign_care_team(conn, clinician_id=clinician, patient_id=p.patient_id)
        _alert(conn, p.patient_id, "boom.over_quota", EVENING)
        _alert(conn, p.patient_id, "bust.under_quota", BEFORE_FALL_BACK)
        dead = _alert(conn, p.patient_id, "flare.risk_high", AFTER_FALL_BACK)
        conn.execute(
            "INSERT INTO alert_delivery (alert_id, patient_id, alert_ids, channel, recipient,"
            " status, message_key, attempts, last_attempt_at, last_error) VALUES (%s, %s,"
            " ARRAY[%s]::bigint[], 'webhook', 'endpoint:default', 'dead', gen_random_uuid(), 8,"
            " %s, 'HTTP 503')",
            (dead, p.patient_id, dead, BEFORE_FALL_BACK),
        )
        intake.submit_diary(conn, p.patient_id, reported_at=EVENING, pain_now=4, note=NOTE)
        conn.execute(
            "INSERT INTO progress_note (patient_id, clinician_id, written_at, body)"
            " VALUES (%s, %s, %s, 'Phoned after the flare.')",
            (p.patient_id, clinician, AFTER_FALL_BACK),
        )
        conn.execute(
            "INSERT INTO progression_pause (patient_id, started_at, reason)"
            " VALUES (%s, %s, 'pain at night on the screen')",
            (p.patient_id, EVENING),
        )
        accounts.create_account(
            conn,
            username="dr.ito",
            role=Role.CLINICIAN,
            clinician_id=clinician,
            password_hash=hash_password(PASSWORD),
        )
        conn.commit()
    return p.patient_id


@pytest.fixture
def app(la_patient: int, app_env: None) -> Iterator[AppTest]:
    """The dashboard app, not yet run."""
    yield AppTest.from_file(str(APP), default_timeout=60)


def _open(app: AppTest, page: str, patient_id: int) -> AppTest:
    at = login(app, "dr.ito")
    at.switch_page(f"app_pages/{page}.py")
    at.query_params["patient"] = str(patient_id)
    return at.run()


def test_the_dashboards_sessions_run_in_the_servers_zone(
    la_patient: int, dashboard_dsn: str
) -> None:
    # What the tests below stand on: a value formatted as psycopg returns it is Tokyo time.
    with connect(dashboard_dsn) as c:
        assert c.execute("SHOW timezone").fetchone() == (SERVER_ZONE,)
        (value,) = c.execute("SELECT %s::timestamptz", (EVENING,)).fetchone() or (None,)
    assert f"{value:%Y-%m-%d %H:%M}" == "2026-11-30 12:10"


def test_the_patient_page_shows_alerts_and_notes_in_the_patients_zone(
    app: AppTest, la_patient: int
) -> None:
    at = _open(app, "patient", la_patient)
    at.segmented_control(key="patient_range").set_value(Range.CUSTOM).run()
    at.date_input(key="patient_custom").set_value((date(2026, 10, 25), date(2026, 12, 1))).run()
    assert not at.exception, at.exception
    alerts = next(df.value for df in at.dataframe if "raised" in df.value.columns)
    assert list(alerts["raised"]) == SHOWN
    captions = [c.value for c in at.caption]
    texts = [t.value for t in at.text]
    assert "2026-11-29 19:10 PST" in captions
    assert NOTE in texts
    written = next(df.value for df in at.dataframe if "written" in df.value.columns)
    assert list(written["written"]) == ["2026-11-01 01:30 PST"]


def test_the_alerts_page_shows_each_instant_in_its_patients_zone(
    app: AppTest, la_patient: int
) -> None:
    at = login(app, "dr.ito")
    at.switch_page("app_pages/alerts.py").run()
    assert not at.exception, at.exception
    inbox = next(df.value for df in at.dataframe if "opened" in df.value.columns)
    assert list(inbox["opened"]) == SHOWN
    dead = next(df.value for df in at.dataframe if "last try" in df.value.columns)
    assert list(dead["last try"]) == ["2026-11-01 01:30 PDT"]


@pytest.mark.parametrize(
    ("zone", "shown"),
    [
        ("America/Los_Angeles", "2026-11-29 19:10 PST"),
        ("Europe/Berlin", "2026-11-30 04:10 CET"),
        ("UTC", "2026-11-30 03:10 UTC"),
        # tzdata has only a number for São Paulo: the zone is named beside it.
        ("America/Sao_Paulo", "2026-11-30 00:10 America/Sao_Paulo (-03)"),
    ],
)
def test_an_instant_is_shown_in_the_zone_asked_for_with_its_label(zone: str, shown: str) -> None:
    tokyo = EVENING.astimezone(ZoneInfo(SERVER_ZONE))
    assert shown_at(tokyo, ZoneInfo(zone)) == shown


def test_a_wall_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        shown_at(datetime(2026, 11, 30, 3, 10), UTC)


def test_the_plan_page_says_when_progression_paused_in_the_patients_zone(
    app: AppTest, la_patient: int
) -> None:
    at = _open(app, "plan", la_patient)
    assert not at.exception, at.exception
    assert [e.value for e in at.error][:1] == [
        "Progression paused since 2026-11-29 19:10 PST: pain at night on the screen."
        " The quota does not rise until you clear the pause."
    ]


def test_the_lockout_message_says_utc_and_means_it() -> None:
    # The lockout's end comes from the database, in the session's zone.
    tokyo = EVENING.astimezone(ZoneInfo(SERVER_ZONE))
    assert "(until 2026-11-30 03:10 UTC)." in str(auth.LockedOutError(tokyo))


def test_the_caseload_counts_days_since_a_review_in_the_dashboards_zone() -> None:
    # Reviewed at 20:00 UTC on 1 December, which the Tokyo session hands over as the 2nd.
    reviewed = datetime(2026, 12, 1, 20, tzinfo=UTC).astimezone(ZoneInfo(SERVER_ZONE))
    entry = CaseloadEntry(
        patient_id=1,
        external_ref="LA-1",
        display_name="Lou Angel",
        yesterday=date(2026, 12, 1),
        plan=None,
        days=(),
        quotas=(),
        flags=(),
        flare_risk=None,
        flare_day=None,
        last_wear_day=None,
        last_upload=reviewed,
        open_alerts=0,
        critical_alerts=0,
        reviewed_at=reviewed,
    )
    row = caseload.row(entry, now=datetime(2026, 12, 2, 1, tzinfo=UTC))
    assert (row.reviewed, row.last_upload) == ("yesterday", "yesterday")
