"""`paceline demo`: the README's main command, end to end on a real database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from paceline.cli.main import main
from paceline.store import connect
from paceline.store.testing import temporary_database

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ")


@pytest.mark.slow
def test_the_demo_fills_the_database_and_flags_the_caseload(
    pg_server_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with temporary_database(pg_server_dsn, "demo", migrated=False) as dsn:
        monkeypatch.setenv("PACELINE_DATABASE_URL", dsn)
        monkeypatch.setenv("PACELINE_DATA_DIR", str(tmp_path))
        assert main(["demo", "--duration", "4", "--speed", "60"]) == 0
        out = capsys.readouterr().out
        # Prose on stdout, log lines in the data directory's log file.
        log = (tmp_path / "demo.log").read_text()
        assert "paceline.ingest" in log
        assert f"log: {tmp_path / 'demo.log'}" in out
        assert not [line for line in out.splitlines() if LOG_LINE.match(line)]
        for heading in (
            "== 1. Database",
            "== 2. Live ingest",
            "== 3. Daily metrics",
            "== 4. Pacing",
        ):
            assert heading in out
        with connect(dsn) as conn:
            live = conn.execute(
                "SELECT count(*), count(DISTINCT patient_id) FROM hr_sample"
            ).fetchone()
            assert live is not None and live[0] > 100 and live[1] == 3
            days = conn.execute(
                "SELECT count(*) FROM daily_metrics m JOIN patient p USING (patient_id)"
                " WHERE p.external_ref LIKE 'SIM-%%' AND m.hr_samples > 0"
            ).fetchone()
            assert days is not None and days[0] >= 3
            flags = dict(
                conn.execute(
                    "SELECT p.external_ref, array_agg(DISTINCT f.rule_id) FROM flag f"
                    " JOIN patient p USING (patient_id) GROUP BY p.external_ref"
                ).fetchall()
            )
        assert "bust.under_quota" in flags["DEMO-AVOIDER"]
        assert "cycling.boom_bust" in flags["DEMO-BOOM_BUST"]
        assert "flare.episode" in flags["DEMO-FLARE_AFTER_SPIKE"]
        assert "DEMO-STEADY" not in flags
        assert not any(r.startswith("bust.") for r in flags["DEMO-MISSING_WEAR"])

        # A second run adds live data but does not replay the caseload again.
        with connect(dsn) as conn:
            first_end = conn.execute("SELECT max(time) FROM hr_sample").fetchone()
        assert main(["demo", "--duration", "2", "--speed", "60"]) == 0
        assert "continuing after the newest stored sample" in capsys.readouterr().out
        with connect(dsn) as conn:
            # It continues in time: new minutes, not a second set of samples between
            # the first run's (which made two heart-rate rows a second).
            doubled = conn.execute(
                "SELECT count(*) FROM (SELECT time - lag(time) OVER"
                " (PARTITION BY device_id ORDER BY time) AS gap FROM hr_sample) g"
                " WHERE gap < interval '500 milliseconds'"
            ).fetchone()
            assert doubled == (0,)
            later = conn.execute(
                "SELECT count(*) FROM hr_sample WHERE time > %s", first_end
            ).fetchone()
            assert later is not None and later[0] > 0
            plans = conn.execute(
                "SELECT count(*) FROM pacing_plan pp JOIN patient p USING (patient_id)"
                " WHERE p.external_ref = 'DEMO-STEADY'"
            ).fetchone()
        assert plans == (7,)
