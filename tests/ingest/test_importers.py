"""File importers against real export files: what is stored is what the file holds."""

from __future__ import annotations

import csv
import json
import sqlite3
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fitdecode
import numpy as np
import psycopg
import pytest
from psycopg import sql

from paceline.cli.importing import import_for_patient
from paceline.cli.main import main
from paceline.ingest.importers import (
    DiskSpaceError,
    Format,
    MalformedFileError,
    UnknownFormatError,
    UnknownPatientError,
    UnsafeArchiveError,
    UnsafeXmlError,
    apple,
    detect,
    fit,
    load,
)
from paceline.store import registry

DATA = Path(__file__).resolve().parent.parent / "data"
WALK = DATA / "fitparse-garmin-fenix-5-walk.fit"


def _patient(conn: psycopg.Connection[Any], timezone: str = "UTC") -> int:
    patient = registry.create_patient(
        conn,
        external_ref=f"IMP-{datetime.now(UTC).timestamp()}",
        display_name="Importer test",
        birth_year=1980,
        timezone=timezone,
    )
    conn.commit()
    return patient.patient_id


def _rows(conn: psycopg.Connection[Any], table: str, patient_id: int) -> list[tuple[Any, ...]]:
    value = {"hr_sample": "bpm", "rr_interval": "rr_ms", "step_sample": "steps"}.get(
        table, "sdnn_ms"
    )
    rows = conn.execute(
        sql.SQL(
            "SELECT d.name, s.time, s.{} FROM {} s JOIN device d USING (device_id)"
            " WHERE s.patient_id = %s ORDER BY s.time, d.name"
        ).format(sql.Identifier(value), sql.Identifier(table)),
        (patient_id,),
    ).fetchall()
    conn.commit()
    return rows


# --- Garmin FIT (python-fitparse test files) -------------------------------------------


def test_fit_heart_rate_matches_the_libraries_csv_conversion(conn: psycopg.Connection[Any]) -> None:
    pid = _patient(conn)
    summary = import_for_patient(conn, WALK, pid)
    expected = {}
    with (DATA / "fitparse-garmin-fenix-5-walk-records.csv").open() as fh:
        for row in csv.DictReader(fh):
            # The conversion wrote Pacific daylight time, UTC-7.
            when = datetime.strptime(
                row["timestamp"].replace("PDT ", "") + " -0700", "%a %b %d %H:%M:%S %Y %z"
            )
            expected[when] = int(row["heart_rate"])
    stored = {t: bpm for _, t, bpm in _rows(conn, "hr_sample", pid)}
    assert stored == expected
    assert summary.hr == len(expected)


def test_fit_rr_intervals_are_every_beat_the_file_holds(conn: psycopg.Connection[Any]) -> None:
    pid = _patient(conn)
    beats: list[float] = []
    with fitdecode.FitReader(str(WALK)) as reader:
        for frame in reader:
            if frame.frame_type == fitdecode.FIT_FRAME_DATA and frame.name == "hrv":
                beats.extend(v for v in frame.get_value("time") if v is not None)
    summary = import_for_patient(conn, WALK, pid)
    stored = [rr for _, _, rr in _rows(conn, "rr_interval", pid)]
    assert summary.rr == len(beats) == len(stored)
    assert np.allclose(stored, np.array(beats) * 1000)


