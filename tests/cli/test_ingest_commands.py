"""`paceline devices …` and `paceline ingest …` end to end, on simulated wearables and a real database."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import psycopg
import pytest
from bleak.exc import BleakDBusError

from paceline.cli import ingest
from paceline.cli.main import main
from paceline.cli.settings import Settings
from paceline.devices import AdapterUnavailableError
from paceline.ingest.spool_file import spool_path
from paceline.store import registry
from tests.devices.fakes import failing_scanner


@pytest.fixture
def env(db_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI at the module's database and a private data directory."""
    monkeypatch.setenv("PACELINE_DATABASE_URL", db_dsn)
    monkeypatch.setenv("PACELINE_DATA_DIR", str(tmp_path))
    return tmp_path


def test_ingest_run_simulate_fills_the_database_and_prints_progress(
    env: Path, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["ingest", "run", "--simulate", "3", "--speed", "60", "--duration", "3", "--progress", "1"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "simulating 3 wearable(s)" in out
    assert "received" in out and "spooled" in out and "uploaded" in out
    assert "backlog:      0 rows" in out
    hr = conn.execute("SELECT count(*) FROM hr_sample").fetchone()
    conn.commit()
    assert hr is not None and hr[0] > 0
    assert main(["ingest", "status"]) == 0
    status = capsys.readouterr().out
    assert "lag:" in status and "uploaded" in status


def test_ingest_status_without_a_spool_says_so(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", "status"]) == 1
    assert "has not run here yet" in capsys.readouterr().out


def test_devices_scan_lists_what_each_wearable_can_give(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["devices", "scan", "--simulate", "3", "--timeout", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.count("C0:5E:ED:") == 3
    assert "hr_strap" in out and "pinetime" in out
    assert "battery, hr, rr" in out


def test_devices_bind_assigns_a_wearable_to_a_patient(
    env: Path, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    patient = registry.create_patient(conn, external_ref="CLI-BIND", display_name="Bind Me")
    conn.commit()
    assert main(["devices", "bind", "aa:bb:cc:00:11:22", "--patient", str(patient.patient_id)]) == 0
    assert f"bound to patient {patient.patient_id}" in capsys.readouterr().out
    assert main(["devices", "list", "--bound"]) == 0
    assert "AA:BB:CC:00:11:22" in capsys.readouterr().out


def _registered(conn: psycopg.Connection[Any], address: str) -> bool:
    row = conn.execute("SELECT count(*) FROM device WHERE address = %s", (address,)).fetchone()
    conn.commit()
    return row is not None and row[0] > 0


def test_binding_to_an_unknown_patient_leaves_no_device_behind(
    env: Path, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["devices", "bind", "aa:bb:cc:00:11:23", "--patient", "999999"]) == 2
    assert "no patient 999999" in capsys.readouterr().err
    assert not _registered(conn, "AA:BB:CC:00:11:23")


@pytest.mark.parametrize("address", ["aa:bb:cc:00:11", "AA:BB:CC:00:11:GG", "strap-1", ""])
def test_a_malformed_address_is_refused_and_nothing_is_written(
    env: Path, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str], address: str
) -> None:
    patient = registry.create_patient(conn, external_ref=f"CLI-BAD-{address}", display_name="X")
    conn.commit()
    before = registry.list_devices(conn)
    assert main(["devices", "bind", address, "--patient", str(patient.patient_id)]) == 2
    assert "invalid device address" in capsys.readouterr().err
    assert registry.list_devices(conn) == before


def test_a_macos_device_uuid_binds(
    env: Path, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    patient = registry.create_patient(conn, external_ref="CLI-MAC", display_name="On a Mac")
    conn.commit()
    uuid = "1f2e3d4c-5b6a-4789-9abc-def012345678"
    assert main(["devices", "bind", uuid, "--patient", str(patient.patient_id)]) == 0
    assert _registered(conn, uuid.upper())


def _bind_one(conn: psycopg.Connection[Any], address: str) -> None:
    patient = registry.create_patient(conn, external_ref=f"CLI-{address}", display_name="Radio")
    registry.register_device(conn, address=address, profile="hr_strap")
    registry.bind_device(conn, address=address, patient_id=patient.patient_id)
    conn.commit()


def _real_run(duration_s: float) -> argparse.Namespace:
    return argparse.Namespace(
        simulate=0, speed=1.0, duration=duration_s, progress=0.5, gateway_id=None
    )


NO_DBUS = not any(
    Path(p).exists() for p in ("/run/dbus/system_bus_socket", "/var/run/dbus/system_bus_socket")
)


@pytest.mark.skipif(not NO_DBUS, reason="this host has a D-Bus system bus (and maybe BlueZ)")
def test_ingest_run_on_a_host_without_bluez_exits_with_a_clear_error(
    env: Path, conn: psycopg.Connection[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # What a newcomer without Bluetooth sees: it used to log [Errno 2] until
    # --duration ran out and then exit 0.
    _bind_one(conn, "AA:BB:CC:00:22:01")
    assert main(["ingest", "run", "--duration", "5"]) == 2
    err = capsys.readouterr().err
    assert "no usable Bluetooth adapter" in err
    assert "--simulate N" in err


def test_no_adapter_stops_the_gateway_before_anything_starts(
    env: Path, conn: psycopg.Connection[Any], db_dsn: str
) -> None:
    _bind_one(conn, "AA:BB:CC:00:22:02")
    none = failing_scanner(FileNotFoundError(2, "No such file or directory"))
    with pytest.raises(AdapterUnavailableError, match="D-Bus"):
        ingest.stream(_real_run(30.0), Settings.from_env(), db_dsn, scanner_backend=none)
    assert not spool_path(env).exists()


def test_a_transient_adapter_error_leaves_the_daemon_retrying(
    env: Path, conn: psycopg.Connection[Any], db_dsn: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _bind_one(conn, "AA:BB:CC:00:22:03")
    busy = failing_scanner(BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"]))
    assert ingest.stream(_real_run(1.0), Settings.from_env(), db_dsn, scanner_backend=busy) == 0
    out = capsys.readouterr().out
    # The device task kept trying: its progress line carries the adapter's error.
    assert "AA:BB:CC:00:22:03" in out
    assert "last error: [org.bluez.Error.NotReady] Resource Not Ready" in out
