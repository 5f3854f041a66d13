"""The demo's simulated cohort and its back-filled history, day by day through the real path.

Each simulated patient wears a PineTime-style watch (a device row bound to them)
and follows a persona of `paceline.pacing.simulate` against whatever quota the
plan sets. One back-filled day of the whole cohort is:

1. every patient's day of samples into the gateway spool (`paceline.ingest.backfill`),
   the diary at 20:00 and, once a week, the TSK-11 through `paceline.pacing.intake`;
2. the gateway's uploader drains the spool into the store (`Uploader.drain`);
3. the worker's own job bodies: the rollup of each patient's new samples
   (`rollup(after=defer_evaluation)`) and the evaluation of the days it listed
   (`evaluate_due`), whose alerts defer their deliveries onto the job queue.

The next day is simulated against the quota that evaluation set. Where the
history starts and ends comes from what is stored: a patient is back-filled from
the day after their newest stored sample (or their enrolment) to yesterday, so
a second run adds only the days since the first and never lays a second set of
samples over stored ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final

import psycopg

from paceline.devices.simulator import WearableKind, fake_address
from paceline.devices.simulator.physiology import Patient
from paceline.ingest.backfill import WornDay, day_chunks
from paceline.ingest.simulation import PROFILE_OF_KIND, SIM_ADDRESS_PREFIX
from paceline.ingest.spool import Spool
from paceline.ingest.uploader import Uploader
from paceline.pacing import intake, planning, records
from paceline.pacing.alerts import DeliveryConfig
from paceline.pacing.jobs.tasks import defer_evaluation, evaluate_due
from paceline.pacing.jobs.timesource import REAL_TIME
from paceline.pacing.questionnaires import InstrumentName
from paceline.pacing.records import set_patient_contact
from paceline.pacing.rollup import rollup
from paceline.pacing.simulate import Persona, SimDay, SimPatient
from paceline.store import registry

logger = logging.getLogger(__name__)

KIND: Final = WearableKind.PINETIME
"""What every simulated patient wears (heart rate and a step counter)."""

PERSONAS: Final = (
    (Persona.STEADY, "steady progresser", 40.0),
    (Persona.BOOM_BUST, "boom-buster", 40.0),
    (Persona.AVOIDER, "fear-avoider", 30.0),
    (Persona.FLARE_AFTER_SPIKE, "flare after a spike", 40.0),
    (Persona.MISSING_WEAR, "patchy wear", 40.0),
    (Persona.STEADY, "steady progresser", 35.0),
    (Persona.STEADY, "steady progresser", 45.0),
    (Persona.BOOM_BUST, "boom-buster", 35.0),
)
"""The cohort in order; a larger one cycles through it again."""

FIRST_NAMES: Final = (
    "Alex", "Billie", "Casey", "Devi", "Emre", "Femi", "Gale", "Hana", "Ines", "Jun",
    "Kofi", "Lena", "Mio", "Noor", "Oskar", "Pia",
)  # fmt: skip

PUT_ON: Final = time(7)
"""When the simulated patients put their watch on."""
DIARY_AT: Final = time(20)
QUESTIONNAIRE_AT: Final = time(20, 5)
EVALUATED_AT: Final = time(9)
"""When a back-filled day's evaluation (and its alerts) is dated: the next morning."""
QUESTIONNAIRE_EVERY_DAYS: Final = 7


@dataclass
class Member:
    """One simulated patient: who, which persona, which device, and the persona's state."""

    number: int
    patient_id: int
    device_id: int
    persona: Persona
    label: str
    display_name: str
    physiology: Patient
    sim: SimPatient
    ctx: records.PatientContext
    days: list[date] = field(default_factory=list)

    @property
    def address(self) -> str:
        """The watch's (simulated, static random) Bluetooth address."""
        return device_address(self.number)


def device_address(number: int) -> str:
    """The address of member `number`'s watch; the same as `build_fleet`'s wearable `number`."""
    return fake_address(number, prefix=SIM_ADDRESS_PREFIX)


def physiology(number: int) -> Patient:
    """Member `number`'s physiology; the same patient `build_fleet` gives wearable `number`."""
    return Patient.sample(number - 1)


def enrol(
    conn: psycopg.Connection[Any], size: int, *, clinician_id: int, days: int, today: date
) -> list[Member]:
    """The cohort's first `size` members, enrolled `days` days before `today` on first use."""
    members = []
    for number in range(1, size + 1):
        persona, label, tolerance = PERSONAS[(number - 1) % len(PERSONAS)]
        ref = f"DEMO-{number:02d}"
        name = f"{FIRST_NAMES[(number - 1) % len(FIRST_NAMES)]} ({label}, simulated)"
        patient_id = registry.patient_id_by_ref(conn, ref)
        if patient_id is None:
            patient = registry.create_patient(
                conn,
                external_ref=ref,
                display_name=name,
                birth_year=today.year - round(physiology(number).age_years),
                enrolled_at=datetime.combine(today - timedelta(days=days), time(0), UTC),
            )
            patient_id = patient.patient_id
            registry.assign_care_team(conn, clinician_id=clinician_id, patient_id=patient_id)
            set_patient_contact(
                conn,
                patient_id,
                email=f"{ref.lower()}@patients.demo.invalid",
                diary_reminder_at=None,
            )
        registry.register_device(
            conn,
            address=device_address(number),
            name=f"PineTime {number:02d}",
            profile=PROFILE_OF_KIND[KIND],
        )
        device = registry.bind_device(conn, address=device_address(number), patient_id=patient_id)
        ctx = records.patient_context(conn, patient_id)
        members.append(
            Member(
                number=number,
                patient_id=patient_id,
                device_id=device.device_id,
                persona=persona,
                label=label,
                display_name=registry.get_patient(conn, patient_id).display_name,
                physiology=physiology(number),
                sim=SimPatient(persona, seed=number, tolerance_min=tolerance),
                ctx=ctx,
            )
        )
    conn.commit()
    return members