def test_fit_beats_are_timed_the_same_however_they_are_chunked(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _patient(conn)
    import_for_patient(conn, WALK, whole)
    monkeypatch.setattr(fit, "_CHUNK", 7)  # beats handed on (and stored) seven at a time
    chunked = _patient(conn)
    import_for_patient(conn, WALK, chunked)
    beats = _rows(conn, "rr_interval", whole)
    assert len(beats) > 50  # nine chunks of seven
    assert [(t, rr) for _, t, rr in _rows(conn, "rr_interval", chunked)] == [
        (t, rr) for _, t, rr in beats
    ]


def test_reimporting_a_fit_file_adds_nothing(conn: psycopg.Connection[Any]) -> None:
    pid = _patient(conn)
    first = import_for_patient(conn, WALK, pid)
    again = import_for_patient(conn, WALK, pid)
    assert (again.hr, again.rr, again.steps) == (0, 0, 0)
    assert again.duplicates == first.hr + first.rr
    assert len(_rows(conn, "hr_sample", pid)) == first.hr


def test_fit_monitoring_steps_add_up_to_the_devices_daily_totals(
    conn: psycopg.Connection[Any],
) -> None:
    pid = _patient(conn)
    import_for_patient(conn, DATA / "fitparse-MonitoringFile.fit", pid)
    # The file's own daily summaries (monitoring messages with duration_min 1440).
    totals = 0
    with fitdecode.FitReader(str(DATA / "fitparse-MonitoringFile.fit")) as reader:
        for frame in reader:
            if (
                frame.frame_type == fitdecode.FIT_FRAME_DATA
                and frame.name == "monitoring"
                and frame.has_field("duration_min")
            ):
                totals += frame.get_value("steps")
    stored = sum(steps for _, _, steps in _rows(conn, "step_sample", pid))
    assert totals == 3142 + 31
    assert stored == totals


def test_a_truncated_fit_file_imports_what_is_intact_and_says_so(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    summary = import_for_patient(
        conn, DATA / "fitparse-activity-unexpected-eof.fit", _patient(conn)
    )
    assert summary.notes and "ends early" in summary.notes[0]
    # The walk, cut off two thirds of the way: what came before the cut is stored.
    pid = _patient(conn)
    cut = tmp_path / "walk-cut.fit"
    cut.write_bytes(WALK.read_bytes()[: WALK.stat().st_size * 2 // 3])
    partial = import_for_patient(conn, cut, pid)
    whole = import_for_patient(conn, WALK, _patient(conn))
    assert partial.notes and "ends early" in partial.notes[0]
    assert 0 < partial.hr + partial.rr < whole.hr + whole.rr
    stored = _rows(conn, "hr_sample", pid)
    assert len(stored) == partial.hr


def test_a_fit_file_failing_its_crc_is_refused_whole(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    pid = _patient(conn)
    data = bytearray(WALK.read_bytes())
    data[-1] ^= 0x01  # the file CRC
    broken = tmp_path / "broken.fit"
    broken.write_bytes(bytes(data))
    with pytest.raises(MalformedFileError, match="CRC"):
        import_for_patient(conn, broken, pid)
    assert _rows(conn, "hr_sample", pid) == []


# --- Apple Health ------------------------------------------------------------------------


def test_apple_export_xml_from_healthkit_to_sqlite(conn: psycopg.Connection[Any]) -> None:
    pid = _patient(conn)
    summary = import_for_patient(conn, DATA / "healthkit-to-sqlite-export.xml", pid)
    assert _rows(conn, "hr_sample", pid) == [
        ("Apple\u00a0Watch", datetime(2018, 9, 10, 9, 28, 55, tzinfo=UTC), 72)
    ]
    assert (summary.hr, summary.first) == (1, datetime(2018, 9, 10, 9, 28, 55, tzinfo=UTC))


def test_apple_export_xml_from_apple_health_parser(conn: psycopg.Connection[Any]) -> None:
    pid = _patient(conn)
    summary = import_for_patient(conn, DATA / "apple-health-parser-export.xml", pid)
    # One heart-rate record (at 01:01:36 +0200, with its motion-context metadata); the
    # energy, exercise and stand-time records are not read, and nothing is refused.
    assert _rows(conn, "hr_sample", pid) == [
        ("Alexandre's Apple Watch", datetime(2023, 12, 31, 23, 1, 36, tzinfo=UTC), 74)
    ]
    assert (summary.hr, summary.steps, summary.sdnn, summary.rejected) == (1, 0, 0, {})


def _zip_dir(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return target


def test_apple_export_zip_and_an_overlapping_export_add_nothing_twice(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    pid = _patient(conn)
    archive = _zip_dir(DATA / "healthkit-to-sqlite-zip", tmp_path / "export.zip")
    assert detect(archive).format is Format.APPLE_HEALTH
    first = import_for_patient(conn, archive, pid)
    overlapping = import_for_patient(conn, DATA / "healthkit-to-sqlite-export.xml", pid)
    assert (first.hr, overlapping.hr, overlapping.duplicates) == (1, 0, 1)
    assert len(_rows(conn, "hr_sample", pid)) == 1


# An export in the shape iOS 16 wrote (no public export of it was found; see
# tests/data/README.md): its internal DTD (HealthKit Export Version 12) leaves the
# VisionPrescription ATTLIST without its closing ">", as quoted in the reports
# github.com/fedecalendino/apple-health/issues/1 and
# github.com/k0rventen/apple-health-grafana/issues/14; a stray vertical tab in a
# source name (github.com/jameno/Simple-Apple-Health-XML-to-CSV/pull/3); HRV SDNN
# with its beat-to-beat list (12-hour clock with a narrow no-break space); and steps
# counted by both the phone and the watch over the same minutes.
IOS16 = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 12 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord|VisionPrescription)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT VisionPrescription ((RightEye|LeftEye|Attachment|MetadataEntry)*)>
<!ATTLIST VisionPrescription
  type             CDATA #REQUIRED
  dateIssued       CDATA #REQUIRED
  expirationDate   CDATA #REQUIRED
  brand            CDATA #IMPLIED

<!ELEMENT RightEye EMPTY>
]>
<HealthData locale="en_GB">
 <ExportDate value="2026-11-20 10:00:00 +0100"/>
 <Me HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Ana\x0bs Apple Watch" unit="count/min" startDate="2026-11-19 23:59:58 +0100" endDate="2026-11-19 23:59:58 +0100" value="64"/>
 <Record type="HKQuantityTypeIdentifierHeartRateVariabilitySDNN" sourceName="Ana\x0bs Apple Watch" unit="ms" startDate="2026-11-19 23:59:30 +0100" endDate="2026-11-20 00:00:31 +0100" value="41.25">
  <HeartRateVariabilityMetadataList>
   <InstantaneousBeatsPerMinute bpm="60" time="11:59:31.00\u202fPM"/>
   <InstantaneousBeatsPerMinute bpm="75" time="11:59:31.80\u202fPM"/>
   <InstantaneousBeatsPerMinute bpm="50" time="12:00:00.50\u202fAM"/>
  </HeartRateVariabilityMetadataList>
 </Record>
 <Record type="HKQuantityTypeIdentifierStepCount" sourceName="Ana’s iPhone" unit="count" startDate="2026-11-20 08:00:00 +0100" endDate="2026-11-20 08:10:00 +0100" value="1000"/>
 <Record type="HKQuantityTypeIdentifierStepCount" sourceName="Ana’s iPhone" unit="count" startDate="2026-11-20 08:05:00 +0100" endDate="2026-11-20 08:10:00 +0100" value="500"/>
 <Record type="HKQuantityTypeIdentifierStepCount" sourceName="Ana\x0bs Apple Watch" unit="count" startDate="2026-11-20 08:00:00 +0100" endDate="2026-11-20 08:02:00 +0100" value="240"/>
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Ana’s iPhone" unit="count/min" startDate="2026-11-20 08:01:00 +0100" endDate="2026-11-20 08:01:00 +0100" value="400"/>
 <Workout workoutActivityType="HKWorkoutActivityTypeWalking" duration="10" startDate="2026-11-20 08:00:00 +0100" endDate="2026-11-20 08:10:00 +0100"/>
</HealthData>
"""


def test_an_ios16_export_imports_sdnn_beats_and_steps_apart_by_source(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    pid = _patient(conn, "Europe/Berlin")
    path = tmp_path / "export.xml"
    path.write_text(IOS16, encoding="utf-8")
    summary = import_for_patient(conn, path, pid)
    watch = "Anas Apple Watch"  # the control character is gone, nothing else
    assert _rows(conn, "hr_sample", pid) == [
        (watch, datetime(2026, 11, 19, 22, 59, 58, tzinfo=UTC), 64)
    ]
    assert summary.rejected == {"hr: bpm outside 1..300": 1}
    assert _rows(conn, "hrv_sdnn_sample", pid) == [
        (watch, datetime(2026, 11, 19, 23, 0, 31, tzinfo=UTC), 41.25)
    ]
    beats = _rows(conn, "rr_interval", pid)
    assert [(t.isoformat(), rr) for _, t, rr in beats] == [
        ("2026-11-19T22:59:31+00:00", 1000.0),
        ("2026-11-19T22:59:31.800000+00:00", 800.0),
        ("2026-11-19T23:00:00.500000+00:00", 1200.0),
    ]
    steps = _rows(conn, "step_sample", pid)
    phone = [s for name, _, s in steps if name == "Ana’s iPhone"]
    watch_steps = [s for name, _, s in steps if name == watch]
    # Phone: 100/min for 08:00-08:05, then the two overlapping records' mean rate
    # (100 and 100 steps/min) for 08:05-08:10: 1000 steps, not 1500.
    assert phone == [100] * 10
    assert watch_steps == [120, 120]
    # The day's steps take the larger device per minute, so the watch's 240 in the
    # first two minutes do not add to the phone's.
    day = conn.execute(
        "SELECT steps FROM daily_metrics WHERE patient_id = %s AND day = '2026-11-20'", (pid,)
    ).fetchone()
    conn.commit()
    assert day is not None and day[0] == 1040
    # SDNN is not RMSSD: nothing of it reaches the day's RMSSD.
    assert summary.sdnn == 1


def test_an_xml_bomb_is_refused_and_stores_nothing(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    pid = _patient(conn)
    lols = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    path = tmp_path / "export.xml"
    path.write_text(
        f'<?xml version="1.0"?><!DOCTYPE HealthData [<!ENTITY lol0 "lol">{lols}]>'
        '<HealthData><Record type="HKQuantityTypeIdentifierHeartRate" sourceName="&lol9;"'
        ' unit="count/min" startDate="2026-01-01 00:00:00 +0000"'
        ' endDate="2026-01-01 00:00:00 +0000" value="60"/></HealthData>'
    )
    with pytest.raises(UnsafeXmlError):
        import_for_patient(conn, path, pid)
    assert _rows(conn, "hr_sample", pid) == []


def test_broken_xml_halfway_stores_nothing(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    pid = _patient(conn)
    path = tmp_path / "export.xml"
    good = IOS16.split("<Workout", maxsplit=1)[0]
    path.write_text(good + "<Record type=oops", encoding="utf-8")
    with pytest.raises(MalformedFileError, match="not well-formed"):
        import_for_patient(conn, path, pid)
    assert _rows(conn, "hr_sample", pid) == []
    assert _rows(conn, "step_sample", pid) == []


def test_a_file_broken_after_batches_were_written_stores_nothing(
    conn: psycopg.Connection[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One-row batches: the writer stores batches while the parser is still reading.
    monkeypatch.setattr(load, "BATCH_ROWS", 1)
    monkeypatch.setattr(apple, "_FLUSH_ROWS", 1)
    pid = _patient(conn)
    body = "".join(
        f'<Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Watch" unit="count/min"'
        f' startDate="2026-11-20 08:{m:02d}:00 +0100" endDate="2026-11-20 08:{m:02d}:00 +0100"'
        f' value="{60 + m}"/>\n'
        for m in range(50)
    )
    path = tmp_path / "export.xml"
    path.write_text(f"<HealthData>\n{body}{body[:-40]}", encoding="utf-8")
    with pytest.raises(MalformedFileError, match="not well-formed"):
        import_for_patient(conn, path, pid)
    assert _rows(conn, "hr_sample", pid) == []
    devices = conn.execute("SELECT count(*) FROM device WHERE patient_id = %s", (pid,)).fetchone()
    conn.commit()
    assert devices == (0,)
    # The same file made whole imports, in as many one-row batches as it has rows.
    path.write_text(f"<HealthData>\n{body}</HealthData>", encoding="utf-8")
    summary = import_for_patient(conn, path, pid)
    assert (summary.hr, summary.batches) == (50, 50)


@pytest.mark.parametrize(
    "stamp",
    [
        "2026-11-20 08:01:02 +0100",
        "2026-03-29 01:59:59 -0930",
        "2024-02-29 23:59:59 +1400",
        "1999-12-31 00:00:00 +0000",
    ],
)
def test_apple_time_stamps_read_as_python_reads_them(stamp: str) -> None:
    expected = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S %z")
    time_us, ok = apple.epoch_us([stamp, stamp])
    assert ok.tolist() == [True, True]
    assert time_us.tolist() == [round(expected.timestamp() * 1_000_000)] * 2


def test_apple_time_stamps_not_as_apple_writes_them_are_marked() -> None:
    good = "2026-11-20 08:01:02 +0100"
    bad = [
        "2026-02-30 08:01:02 +0100",  # no such day
        "2026-11-20 24:01:02 +0100",
        "2026-11-20T08:01:02 +0100",
        "2026-11-20 08:01:02 0100",
        "2026-11-20 08:01:02",
        "2026-11-20 08:01:02 +01000",
        "2026-1x-20 08:01:02 +0100",
        "２026-11-20 08:01:02 +0100",  # a full-width digit
    ]
    _, ok = apple.epoch_us([good, *bad])
    assert ok.tolist() == [True] + [False] * len(bad)


# --- Bad input ----------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    bomb = tmp_path / "export.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("apple_health_export/export.xml", b"\0" * (32 * 1024 * 1024))
    with pytest.raises(UnsafeArchiveError, match="zip bomb"):
        detect(bomb)


def test_a_file_of_no_known_format_is_refused(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    png = tmp_path / "export.xml"  # the name does not decide
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(UnknownFormatError):
        import_for_patient(conn, png, _patient(conn))


def test_too_little_free_disk_is_refused_before_parsing(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    class Full:
        free = 10

    monkeypatch.setattr("paceline.ingest.importers.source.shutil.disk_usage", lambda _: Full())
    pid = _patient(conn)
    with pytest.raises(DiskSpaceError, match="free"):
        import_for_patient(conn, DATA / "healthkit-to-sqlite-export.xml", pid)
    assert _rows(conn, "hr_sample", pid) == []


def test_an_unknown_patient_is_refused(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(UnknownPatientError):
        import_for_patient(conn, WALK, 987_654_321)


# --- Fitbit -------------------------------------------------------------------------------


def test_fitbit_heart_rate_csv_in_the_patients_local_time(conn: psycopg.Connection[Any]) -> None:
    pid = _patient(conn, "America/New_York")
    path = DATA / "fitbit-heartrate-5s-one-user.csv"
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    summary = import_for_patient(conn, path, pid)
    stored = _rows(conn, "hr_sample", pid)
    assert summary.hr == len(stored) == len({r["Time"] for r in rows})

    # May 2016 is daylight saving time in New York: UTC-4.
    def local(row: dict[str, str]) -> datetime:
        return datetime.strptime(row["Time"] + " -0400", "%m/%d/%Y %I:%M:%S %p %z")

    first = min(rows, key=local)
    assert stored[0][1] == local(first)
    assert stored[0][2] == int(first["Value"])


def test_fitbit_account_json_heart_rate_and_steps(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    pid = _patient(conn)
    archive = tmp_path / "MyFitbitData.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(
            "Physical Activity/heart_rate-2026-11-01.json",
            json.dumps(
                [
                    {"dateTime": "11/01/26 07:00:05", "value": {"bpm": 66, "confidence": 2}},
                    {"dateTime": "11/01/26 07:00:10", "value": {"bpm": 68, "confidence": 3}},
                ]
            ),
        )
        zf.writestr(
            "Physical Activity/steps-2026-11-01.json",
            json.dumps([{"dateTime": "11/01/26 07:00:00", "value": "42"}]),
        )
    summary = import_for_patient(conn, archive, pid)
    assert (summary.hr, summary.steps) == (2, 1)
    assert _rows(conn, "step_sample", pid) == [
        ("Fitbit", datetime(2026, 11, 1, 7, 1, tzinfo=UTC), 42)
    ]


# --- Health Connect ----------------------------------------------------------------------


def _health_connect(path: Path) -> Path:
    """A Health Connect export in the schema of AOSP's HealthFitness datatypehelpers."""
    db_path = path.with_suffix(".db")
    db = sqlite3.connect(db_path)
    db.executescript(
        """
        CREATE TABLE application_info_table (row_id INTEGER PRIMARY KEY, package_name TEXT,
            app_name TEXT);
        CREATE TABLE heart_rate_record_table (row_id INTEGER PRIMARY KEY, uuid BLOB,
            start_time INTEGER, end_time INTEGER, app_info_id INTEGER, local_date INTEGER);
        CREATE TABLE heart_rate_record_series_table (parent_key INTEGER, beats_per_minute INTEGER,
            epoch_millis INTEGER);
        CREATE TABLE steps_record_table (row_id INTEGER PRIMARY KEY, uuid BLOB, start_time INTEGER,
            end_time INTEGER, count INTEGER, app_info_id INTEGER, local_date INTEGER);
        INSERT INTO application_info_table VALUES (1, 'com.google.android.apps.fitness', 'Fit'),
            (2, 'com.sec.android.app.shealth', 'Samsung Health');
        INSERT INTO heart_rate_record_table VALUES (10, x'01', 1763967600000, 1763967660000, 1, 0),
            (11, x'02', 1763967600000, 1763967660000, 1, 0),
            (12, x'03', 1763967600000, 1763967660000, 2, 0);
        -- record 11 repeats record 10 (one app synced twice); record 12 is the other app
        INSERT INTO heart_rate_record_series_table VALUES (10, 70, 1763967600000),
            (10, 72, 1763967630000), (11, 70, 1763967600000), (11, 72, 1763967630000),
            (12, 71, 1763967600000);
        INSERT INTO steps_record_table VALUES (1, x'04', 1763967600000, 1763967720000, 200, 1, 0),
            (2, x'05', 1763967600000, 1763967720000, 200, 1, 0),
            (3, x'06', 1763967600000, 1763967660000, 90, 2, 0);
        """
    )
    db.commit()
    db.close()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(db_path, "health_connect_export.db")
    return path


def test_health_connect_export_keeps_apps_apart_and_collapses_repeats(
    conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    pid = _patient(conn)
    summary = import_for_patient(conn, _health_connect(tmp_path / "export.zip"), pid)
    fit = "Health Connect com.google.android.apps.fitness"
    samsung = "Health Connect com.sec.android.app.shealth"
    t0 = datetime.fromtimestamp(1763967600, UTC)
    assert [(n, t - t0, b) for n, t, b in _rows(conn, "hr_sample", pid)] == [
        (fit, t0 - t0, 70),
        (samsung, t0 - t0, 71),
        (fit, (t0.replace(second=30) - t0), 72),
    ]
    steps = _rows(conn, "step_sample", pid)
    assert sorted((n, s) for n, _, s in steps) == [(fit, 100), (fit, 100), (samsung, 90)]
    assert summary.duplicates == 2


# --- The command --------------------------------------------------------------------------


def test_paceline_import_json_prints_one_object(
    db_dsn: str, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    pid = _patient(conn)
    monkeypatch.setenv("PACELINE_DATABASE_URL", db_dsn)
    assert main(["import", str(WALK), "--patient", str(pid), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"hr", "rr", "steps", "duplicates", "rejected", "first", "last"} <= set(out)
    assert out["hr"] > 0 and out["rr"] > 0 and out["duplicates"] == 0
    assert main(["import", str(WALK), "--patient", str(pid), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["hr"] == 0 and again["duplicates"] == out["hr"] + out["rr"]


def test_google_takeout_time_series_csv(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    pid = _patient(conn)
    hr = tmp_path / "heart_rate_2026-11-02.csv"
    hr.write_text(
        "timestamp,beats per minute\n"
        "2026-11-02T07:00:00Z,61\n"
        "2026-11-02T07:00:05Z,63\n"
        "2026-11-02T07:00:05Z,63\n"  # a repeated line is stored once
        "not a time,64\n"
    )
    summary = import_for_patient(conn, hr, pid)
    assert (summary.hr, summary.duplicates) == (2, 1)
    assert summary.rejected == {"hr: time not in a Fitbit format": 1}
    steps = tmp_path / "steps_2026-11-02.csv"
    steps.write_text("timestamp,steps\n2026-11-02T07:00:00+01:00,30\n")
    import_for_patient(conn, steps, pid)
    assert _rows(conn, "step_sample", pid) == [
        ("Fitbit", datetime(2026, 11, 2, 6, 1, tzinfo=UTC), 30)
    ]
