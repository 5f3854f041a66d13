"""Streamlit glue for the forms that write: their rating sliders and the save step.

A form's ratings are data in the view models (`my_day.Rating`); `ratings` draws
them. `save` runs a form's write and its audit row in one transaction of the
signed-in person's session, and shows a refused write (`PacingError`) in the
form, so that each page's form reads as what it asks and what it says after.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg
import streamlit as st

from paceline.dashboard import ui
from paceline.dashboard.auth import Identity
from paceline.dashboard.my_day import Rating
from paceline.pacing.errors import PacingError

T = TypeVar("T")


def ratings(fields: Sequence[Rating]) -> dict[str, int]:
    """Each rating as a slider; the values by the keyword each fills."""
    return {f.name: st.slider(f.label, f.low, f.high, f.start, key=f.key) for f in fields}


def save(
    who: Identity,
    write: Callable[[psycopg.Connection[Any]], T],
    *,
    page: str,
    action: str,
    patient_id: int,
    detail: Callable[[T], dict[str, Any]] | None = None,
    refused: type[ValueError] = PacingError,
) -> T | None:
    """`write`, audited as `action`, in one transaction; None (the error shown) if it is `refused`.

    `refused` is what the form shows rather than fails on: pacing's refusals by
    default, any `ValueError` where the page's own view model checks the input too.
    """
    try:
        with ui.person(who) as conn:
            result = write(conn)
            ui.audit(
                conn,
                who,
                page=page,
                action=action,
                patient_id=patient_id,
                detail=None if detail is None else detail(result),
            )
    except refused as exc:
        st.error(str(exc))
        return None
    return result
