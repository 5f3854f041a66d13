"""Small builders of real rows for tests (through the store's own API, never raw fakes)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg

from paceline.store import registry


def patient_with_device(
    conn: psycopg.Connection[Any], *, birth_year: int = 1980, sex: str = "female"
) -> tuple[int, int]:
    """Enrol a patient, register and bind one wearable; return (patient_id, device_id)."""
    tag = uuid.uuid4().hex[:10]
    patient = registry.create_patient(
        conn, external_ref=f"P-{tag}", display_name=f"Patient {tag}", birth_year=birth_year, sex=sex
    )
    address = ":".join(tag[i : i + 2] for i in range(0, 10, 2)) + ":00"
    registry.register_device(conn, address=address, name="HR strap", profile="heart_rate_strap")
    device = registry.bind_device(conn, address=address, patient_id=patient.patient_id)
    conn.commit()
    return patient.patient_id, device.device_id
