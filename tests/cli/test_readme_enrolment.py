"""The README's "Enrolling a real patient with a real band", run as written on a fresh database.

Every `paceline` line of the section's code block runs in order. The two that
need a Bluetooth radio run with their simulated twin (`--simulate 1`), and
`ADDRESS` becomes the simulated band's address; passwords come on standard
input instead of the prompt. Then the patient has a flag.

The simulated band's minutes start at the last 09:58 UTC at least a run's
worth of accelerated time before "now" (a daytime start), so where they fall
depends on the time of day: before about 12:30 UTC on the previous day (a
completed day), after it on the same day (today so far). So the flow runs on
the clock `PACELINE_CLOCK_START` sets, which `ingest run --simulate` and the
worker's evaluations both follow, anchored yesterday just after 09:58 and late
in the evening: the same at whatever time of day the suite runs.
"""

from __future__ import annotations

import io
import json
import shlex
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from paceline.cli.main import main
from paceline.devices.simulator import fake_address
from paceline.ingest.simulation import SIM_ADDRESS_PREFIX
from paceline.store.testing import temporary_database

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "### Enrolling a real patient with a real band"
PASSWORD = "a long enough passphrase"  # noqa: S105 - a test login
#: What the radio steps become without a radio: the same command on a simulated band.
RADIO_TWINS = {
    ("devices", "scan"): ["--simulate", "1", "--timeout", "1"],
    ("ingest", "run"): ["--simulate", "1", "--speed", "600", "--duration", "15", "--progress", "0"],
}


def readme_commands() -> list[list[str]]:
    """The `paceline` command lines of the section's first code block, without `paceline`."""
    section = README.read_text().split(HEADING, 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("paceline ")]


def test_the_section_goes_from_a_login_to_a_bound_band_to_the_flags() -> None:
    commands = [tuple(c[:2]) for c in readme_commands()]
    assert commands[0] == ("accounts", "add")
    assert commands.index(("devices", "bind")) < commands.index(("flags", "list"))
    assert set(RADIO_TWINS) <= set(commands)


#: (clock time yesterday, UTC; how many days before the clock's day the band's minutes fall)
ANCHORS = {
    "just-after-0958": (time(10, 0), 1),
    "late-evening": (time(22, 30), 0),  # still that day in London in summer too
}


@pytest.mark.parametrize("anchor", list(ANCHORS))
def test_every_enrolment_step_runs_as_written(
    anchor: str,
    pg_server_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    at, days_before = ANCHORS[anchor]
    # Yesterday, so that every simulated sample is in the past whenever the suite runs.
    clock = datetime.combine(datetime.now(UTC).date() - timedelta(days=1), at, tzinfo=UTC)
    address = fake_address(1, prefix=SIM_ADDRESS_PREFIX)
    with temporary_database(pg_server_dsn, f"readme_enrol_{anchor.replace('-', '_')}") as dsn:
        monkeypatch.setenv("PACELINE_DATABASE_URL", dsn)
        monkeypatch.setenv("PACELINE_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("PACELINE_CLOCK_START", clock.isoformat())
        for written in readme_commands():
            argv = [address if a == "ADDRESS" else a for a in written]
            argv += RADIO_TWINS.get((argv[0], argv[1]), [])
            if argv[:2] == ["patients", "add"]:
                # A real band's minutes are those after enrolment; the simulated band's
                # start earlier (at the last 09:58 UTC): enrol the patient before them.
                argv += ["--enrolled", (clock.date() - timedelta(days=3)).isoformat()]
            if argv[:2] == ["accounts", "add"]:
                argv.append("--password-stdin")
                monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
            code = main(argv)
            out, err = capsys.readouterr()
            assert code == 0, (argv, out, err)
        assert main(["flags", "list", "--open", "--patient", "1", "--json"]) == 0
        flags = json.loads(capsys.readouterr().out)
        assert flags, "the README promises a first flag"
        no_wear = [f for f in flags if f["rule_id"] == "data.no_wear"]
        assert no_wear, flags
        # The band's day: a completed day, or the clock's today so far.
        band_day = (clock.date() - timedelta(days=days_before)).isoformat()
        assert no_wear[0]["evidence"]["first_day"] == band_day, no_wear
        assert main(["patients", "show", "1", "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["days"] and shown["care_team"][0]["display_name"] == "Dr Rivera"
        # The worker evaluated on the clock's day (late in the evening: the band's day so far).
        opened = [a["opened_at"] for a in shown["alerts"] if a["rule_id"] == "data.no_wear"]
        assert [str(o)[:10] for o in opened] == [clock.date().isoformat()], shown["alerts"]
        assert main(["devices", "list", "--bound"]) == 0
        assert address in capsys.readouterr().out
