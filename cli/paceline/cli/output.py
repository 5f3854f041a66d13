"""How the clinic commands print: a table for people, one JSON document with `--json`.

Every listing's `--json` prints exactly one JSON document on standard output (an
array of objects for a listing, one object for `show`), so that a script can
`json.load` it whole. Dataclasses become objects with their field names as keys,
instants ISO 8601 with their offset, days ISO dates, enums their value.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any


def plain(value: Any) -> Any:
    """`value` as JSON-ready Python: dataclasses, mappings and sequences walked, dates as text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def emit_json(document: Any) -> None:
    """Print `document` as one JSON document (sorted keys, one line)."""
    sys.stdout.write(json.dumps(plain(document), sort_keys=True) + "\n")
    sys.stdout.flush()


def add_json_option(parser: Any, shape: str) -> None:
    """The `--json` option of a listing, its help naming the document's shape."""
    parser.add_argument("--json", action="store_true", help=f"print one JSON document: {shape}")
