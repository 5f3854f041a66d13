"""People and devices: patients, clinicians, care teams, and wearables bound to patients."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from paceline.store.errors import StoreError


class NotFoundError(StoreError, LookupError):
    """A patient, clinician or device that does not exist."""


class DuplicateError(StoreError, ValueError):
    """A patient reference (or another unique name) that is taken already."""


class InvalidPatientError(StoreError, ValueError):
    """Patient details the database refuses (a birth year or heart rate out of range)."""


class InvalidBatteryLevelError(StoreError, ValueError):
    """A battery level outside 0-100 %, or read at a time without a time zone."""

    def __init__(self, device_id: int, percent: int, at: datetime) -> None:
        self.device_id = device_id
        self.percent = percent
        self.at = at
        super().__init__(f"device {device_id}: battery level {percent} % at {at} is not storable")


@dataclass(frozen=True)
class Patient:
    """A patient as stored."""

    patient_id: int
    external_ref: str
    display_name: str
    birth_year: int | None
    sex: str
    hr_max_bpm: int | None
    hr_rest_bpm: int | None
    timezone: str
    enrolled_at: datetime


@dataclass(frozen=True)
class Device:
    """A wearable as stored."""

    device_id: int
    address: str
    name: str | None
    profile: str
    patient_id: int | None
    first_seen: datetime
    last_seen: datetime


def create_patient(
    conn: psycopg.Connection[Any],
    *,
    external_ref: str,
    display_name: str,
    birth_year: int | None = None,
    sex: str = "unspecified",
    hr_max_bpm: int | None = None,
    hr_rest_bpm: int | None = None,
    timezone: str = "UTC",
    enrolled_at: datetime | None = None,
) -> Patient:
    """Enrol a patient and return it; `timezone` must be an IANA zone name (e.g. Europe/Berlin)."""
    check_timezone(timezone)
    with conn.cursor(row_factory=class_row(Patient)) as cur:
        cur.execute(
            "INSERT INTO patient (external_ref, display_name, birth_year, sex, hr_max_bpm,"
            " hr_rest_bpm, timezone, enrolled_at) VALUES (%s, %s, %s, %s, %s, %s, %s,"
            " coalesce(%s, now())) RETURNING patient_id, external_ref, display_name, birth_year,"
            " sex, hr_max_bpm, hr_rest_bpm, timezone, enrolled_at",
            (
                external_ref,
                display_name,
                birth_year,
                sex,
                hr_max_bpm,
                hr_rest_bpm,
                timezone,
                enrolled_at,
            ),
        )
        patient = cur.fetchone()
    assert patient is not None
    return patient


class InvalidTimezoneError(StoreError, ValueError):
    """A time zone name that is not in the IANA database."""


def check_timezone(name: str) -> None:
    """Raise `InvalidTimezoneError` unless `name` is a known IANA time zone."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidTimezoneError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin"
        ) from exc


def get_patient(conn: psycopg.Connection[Any], patient_id: int) -> Patient:
    """The patient with `patient_id`, or `NotFoundError`."""
    with conn.cursor(row_factory=class_row(Patient)) as cur:
        cur.execute(
            "SELECT patient_id, external_ref, display_name, birth_year, sex, hr_max_bpm,"
            " hr_rest_bpm, timezone, enrolled_at FROM patient WHERE patient_id = %s",
            (patient_id,),
        )
        patient = cur.fetchone()
    if patient is None:
        raise NotFoundError(f"no patient {patient_id}")
    return patient


def patient_id_by_ref(conn: psycopg.Connection[Any], external_ref: str) -> int | None:
    """The id of the patient with `external_ref`, or None when there is none."""
    row = conn.execute(
        "SELECT patient_id FROM patient WHERE external_ref = %s", (external_ref,)
    ).fetchone()
    return None if row is None else int(row[0])


def create_clinician(
    conn: psycopg.Connection[Any], *, username: str, display_name: str, role: str = "clinician"
) -> int:
    """Add a clinician account and return its id."""
    row = conn.execute(
        "INSERT INTO clinician (username, display_name, role) VALUES (%s, %s, %s)"
        " RETURNING clinician_id",
        (username, display_name, role),
    ).fetchone()
    assert row is not None
    return int(row[0])


def assign_care_team(
    conn: psycopg.Connection[Any],
    *,
    clinician_id: int,
    patient_id: int,
    role: str = "physiotherapist",
) -> None:
    """Let a clinician see a patient (idempotent)."""
    conn.execute(
        "INSERT INTO care_team (clinician_id, patient_id, role) VALUES (%s, %s, %s)"
        " ON CONFLICT (clinician_id, patient_id) DO UPDATE SET role = excluded.role",
        (clinician_id, patient_id, role),
    )


