"""Typed errors of `paceline.pacing`: every one is a `PacingError`, hence a `ValueError`."""

from __future__ import annotations

from datetime import date, datetime


class PacingError(ValueError):
    """Root of every error raised by `paceline.pacing` (invalid clinical input or plan)."""


class OutOfRangeError(PacingError):
    """A rating, answer or setting outside the range its instrument allows."""

    def __init__(self, field: str, value: object, low: float, high: float) -> None:
        self.field = field
        self.value = value
        self.low = low
        self.high = high
        super().__init__(f"{field} must be from {low:g} to {high:g}; got {value!r}")


class NotAnIntegerError(PacingError):
    """A rating that must be a whole number (0-10 scales, questionnaire items) is not one."""

    def __init__(self, field: str, value: object) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field} must be a whole number; got {value!r}")


class NoteError(PacingError):
    """A free-text note that is too long or holds a NUL character."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class ReportTimeError(PacingError):
    """A report dated in the future, before enrolment, or without a time zone."""

    def __init__(self, when: datetime | object, reason: str) -> None:
        self.when = when
        self.reason = reason
        shown = when.isoformat() if isinstance(when, datetime) else repr(when)
        super().__init__(f"time {shown} {reason}")


class InconsistentReportError(PacingError):
    """Ratings that contradict each other (worst pain below pain now, for example)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnknownPatientError(PacingError, LookupError):
    """A patient id that does not exist."""

    def __init__(self, patient_id: int) -> None:
        self.patient_id = patient_id
        super().__init__(f"no patient {patient_id}; enrol the patient first")


class IdempotencyConflictError(PacingError):
    """A client idempotency key reused for a submission with different content."""

    def __init__(self, key: str, existing_id: int) -> None:
        self.key = key
        self.existing_id = existing_id
        super().__init__(
            f"idempotency key {key!r} was already used for a different submission "
            f"(stored as {existing_id}); use a new key for a new entry"
        )


class QuestionnaireError(PacingError):
    """Answers that do not fit the instrument (wrong count, unknown instrument)."""

    def __init__(self, instrument: str, reason: str) -> None:
        self.instrument = instrument
        self.reason = reason
        super().__init__(f"{instrument}: {reason}")


class PlanError(PacingError):
    """A pacing-plan setting or change that cannot be applied."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ExposureError(PacingError):
    """A fear-ladder item or exposure session change that cannot be applied."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnknownExposureError(ExposureError, LookupError):
    """A fear-ladder item or exposure session id that does not exist for the patient."""


class ExerciseError(PacingError):
    """An exercise prescription, target or logged session that cannot be applied."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnknownPrescriptionError(ExerciseError, LookupError):
    """An exercise prescription id that does not exist for the patient."""

    def __init__(self, patient_id: int, prescription_id: int) -> None:
        self.patient_id = patient_id
        self.prescription_id = prescription_id
        super().__init__(f"patient {patient_id} has no exercise prescription {prescription_id}")


class FutureDayError(PacingError):
    """A day asked to be evaluated that has not begun yet in the patient's time zone."""

    def __init__(self, patient_id: int, day: date, local_today: date) -> None:
        self.patient_id = patient_id
        self.day = day
        self.local_today = local_today
        super().__init__(
            f"patient {patient_id}: {day.isoformat()} has not begun yet (the patient's local"
            f" today is {local_today.isoformat()}); only days up to today can be evaluated"
        )


class GoalError(PacingError):
    """A valued goal or a link to it that cannot be applied."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UnknownGoalError(GoalError, LookupError):
    """A goal id that does not exist for the patient."""

    def __init__(self, patient_id: int, goal_id: int) -> None:
        self.patient_id = patient_id
        self.goal_id = goal_id
        super().__init__(f"patient {patient_id} has no goal {goal_id}")
