"""The clinic commands (`patients`, `care-team`, `flags`, `diary`, `accounts --name`) on a real database."""

from __future__ import annotations

import io
import json
from typing import Any

import psycopg
import pytest

from paceline.cli.main import main
from paceline.pacing.simulate import Persona, SimPatient
from paceline.store import registry
from tests.pacing.alerts.helpers import enrol, play

PASSWORD = "a long enough passphrase"  # noqa: S105 - a test login


@pytest.fixture
def cli(db_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `paceline ARGS` on the module's database; return (exit code, stdout, stderr)."""
    monkeypatch.setenv("PACELINE_DATABASE_URL", db_dsn)

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _refused(result: tuple[int, str, str], message: str) -> None:
    code, _out, err = result
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_patients_add_list_and_show(cli: Any, conn: psycopg.Connection[Any]) -> None:
    code, out, _ = cli(
        "accounts", "add", "dr.okafor", "--role", "clinician", "--name", "Dr Okafor",
        "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0
    clinician_id = int(out.rsplit("clinician ", 1)[1])
    assert registry.get_clinician(conn, clinician_id) == "Dr Okafor"

    code, out, _ = cli(
        "patients", "add", "--ref", "CLI-001", "--name", "Ada Example", "--birth-year", "1970",
        "--timezone", "Europe/Berlin", "--clinician", str(clinician_id), "--json",
    )  # fmt: skip
    assert code == 0
    added = json.loads(out)
    assert added["external_ref"] == "CLI-001" and added["timezone"] == "Europe/Berlin"
    pid = added["patient_id"]

    code, out, _ = cli("patients", "list", "--clinician", str(clinician_id), "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["patient_id"] == pid and row["display_name"] == "Ada Example"
    assert set(row) == {
        "patient_id", "external_ref", "display_name", "measure", "quota", "load_yesterday",
        "open_flags", "open_alerts", "critical_alerts", "flare_risk", "last_wear_day",
        "last_upload",
    }  # fmt: skip
    assert row["open_flags"] == [] and row["quota"] is None

    code, out, _ = cli("patients", "show", str(pid), "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) == {
        "patient", "care_team", "plan", "plan_history", "today", "flags", "alerts", "days",
        "flare_risk",
    }  # fmt: skip
    assert [m["clinician_id"] for m in doc["care_team"]] == [clinician_id]
    assert doc["plan"] is None and doc["flags"] == [] and doc["days"] == []
    code, out, _ = cli("patients", "show", str(pid))
    assert code == 0 and "Ada Example" in out and "Dr Okafor" in out
    audited = conn.execute(
        "SELECT count(*) FROM audit_log WHERE patient_id = %s AND action = 'cli.patient.show'",
        (pid,),
    ).fetchone()
    assert audited == (2,)

    _refused(cli("patients", "add", "--ref", "CLI-001", "--name", "Twice"), "exists already")
    _refused(
        cli("patients", "add", "--ref", "CLI-002", "--name", "X", "--timezone", "Mars/Base"),
        "unknown time zone",
    )
    _refused(
        cli("patients", "add", "--ref", "CLI-003", "--name", "X", "--birth-year", "1800"),
        "birth year 1900-2100",
    )
    assert registry.patient_id_by_ref(conn, "CLI-003") is None


def test_unknown_ids_are_typed_errors_without_a_traceback(cli: Any) -> None:
    _refused(cli("patients", "show", "999999"), "no patient 999999")
    _refused(cli("patients", "show", "999999", "--json"), "no patient 999999")
    _refused(cli("flags", "list", "--patient", "999999", "--json"), "no patient 999999")
    _refused(cli("alerts", "list", "--patient", "999999"), "no patient 999999")
    _refused(cli("patients", "list", "--clinician", "999999"), "no clinician 999999")
    _refused(
        cli("care-team", "add", "--patient", "999999", "--clinician", "1"), "no patient 999999"
    )
    _refused(
        cli("diary", "add", "--patient", "999999", "--clinician", "999999", "--pain", "3"),
        "no clinician 999999",
    )
    _refused(
        cli("accounts", "add", "x.y", "--role", "patient", "--name", "X", "--password-stdin",
            stdin=PASSWORD + "\n"),
        "--name records a new clinician",
    )  # fmt: skip


def test_care_team_add_and_remove(cli: Any, conn: psycopg.Connection[Any]) -> None:
    pid, (first,) = enrol(conn)
    second = registry.create_clinician(conn, username="dr.second", display_name="Dr Second")
    conn.commit()
    code, out, _ = cli(
        "care-team", "add", "--patient", str(pid), "--clinician", str(second), "--role",
        "psychologist",
    )  # fmt: skip
    assert code == 0 and "psychologist" in out
    assert [(m.clinician_id, m.role) for m in registry.care_team_of(conn, pid)] == [
        (first, "physiotherapist"),
        (second, "psychologist"),
    ]
    assert cli("care-team", "remove", "--patient", str(pid), "--clinician", str(first))[0] == 0
    assert [m.clinician_id for m in registry.care_team_of(conn, pid)] == [second]
    _refused(
        cli("care-team", "remove", "--patient", str(pid), "--clinician", str(first)),
        "is not on patient",
    )
    trail = conn.execute(
        "SELECT action, clinician_id FROM audit_log WHERE patient_id = %s"
        " AND action LIKE 'care_team.%%' ORDER BY audit_id",
        (pid,),
    ).fetchall()
    assert trail == [("care_team.add", second), ("care_team.remove", first)]


def test_flags_and_show_give_the_evidence_in_sentences(
    cli: Any, conn: psycopg.Connection[Any]
) -> None:
    pid, _team = enrol(conn)
    play(conn, pid, SimPatient(Persona.FLARE_AFTER_SPIKE, seed=4, spike_day=20), days=21)
    code, out, _ = cli("flags", "list", "--open", "--patient", str(pid), "--json")
    assert code == 0
    flags = json.loads(out)
    assert [f["rule_id"] for f in flags] == ["boom.over_quota"]
    (flag,) = flags
    assert flag["status"] == "open" and flag["title"] != flag["rule_id"]
    assert flag["sentences"] and all(s.endswith(".") for s in flag["sentences"])
    assert "quota" in " ".join(flag["sentences"])

    code, out, _ = cli("flags", "list", "--json")
    assert code == 0
    assert flag["flag_id"] in {f["flag_id"] for f in json.loads(out)}

    code, out, _ = cli("patients", "show", str(pid), "--json")
    doc = json.loads(out)
    assert [f["sentences"] for f in doc["flags"]] == [flag["sentences"]]
    assert doc["plan"]["quota"] is not None and doc["plan_history"]
    assert [a["rule_id"] for a in doc["alerts"]] == ["boom.over_quota"]

    code, out, _ = cli("patients", "show", str(pid))
    assert code == 0
    assert flag["sentences"][0] in out and "quota" in out


def test_diary_add_goes_through_the_intake_and_is_audited_as_the_clinician(
    cli: Any, conn: psycopg.Connection[Any]
) -> None:
    pid, (clinician,) = enrol(conn)
    sheet = ["diary", "add", "--patient", str(pid), "--clinician", str(clinician), "--pain", "6"]
    sheet += ["--fear", "7", "--sleep", "4", "--at", "2026-03-05T20:00", "--note", "paper sheet"]
    code, out, _ = cli(*sheet, "--json")
    assert code == 0
    stored = json.loads(out)
    assert stored["created"] is True
    row = conn.execute(
        "SELECT pain_now, fear_of_movement, sleep_quality, note, reported_at FROM self_report"
        " WHERE report_id = %s",
        (stored["report_id"],),
    ).fetchone()
    assert row is not None and row[:4] == (6, 7, 4, "paper sheet")
    assert row[4].isoformat() == "2026-03-05T20:00:00+00:00"  # the patient's zone is UTC

    code, out, _ = cli(*sheet)
    assert code == 0 and "nothing changed" in out
    conflicting = [*sheet]
    conflicting[conflicting.index("--pain") + 1] = "2"
    _refused(cli(*conflicting), "")
    _refused(
        cli("diary", "add", "--patient", str(pid), "--clinician", str(clinician), "--pain", "11"),
        "pain_now must be from 0 to 10",
    )
    _refused(
        cli("diary", "add", "--patient", str(pid), "--clinician", str(clinician), "--pain", "3",
            "--at", "yesterday"),
        "not an ISO 8601 time",
    )  # fmt: skip
    stranger = registry.create_clinician(conn, username="dr.stranger", display_name="Dr S")
    conn.commit()
    _refused(
        cli("diary", "add", "--patient", str(pid), "--clinician", str(stranger), "--pain", "3"),
        "is not on patient",
    )
    trail = conn.execute(
        "SELECT actor, clinician_id, detail->>'source' FROM audit_log WHERE patient_id = %s"
        " AND action = 'diary.entered'",
        (pid,),
    ).fetchall()
    assert trail == [(f"clinician:{clinician}", clinician, "paper")]
    count = conn.execute("SELECT count(*) FROM self_report WHERE patient_id = %s", (pid,))
    assert count.fetchone() == (1,)


def test_listings_print_one_json_document(cli: Any, conn: psycopg.Connection[Any]) -> None:
    enrol(conn)
    for args in (
        ("patients", "list", "--json"),
        ("flags", "list", "--json"),
        ("alerts", "list", "--json"),
        ("alerts", "list", "--dead", "--json"),
        ("accounts", "list", "--json"),
    ):
        code, out, _ = cli(*args)
        assert code == 0, args
        assert isinstance(json.loads(out), list), args