CARE_TEAM_ROLES: Final = ("physiotherapist", "psychologist", "physician", "nurse", "other")
"""What a clinician may be on a care team (the CHECK of `care_team.role`)."""


@dataclass(frozen=True)
class CareTeamMember:
    """A clinician on a patient's care team."""

    clinician_id: int
    display_name: str
    role: str
    since: datetime


def get_clinician(conn: psycopg.Connection[Any], clinician_id: int) -> str:
    """The display name of clinician `clinician_id`, or `NotFoundError`."""
    row = conn.execute(
        "SELECT display_name FROM clinician WHERE clinician_id = %s", (clinician_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError(f"no clinician {clinician_id}")
    return str(row[0])


def care_team_of(conn: psycopg.Connection[Any], patient_id: int) -> list[CareTeamMember]:
    """The clinicians on the patient's care team, longest-serving first."""
    with conn.cursor(row_factory=class_row(CareTeamMember)) as cur:
        cur.execute(
            "SELECT ct.clinician_id, c.display_name, ct.role, ct.since FROM care_team ct"
            " JOIN clinician c USING (clinician_id) WHERE ct.patient_id = %s"
            " ORDER BY ct.since, ct.clinician_id",
            (patient_id,),
        )
        return cur.fetchall()


def patients_of(conn: psycopg.Connection[Any], clinician_id: int) -> list[int]:
    """The ids of the patients on clinician `clinician_id`'s care team."""
    rows = conn.execute(
        "SELECT patient_id FROM care_team WHERE clinician_id = %s ORDER BY patient_id",
        (clinician_id,),
    ).fetchall()
    return [int(r[0]) for r in rows]


def remove_care_team(conn: psycopg.Connection[Any], *, clinician_id: int, patient_id: int) -> bool:
    """Take a clinician off a patient's care team; False when they were not on it."""
    row = conn.execute(
        "DELETE FROM care_team WHERE clinician_id = %s AND patient_id = %s RETURNING 1",
        (clinician_id, patient_id),
    ).fetchone()
    return row is not None


_DEVICE_COLS = sql.SQL(", ").join(
    map(
        sql.Identifier,
        ("device_id", "address", "name", "profile", "patient_id", "first_seen", "last_seen"),
    )
)

_MAC = re.compile(r"[0-9A-F]{2}(?:([:-])[0-9A-F]{2})(?:\1[0-9A-F]{2}){4}")
_UUID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")


class InvalidAddressError(StoreError, ValueError):
    """A device address that is neither a Bluetooth address nor a CoreBluetooth identifier."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(
            f"invalid device address {address!r}: expected a Bluetooth address such as"
            " AA:BB:CC:DD:EE:FF, or on macOS the device UUID a scan prints"
            " (1F2E3D4C-5B6A-4789-9ABC-DEF012345678)"
        )


def normalize_address(address: str) -> str:
    """The canonical (upper-case, colon-separated) form of a device address, else an error.

    Two forms reach Paceline, both as bleak reports them: a 48-bit Bluetooth device
    address (BlueZ on Linux, Windows; six hex octets, written with colons, or with
    hyphens as Windows tools print them), and on macOS the 128-bit UUID CoreBluetooth
    gives each peripheral instead, because macOS never exposes the radio's address to
    applications (the UUID is stable per host, not across machines).
    """
    text = address.strip().upper()
    if _MAC.fullmatch(text):
        return text.replace("-", ":")
    if _UUID.fullmatch(text):
        return text
    raise InvalidAddressError(address)


def register_device(
    conn: psycopg.Connection[Any],
    *,
    address: str,
    name: str | None = None,
    profile: str = "unknown",
) -> Device:
    """Record a wearable by BLE address (idempotent: a known address updates name and profile).

    Raises `InvalidAddressError` for an address `normalize_address` does not accept.
    """
    address = normalize_address(address)
    with conn.cursor(row_factory=class_row(Device)) as cur:
        cur.execute(
            sql.SQL(
                "INSERT INTO device (address, name, profile) VALUES (%s, %s, %s)"
                " ON CONFLICT (address) DO UPDATE SET name = coalesce(excluded.name, device.name),"
                " profile = CASE WHEN excluded.profile = 'unknown' THEN device.profile"
                " ELSE excluded.profile END"
                " RETURNING {}"
            ).format(_DEVICE_COLS),
            (address, name, profile),
        )
        device = cur.fetchone()
    assert device is not None
    return device


def bind_device(conn: psycopg.Connection[Any], *, address: str, patient_id: int) -> Device:
    """Assign a registered wearable to a patient; its samples then count as theirs.

    Raises `NotFoundError` for an unknown patient or device and `InvalidAddressError`
    for a malformed address; nothing is written then.
    """
    address = normalize_address(address)
    get_patient(conn, patient_id)
    with conn.cursor(row_factory=class_row(Device)) as cur:
        cur.execute(
            sql.SQL(
                "UPDATE device SET patient_id = %s, bound_at = now() WHERE address = %s"
                " RETURNING {}"
            ).format(_DEVICE_COLS),
            (patient_id, address),
        )
        device = cur.fetchone()
    if device is None:
        raise NotFoundError(f"no device with address {address}; scan or register it first")
    return device


def device_owners(
    conn: psycopg.Connection[Any], device_ids: Sequence[int], *, ahead_s: float
) -> tuple[dict[int, int | None], int]:
    """Which patient each known device is bound to (None: unbound), in one round trip.

    Also returns the server's clock plus `ahead_s` in epoch microseconds: the latest
    sample time the writer accepts. Unknown devices are absent from the mapping.
    """
    rows = conn.execute(
        "SELECT d.device_id, d.patient_id,"
        " (extract(epoch FROM now() + make_interval(secs => %s)) * 1000000)::bigint"
        " FROM unnest(%s::bigint[]) AS k(device_id) LEFT JOIN device d USING (device_id)",
        (ahead_s, list(device_ids)),
    ).fetchall()
    if rows:
        limit_us = int(rows[0][2])
    else:
        row = conn.execute(
            "SELECT (extract(epoch FROM now() + make_interval(secs => %s)) * 1000000)::bigint",
            (ahead_s,),
        ).fetchone()
        assert row is not None
        limit_us = int(row[0])
    bound = {int(d): (None if p is None else int(p)) for d, p, _limit in rows if d is not None}
    return bound, limit_us


def list_devices(conn: psycopg.Connection[Any], *, bound_only: bool = False) -> list[Device]:
    """All registered wearables (only those bound to a patient with `bound_only`)."""
    where = sql.SQL(" WHERE patient_id IS NOT NULL" if bound_only else "")
    with conn.cursor(row_factory=class_row(Device)) as cur:
        cur.execute(
            sql.SQL("SELECT {} FROM device{} ORDER BY device_id").format(_DEVICE_COLS, where)
        )
        return cur.fetchall()


STREAM_TABLES: Final = ("hr_sample", "rr_interval", "step_sample")
"""The raw sample tables, each keyed by (patient_id, device_id, time)."""


def newest_sample_time(
    conn: psycopg.Connection[Any], devices: Iterable[tuple[int, int]]
) -> datetime | None:
    """The time of the newest stored sample of any of `devices` ((patient_id, device_id) pairs).

    None when none of them has a sample. One index probe per device and stream table.
    """
    newest: datetime | None = None
    for patient_id, device_id in devices:
        for table in STREAM_TABLES:
            row = conn.execute(
                sql.SQL("SELECT max(time) FROM {} WHERE patient_id = %s AND device_id = %s").format(
                    sql.Identifier(table)
                ),
                (patient_id, device_id),
            ).fetchone()
            if row is not None and row[0] is not None and (newest is None or row[0] > newest):
                newest = row[0]
    return newest


def record_battery_levels(
    conn: psycopg.Connection[Any], levels: Mapping[int, tuple[int, datetime]]
) -> int:
    """Store each device's battery level (percent, when it was read) unless a newer one is stored.

    The reading's time decides, not the order of arrival: a gateway that was offline
    uploads late, and a wearable may have moved to another gateway meanwhile. Devices
    the database does not know are skipped. Returns how many device rows changed.
    """
    for device_id, (percent, at) in levels.items():
        if not 0 <= percent <= 100 or at.tzinfo is None:
            raise InvalidBatteryLevelError(device_id, percent, at)
    if not levels:
        return 0
    ids = sorted(levels)
    cur = conn.execute(
        "UPDATE device d SET battery_pct = k.pct, battery_at = k.at"
        " FROM unnest(%s::bigint[], %s::smallint[], %s::timestamptz[]) AS k(did, pct, at)"
        " WHERE d.device_id = k.did AND (d.battery_at IS NULL OR d.battery_at < k.at)",
        (ids, [levels[i][0] for i in ids], [levels[i][1] for i in ids]),
    )
    return max(cur.rowcount, 0)
