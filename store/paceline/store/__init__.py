"""Storage: connections, the embedded PostgreSQL default, migrations, TimescaleDB, the batch writer.

`paceline.store` holds no clinical rules; it stores and reads.
"""

from __future__ import annotations

from paceline.store.columns import ColumnError, HrRows, RrRows, StepRows
from paceline.store.connection import connect
from paceline.store.errors import (
    BatchRejectedError,
    DatabaseUrlError,
    DataDirError,
    MigrationError,
    ServerUnreachableError,
    StoreError,
)
from paceline.store.writer import Batch, WriteResult, quarantine, write_batch

__all__ = [
    "Batch",
    "BatchRejectedError",
    "ColumnError",
    "DataDirError",
    "DatabaseUrlError",
    "HrRows",
    "MigrationError",
    "RrRows",
    "ServerUnreachableError",
    "StepRows",
    "StoreError",
    "WriteResult",
    "connect",
    "quarantine",
    "write_batch",
]
