"""`paceline alerts list|ack|resolve` against a real database."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from paceline.cli.main import main
from paceline.pacing.simulate import Persona, SimPatient
from tests.pacing.alerts.helpers import enrol, play


def test_help_lists_the_alert_settings(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in (
        "PACELINE_SMTP_URL",
        "PACELINE_ALERT_FROM",
        "PACELINE_WEBHOOK_URL",
        "PACELINE_WEBHOOK_SECRET",
        "PACELINE_DASHBOARD_URL",
    ):
        assert name in out


def test_list_ack_and_resolve_from_the_command_line(
    conn: psycopg.Connection[Any],
    db_dsn: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pid, team = enrol(conn)
    play(conn, pid, SimPatient(Persona.FLARE_AFTER_SPIKE, seed=4, spike_day=20), days=21)
    monkeypatch.setenv("PACELINE_DATABASE_URL", db_dsn)
    assert main(["alerts", "list", "--patient", str(pid), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["rule_id"] for r in rows] == ["boom.over_quota"]
    alert_id = rows[0]["alert_id"]

    assert main(["alerts", "ack", str(alert_id), "--clinician", str(team[0])]) == 2
    assert "needs a note" in capsys.readouterr().err
    assert main(["alerts", "ack", str(alert_id), "--clinician", "999999", "--note", "x"]) == 2
    assert "not on the care team" in capsys.readouterr().err

    note = "phoned; agreed to split the walk"
    args = ["alerts", "ack", str(alert_id), "--clinician", str(team[0]), "--note", note]
    assert main(args) == 0
    assert "acknowledged" in capsys.readouterr().out
    assert main(args) == 2
    assert "is acknowledged; it cannot be acknowledged" in capsys.readouterr().err

    assert main(["alerts", "resolve", str(alert_id), "--clinician", str(team[0])]) == 0
    capsys.readouterr()
    assert main(["alerts", "list", "--patient", str(pid), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["alerts", "list", "--patient", str(pid), "--status", "resolved", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["ack_note"] == note and row["resolution"] == "clinician"

    trail = conn.execute(
        "SELECT action, clinician_id, detail->>'note' FROM audit_log"
        " WHERE patient_id = %s AND action LIKE 'alert.%%' AND clinician_id IS NOT NULL"
        " ORDER BY audit_id",
        (pid,),
    ).fetchall()
    assert trail == [("alert.acknowledge", team[0], note), ("alert.resolve", team[0], "")]