def plan_history(conn: psycopg.Connection[Any], members: list[Member], today: date) -> int:
    """Decide each member's days to back-fill from what is stored; the patient-days in all.

    A member continues the day after their newest stored sample (their enrolment
    day when there is none) up to yesterday. Their persona is played through the
    days already stored, so that it continues where it was (same phase, same
    random draws) rather than starting its story again.
    """
    total = 0
    for m in members:
        newest = registry.newest_sample_time(conn, [(m.patient_id, m.device_id)])
        first = m.ctx.enrolled_day if newest is None else m.ctx.local_day(newest) + timedelta(1)
        for i in range((first - m.ctx.enrolled_day).days):
            m.sim.next_day(m.ctx.enrolled_day + timedelta(days=i), None)
        m.days = [first + timedelta(days=i) for i in range(max(0, (today - first).days))]
        total += len(m.days)
    return total


def _tsk11(fear: int, day_index: int) -> list[int]:
    """A TSK-11 answer sheet (items 1-4) that follows the diary's fear of movement."""
    level = 1 + min(3, round(fear / 3))
    return [max(1, min(4, level + (-1 if (i + day_index) % 5 == 0 else 0))) for i in range(11)]


def _self_reports(conn: psycopg.Connection[Any], m: Member, d: date, sd: SimDay) -> None:
    """The day's diary and, once a week, the TSK-11, through the patient intake."""
    if sd.pain is None:
        return
    when = datetime.combine(d, DIARY_AT, m.ctx.zone)
    intake.submit_diary(
        conn,
        m.patient_id,
        reported_at=when,
        pain_now=sd.pain,
        pain_average=sd.pain,
        pain_worst=sd.pain,
        sleep_quality=sd.sleep,
        fear_of_movement=sd.fear,
        idempotency_key=f"demo:{m.patient_id}:{d.isoformat()}",
        now=when,
    )
    index = (d - m.ctx.enrolled_day).days
    if index % QUESTIONNAIRE_EVERY_DAYS == 0 and sd.fear is not None:
        at = datetime.combine(d, QUESTIONNAIRE_AT, m.ctx.zone)
        intake.submit_questionnaire(
            conn,
            m.patient_id,
            InstrumentName.TSK_11,
            _tsk11(sd.fear, index),
            answered_at=at,
            idempotency_key=f"demo-tsk:{m.patient_id}:{d.isoformat()}",
            now=at,
        )


@dataclass(frozen=True)
class Progress:
    """Callbacks the back-fill reports to, one per stage."""

    spooled: Callable[[int], None]
    uploaded: Callable[[int], None]
    evaluated: Callable[[int], None]


def backfill(
    members: list[Member],
    *,
    admin_dsn: str,
    worker_dsn: str,
    uploader: Uploader,
    spool: Spool,
    config: DeliveryConfig,
    progress: Progress,
    now: Callable[[], datetime] = REAL_TIME,
) -> None:
    """Back-fill every member's planned days, the whole cohort one day at a time.

    `now` is the scheduler's clock: a day is evaluated as of the next morning, or of
    `now()` when that morning has not come yet.
    """
    days = sorted({d for m in members for d in m.days})
    with psycopg.connect(admin_dsn) as admin, psycopg.connect(worker_dsn) as worker:
        for d in days:
            today = [m for m in members if d in m.days]
            for m in today:
                plan = planning.current_plan(admin, m.patient_id, d)
                sd = m.sim.next_day(d, None if plan is None else plan.quota)
                if sd.reported and sd.wear_min > 0:
                    start = datetime.combine(d, PUT_ON, m.ctx.zone)
                    worn = WornDay(start, round(sd.wear_min), round(sd.active_min), sd.steps)
                    spool.append(
                        day_chunks(m.patient_id, m.device_id, m.physiology, worn, seed=m.number)
                    )
                _self_reports(admin, m, d, sd)
                admin.commit()
                progress.spooled(1)
            for report in uploader.drain():
                progress.uploaded(report.rows)
            for m in today:
                rollup(worker, patient_id=m.patient_id, after=defer_evaluation)
                morning = datetime.combine(d + timedelta(days=1), EVALUATED_AT, m.ctx.zone)
                evaluate_due(worker, m.patient_id, config=config, now=min(morning, now()))
                worker.commit()
                progress.evaluated(1)
