"""Exports of one patient's results for a date range: FHIR R4 and CSV, both audited.

- `reads`: the SQL of the exports (daily metrics, diary, questionnaires), read in
  one transaction together with the audit entry of the export.
- `fhir`: a FHIR R4 ``Bundle`` (pure: rows in, JSON-able dict out).
- `tables`: CSV files, one per table, with documented columns.

`export_fhir` and `export_csv` are the entry points (the CLI's ``paceline export``
and the dashboard's downloads call them).
"""

from __future__ import annotations

from paceline.pacing.export.entry import ExportError, export_csv, export_fhir

__all__ = ["ExportError", "export_csv", "export_fhir"]
