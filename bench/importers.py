"""Importers against their parsers alone: a generated >= 1 GB Apple Health export and FIT files.

    python -P bench/importers.py [--xml-mb 1100] [--fit-records 400000] [--dsn postgresql://...]

For each input the same run measures

- the import: `paceline.ingest.importers.import_file` (parse, check, spill to
  temporary columns, write every batch through `write_batch`) into a fresh patient;
- the parser alone: `lxml.etree.iterparse` with the same options and tag filter,
  clearing each element and doing nothing else, or `fitdecode.FitReader` reading
  every frame and doing nothing with it;

each in a child process of its own, so that its peak resident memory (from
`wait4`'s rusage) is its own, alternating which goes first. The ratio is import
time over parser time (target <= 1.5). Memory must be flat in file size: the
export is also imported at a quarter of the size, and the peak at full size may
exceed the quarter's by at most 25 % + 32 MB. The daily rollup after the import
is timed too but not part of the ratio (it is the same as for live data).

Generated data: a watch recording heart rate every 5 s (with the motion-context
metadata real exports carry), energy records the importer skips, phone and watch
step counts over overlapping intervals, and SDNN records with 60-beat lists; FIT
files are written here with the FIT SDK's header and CRC (record messages with
heart rate, hrv messages with RR intervals). Everything goes to a temporary
directory that is removed at the end. Exits 1 when a target is missed; the last
line is JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fitdecode

from paceline.cli.importing import _minutes
from paceline.ingest.importers import import_file
from paceline.ingest.importers.apple import hardened_iterparse
from paceline.pacing.rollup import rollup
from paceline.store import connect, registry
from paceline.store.testing import temporary_database, temporary_server

RATIO_TARGET = 1.5
FLAT_FACTOR = 1.25
FLAT_SLACK_MB = 32
FIT_EPOCH = datetime(1989, 12, 31, tzinfo=UTC)

# --- generated inputs ---------------------------------------------------------------------

_DEVICE = (
    "&lt;&lt;HKDevice: 0x283e1c8c0&gt;, name:Apple Watch, manufacturer:Apple Inc., model:Watch,"
    " hardware:Watch6,1, software:10.1&gt;"
)
_DTD = """<!DOCTYPE HealthData [
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST HealthData locale CDATA #REQUIRED>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record type CDATA #REQUIRED unit CDATA #IMPLIED value CDATA #IMPLIED>
]>
"""


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S +0100")


def write_export(path: Path, target_bytes: int, start: datetime) -> int:
    """Write an Apple Health export.xml of about `target_bytes`; return its Record count."""
    records = 0
    t = start
    local = timedelta(hours=1)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n' + _DTD + '<HealthData locale="en_GB">\n'
        )
        fh.write(f' <ExportDate value="{_stamp(start)}"/>\n <Me/>\n')
        written = fh.tell()
        while written < target_bytes:
            parts = []
            for i in range(1000):
                s = _stamp(t + local)
                parts.append(
                    f' <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="Ana’s Apple Watch"'
                    f' sourceVersion="10.1" device="{_DEVICE}" unit="count/min" creationDate="{s}"'
                    f' startDate="{s}" endDate="{s}" value="{60 + (i * 7) % 60}">\n'
                    '  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/>\n'
                    " </Record>\n"
                )
                if i % 4 == 0:
                    parts.append(
                        ' <Record type="HKQuantityTypeIdentifierActiveEnergyBurned" sourceName="Ana’s'
                        f' Apple Watch" sourceVersion="10.1" device="{_DEVICE}" unit="kcal"'
                        f' creationDate="{s}" startDate="{s}" endDate="{s}" value="0.42"/>\n'
                    )
                if i % 12 == 0:
                    e = _stamp(t + local + timedelta(seconds=60))
                    for source in ("Ana’s iPhone", "Ana’s Apple Watch"):
                        parts.append(
                            f' <Record type="HKQuantityTypeIdentifierStepCount" sourceName="{source}"'
                            f' unit="count" creationDate="{e}" startDate="{s}" endDate="{e}"'
                            f' value="{40 + i % 50}"/>\n'
                        )
                if i == 500:
                    beats = "".join(
                        f'   <InstantaneousBeatsPerMinute bpm="{58 + k % 5}"'
                        f' time="{(t + local + timedelta(seconds=k)).strftime("%H:%M:%S")}.{k % 100:02d}"/>\n'
                        for k in range(60)
                    )
                    e = _stamp(t + local + timedelta(seconds=60))
                    parts.append(
                        ' <Record type="HKQuantityTypeIdentifierHeartRateVariabilitySDNN"'
                        f' sourceName="Ana’s Apple Watch" unit="ms" startDate="{s}" endDate="{e}"'
                        f' value="41.5">\n  <HeartRateVariabilityMetadataList>\n{beats}'
                        "  </HeartRateVariabilityMetadataList>\n </Record>\n"
                    )
                t += timedelta(seconds=5)
            records += sum(p.count("<Record ") for p in parts)
            chunk = "".join(parts)
            fh.write(chunk)
            written += len(chunk.encode())
        fh.write("</HealthData>\n")
    return records


_CRC_TABLE = (
    0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401,
    0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01, 0x8801, 0x4400,
)  # fmt: skip


def fit_crc(data: bytes, crc: int = 0) -> int:
    """CRC-16 of the FIT SDK (``FitCRC_Get16``)."""
    table = _CRC_TABLE
    for byte in data:
        tmp = table[crc & 0xF]
        crc = ((crc >> 4) & 0x0FFF) ^ tmp ^ table[byte & 0xF]
        tmp = table[crc & 0xF]
        crc = ((crc >> 4) & 0x0FFF) ^ tmp ^ table[(byte >> 4) & 0xF]
    return crc


def _definition(local: int, global_num: int, fields: list[tuple[int, int, int]]) -> bytes:
    head = struct.pack("<BBBHB", 0x40 | local, 0, 0, global_num, len(fields))
    return head + b"".join(struct.pack("<BBB", *f) for f in fields)


def write_fit(path: Path, n_records: int, start: datetime, serial: int) -> int:
    """A FIT activity: file_id, a timer start, `n_records` 1 Hz records with heart rate,
    one hrv message (one RR interval) per record. Return the number of HR + RR rows."""
    t0 = int((start - FIT_EPOCH).total_seconds())
    body = [
        _definition(0, 0, [(0, 1, 0x00), (1, 2, 0x84), (3, 4, 0x8C), (4, 4, 0x86)]),
        struct.pack("<BBHII", 0, 4, 1, serial, t0),
        _definition(1, 21, [(253, 4, 0x86), (0, 1, 0x00), (1, 1, 0x00)]),
        struct.pack("<BIBB", 1, t0, 0, 0),
        _definition(2, 20, [(253, 4, 0x86), (3, 1, 0x02)]),
        _definition(3, 78, [(0, 10, 0x84)]),
    ]
    record = struct.Struct("<BIB")
    hrv = struct.Struct("<B5H")
    for i in range(n_records):
        body.append(record.pack(2, t0 + i, 60 + i % 50))
        body.append(hrv.pack(3, 800 + i % 200, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF))
    data = b"".join(body)
    header = struct.pack("<BBHI4s", 14, 0x20, 2132, len(data), b".FIT")
    header += struct.pack("<H", fit_crc(header))
    crc = fit_crc(data, fit_crc(header))
    path.write_bytes(header + data + struct.pack("<H", crc))
    return 2 * n_records


# --- the two workloads, each run in a child process -----------------------------------------


def child_parse(path: Path) -> dict[str, Any]:
    """The parser alone, with the importer's options: every element or frame read, nothing done.

    The XML goes through `hardened_iterparse` (the importer's options and tag
    filter), each element cleared and its finished siblings pruned as the
    importer does, so the floor is the importer's parse minus its own work.
    """
    cpu0 = _cpu_s()
    began = time.perf_counter()
    n = 0
    if path.suffix == ".fit":
        with fitdecode.FitReader(
            path,
            check_crc=fitdecode.CrcCheck.RAISE,
            error_handling=fitdecode.ErrorHandling.RAISE,
        ) as reader:
            for frame in reader:
                n += frame.frame_type == fitdecode.FIT_FRAME_DATA
    else:
        with path.open("rb") as fh:
            events = hardened_iterparse(fh)
            for n, (_, el) in enumerate(events, start=1):
                el.clear(keep_tail=False)
                if n % 1024 == 0:
                    parent = el.getparent()
                    if parent is not None:
                        del parent[:-1]
    return {"seconds": time.perf_counter() - began, "items": n, "cpu_s": _cpu_s() - cpu0}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_import(path: Path, dsn: str, patient_id: int) -> dict[str, Any]:
    """`import_file` of `path` for `patient_id` (what `paceline import` runs), then, timed
    apart, the daily rollup."""
    with connect(dsn, autocommit=True) as conn:
        cpu0 = _cpu_s()
        began = time.perf_counter()
        summary = import_file(
            conn,
            path,
            patient_id=patient_id,
            timezone="Europe/London",
            birth_year=1970,
            split_minutes=_minutes,
            workdir=path.parent,
        )
        seconds = time.perf_counter() - began
        cpu_s = _cpu_s() - cpu0
        began = time.perf_counter()
        rolled = rollup(conn, patient_id=patient_id)
        rollup_s = time.perf_counter() - began
    rows = summary.hr + summary.rr + summary.steps + summary.sdnn
    return {
        "seconds": seconds,
        "cpu_s": cpu_s,
        "rows": rows,
        "rollup_s": rollup_s,
        "days": rolled.days,
    }


def run_child(*args: str) -> tuple[dict[str, Any], float]:
    """Run this script as a child; return its JSON result and its peak RSS in MB."""
    proc = subprocess.Popen(
        [sys.executable, "-P", __file__, "--child", *args], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed with {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def new_patient(dsn: str, label: str) -> int:
    with connect(dsn, autocommit=True) as conn:
        return registry.create_patient(
            conn,
            external_ref=f"bench-{label}-{time.time_ns()}",
            display_name=label,
            birth_year=1970,
        ).patient_id


def compare(path: Path, dsn: str, label: str) -> dict[str, Any]:
    """Import and parse-only of `path`, alternating the order; the figures of both."""
    parse, parse_mb = run_child("parse", str(path))
    imported, import_mb = run_child("import", str(path), dsn, str(new_patient(dsn, label)))
    parse2, parse2_mb = run_child("parse", str(path))
    parse_s = min(parse["seconds"], parse2["seconds"])
    parse_cpu_s = min(parse["cpu_s"], parse2["cpu_s"])
    return {
        "bytes": path.stat().st_size,
        "rows": imported["rows"],
        "import_s": round(imported["seconds"], 2),
        "parse_s": round(parse_s, 2),
        "rollup_s": round(imported["rollup_s"], 2),
        "days": imported["days"],
        "import_rows_per_s": round(imported["rows"] / imported["seconds"]),
        "parse_items_per_s": round(parse["items"] / parse_s),
        "ratio": round(imported["seconds"] / parse_s, 3),
        "import_cpu_s": round(imported["cpu_s"], 2),
        "parse_cpu_s": round(parse_cpu_s, 2),
        "cpu_ratio": round(imported["cpu_s"] / parse_cpu_s, 3),
        "import_peak_mb": round(import_mb, 1),
        "parse_peak_mb": round(max(parse_mb, parse2_mb), 1),
    }


def main() -> None:
    """Generate the inputs, run both workloads on each, print the figures."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        if kind == "parse":
            result = child_parse(Path(rest[0]))
        else:
            result = child_import(Path(rest[0]), rest[1], int(rest[2]))
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--xml-mb", type=int, default=1100, help="size of the large export")
    parser.add_argument(
        "--fit-records", type=int, default=400_000, help="records over all FIT files"
    )
    parser.add_argument("--fit-files", type=int, default=4)
    parser.add_argument("--dsn", help="server to use (default: a throwaway embedded PostgreSQL)")
    args = parser.parse_args()

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=400)
    with contextlib.ExitStack() as stack:
        server = args.dsn or stack.enter_context(temporary_server())
        dsn = stack.enter_context(temporary_database(server, "bench_importers"))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="paceline-bench-")))
        large, small = tmp / "export.xml", tmp / "export-quarter.xml"
        write_export(large, args.xml_mb * 1024 * 1024, start)
        write_export(small, args.xml_mb * 1024 * 1024 // 4, start)
        results = {"apple_quarter": compare(small, dsn, "apple-quarter")}
        small.unlink()
        results["apple"] = compare(large, dsn, "apple")
        large.unlink()
        fit_rows = fit_import = fit_parse = fit_import_cpu = fit_parse_cpu = 0.0
        fit_peak = 0.0
        for i in range(args.fit_files):
            path = tmp / f"activity-{i}.fit"
            write_fit(path, args.fit_records // args.fit_files, start + timedelta(days=i), 1000 + i)
            r = compare(path, dsn, f"fit-{i}")
            fit_rows += r["rows"]
            fit_import += r["import_s"]
            fit_parse += r["parse_s"]
            fit_import_cpu += r["import_cpu_s"]
            fit_parse_cpu += r["parse_cpu_s"]
            fit_peak = max(fit_peak, r["import_peak_mb"])
        results["fit"] = {
            "files": args.fit_files,
            "rows": int(fit_rows),
            "import_s": round(fit_import, 2),
            "parse_s": round(fit_parse, 2),
            "import_rows_per_s": round(fit_rows / fit_import),
            "ratio": round(fit_import / fit_parse, 3),
            "import_cpu_s": round(fit_import_cpu, 2),
            "parse_cpu_s": round(fit_parse_cpu, 2),
            "cpu_ratio": round(fit_import_cpu / fit_parse_cpu, 3),
            "import_peak_mb": fit_peak,
        }

    apple, quarter, fit = results["apple"], results["apple_quarter"], results["fit"]
    flat_limit = quarter["import_peak_mb"] * FLAT_FACTOR + FLAT_SLACK_MB
    misses = []
    if apple["ratio"] > RATIO_TARGET:
        misses.append(f"Apple Health import/parse {apple['ratio']} > {RATIO_TARGET}")
    if fit["ratio"] > RATIO_TARGET:
        misses.append(f"FIT import/parse {fit['ratio']} > {RATIO_TARGET}")
    if apple["import_peak_mb"] > flat_limit:
        misses.append(
            f"peak memory not flat: {apple['import_peak_mb']} MB at {apple['bytes']:,} bytes"
            f" vs {quarter['import_peak_mb']} MB at {quarter['bytes']:,}"
        )
    for name, r in results.items():
        print(
            f"{name:<14} {r['rows']:>10,} rows  import {r['import_s']:>7.1f} s"
            f" ({r['import_rows_per_s']:>9,} rows/s)  parser alone {r['parse_s']:>7.1f} s"
            f"  ratio {r['ratio']:.3f} (CPU {r['cpu_ratio']:.3f})  peak {r['import_peak_mb']} MB"
        )
    for miss in misses:
        print(f"MISS: {miss}")
    print(
        json.dumps(
            {
                **results,
                "ratio_target": RATIO_TARGET,
                "flat_limit_mb": round(flat_limit, 1),
                "ok": not misses,
            }
        )
    )
    sys.exit(1 if misses else 0)


if __name__ == "__main__":
    main()
