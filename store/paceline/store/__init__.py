"""Storage: connections, the embedded PostgreSQL default, migrations, TimescaleDB, the batch writer.

`paceline.store` holds no clinical rules; it stores and reads.
"""

from __future__ import annotations

from paceline.store.columns import ColumnError, HrRows, RrRows, StepRows
from paceline.store.connection import connect
from paceline.store.errors import (
    BatchConflictError,
    BatchRejectedError,
    DatabaseUrlError,
    DataDirError,
    MigrationError,
    ServerUnreachableError,
    SpoolRegressionError,
    StoreError,
)
from paceline.store.writer import (
    Batch,
    BatchIdentity,
    WriteResult,
    batch_identity,
    write_batch,
)

__all__ = [
    "Batch",
    "BatchConflictError",
    "BatchIdentity",
    "BatchRejectedError",
    "ColumnError",
    "DataDirError",
    "DatabaseUrlError",
    "HrRows",
    "MigrationError",
    "RrRows",
    "ServerUnreachableError",
    "SpoolRegressionError",
    "StepRows",
    "StoreError",
    "WriteResult",
    "batch_identity",
    "connect",
    "write_batch",
]
