"""Android Health Connect export (a zip around ``health_connect_export.db``): heart rate, steps.

The export is Health Connect's own SQLite database (AOSP, packages/modules/
HealthFitness, ``storage/datatypehelpers``). Read here:

- ``heart_rate_record_series_table`` (``parent_key``, ``epoch_millis``,
  ``beats_per_minute``), joined to ``heart_rate_record_table`` (``row_id``,
  ``app_info_id``) for the writing app;
- ``steps_record_table`` (``start_time``, ``end_time`` in epoch ms, ``count``,
  ``app_info_id``);
- ``application_info_table`` (``row_id``, ``package_name``) names the apps.

Each app is a source of its own (device rows apart), so the same walk counted
by a phone's app and a watch's app is not added up; repeated records of one app
(a sync that wrote a day twice) collapse on the writer's (patient, device, time)
key and, for steps, under the one-device overlap rule. The database is opened
read-only from a private temporary copy (SQLite cannot read from inside a zip).
"""

from __future__ import annotations

import shutil
import sqlite3
import zipfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Final

import numpy as np

from paceline.ingest.importers.collect import Collected, Stream
from paceline.ingest.importers.errors import MalformedFileError
from paceline.ingest.importers.source import require_free_space

_CHUNK: Final = 100_000
_US_PER_MS: Final = 1000


@contextmanager
def _database(path: Path, members: tuple[str, ...], workdir: Path) -> Iterator[Path]:
    if not members:
        yield path
        return
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(members[0])
        require_free_space(path, workdir, info.file_size, "unpacking the Health Connect database")
        target = workdir / "health_connect.db"
        with archive.open(info) as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1024 * 1024)
    yield target


def _apps(db: sqlite3.Connection) -> dict[int, str]:
    try:
        rows = db.execute("SELECT row_id, package_name FROM application_info_table").fetchall()
    except sqlite3.DatabaseError:
        return {}
    return {int(r[0]): str(r[1]) for r in rows}


def _tables(db: sqlite3.Connection) -> set[str]:
    return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def parse(path: Path, members: tuple[str, ...], out: Collected) -> None:
    """Read the export's heart rate and steps into `out`, one source per app."""
    with _database(path, members, out.workdir) as db_path:
        try:
            uri = f"file:{db_path}?mode=ro&immutable=1"
            with closing(sqlite3.connect(uri, uri=True)) as db:
                tables = _tables(db)
                if not {"heart_rate_record_series_table", "steps_record_table"} & tables:
                    raise MalformedFileError(
                        path, "a SQLite database without Health Connect's heart-rate or step tables"
                    )
                apps = _apps(db)
                if {"heart_rate_record_series_table", "heart_rate_record_table"} <= tables:
                    _heart_rate(db, apps, out)
                if "steps_record_table" in tables:
                    _steps(db, apps, out)
        except sqlite3.DatabaseError as exc:
            raise MalformedFileError(
                path, f"the Health Connect database cannot be read: {exc}"
            ) from exc


def _app(apps: dict[int, str], app_id: object) -> str:
    name = apps.get(int(app_id)) if isinstance(app_id, int) else None
    return f"Health Connect {name or 'unknown app'}"


def _per_app(
    cur: sqlite3.Cursor,
    apps: dict[int, str],
    out: Collected,
    stream: Stream,
    names: tuple[str, ...],
) -> None:
    """Hand the cursor's rows (app id, then epoch-ms times and values) to `out`, one source per app."""
    while rows := cur.fetchmany(_CHUNK):
        arr = np.array(rows, dtype=np.float64)
        for app_id in np.unique(arr[:, 0]):
            mine = arr[arr[:, 0] == app_id]
            columns = {
                name: (
                    mine[:, k + 1].astype(np.int64) * _US_PER_MS
                    if name.endswith("_us")
                    else mine[:, k + 1]
                )
                for k, name in enumerate(names)
            }
            out.add(_app(apps, int(app_id)), stream, **columns)


def _heart_rate(db: sqlite3.Connection, apps: dict[int, str], out: Collected) -> None:
    cur = db.execute(
        "SELECT r.app_info_id, s.epoch_millis, s.beats_per_minute"
        " FROM heart_rate_record_series_table s"
        " JOIN heart_rate_record_table r ON s.parent_key = r.row_id"
        " ORDER BY r.app_info_id, s.epoch_millis"
    )
    _per_app(cur, apps, out, "hr", ("time_us", "bpm"))


def _steps(db: sqlite3.Connection, apps: dict[int, str], out: Collected) -> None:
    cur = db.execute(
        "SELECT app_info_id, start_time, end_time, count FROM steps_record_table"
        " ORDER BY app_info_id, start_time"
    )
    _per_app(cur, apps, out, "steps", ("begin_us", "time_us", "steps"))
