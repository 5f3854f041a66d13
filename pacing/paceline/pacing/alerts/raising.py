"""From an evaluation's flags to alerts and their delivery rows, in the evaluation's transaction.

`raise_alerts` reads the patient's latest alert per rule, lets the pure policy
(`policy.decide`) say what opens, continues, resolves and is pushed, writes
that, and writes one `alert_delivery` row per (alert, channel, recipient,
notice): the inbox rows delivered at once, the e-mail and webhook rows
pending. It returns the ids of the pending rows that are due now, for the
caller to defer `deliver` jobs for in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import psycopg

from paceline.pacing import records
from paceline.pacing.alerts.config import EMAIL, INBOX, WEBHOOK, WEBHOOK_ENDPOINT, DeliveryConfig
from paceline.pacing.alerts.policy import (
    DEFAULT_POLICY,
    PLAN_PROGRESSED,
    AlertPolicy,
    AlertState,
    Audience,
    Episode,
    Open,
    Reason,
    Status,
    Urgency,
    decide,
    hot,
    progression_message,
    summarize,
)
from paceline.pacing.flags import Severity
from paceline.store.access import audit

if TYPE_CHECKING:
    from paceline.pacing.engine import Evaluation

ALERT_ACTOR: Final = "alert-policy"


def _state(row: Mapping[str, Any]) -> AlertState:
    """A stored alert as the policy decides on it."""
    notified = row["notified_severity"]
    return AlertState(
        alert_id=row["alert_id"],
        rule_id=row["rule_id"],
        flag_id=row["flag_id"],
        window_start=row["window_start"],
        severity=Severity(row["severity"]),
        status=Status(row["status"]),
        urgency=Urgency(row["urgency"]),
        notified_severity=None if notified is None else Severity(notified),
        last_notified_at=row["last_notified_at"],
        repeats=row["repeats"],
        resolved_at=row["resolved_at"],
        acknowledged=row["acknowledged_at"] is not None,
        notified_findings=tuple(row["notified_findings"]),
    )


@dataclass(frozen=True)
class Push:
    """One notice of one alert, ready to fan out to its recipients' channels."""

    alert_id: int
    notice: int
    severity: Severity
    urgency: Urgency
    #: What this notice is the first to tell about, in the minimum necessary (None: nothing).
    news: str | None = None


#: The key of a day's evidence that lists the findings the episode is made of: the
#: positive red-flag screens of `paceline.pacing.rules.safety.red_flag`.
FINDINGS_KEY: Final = "screen_ids"


def _findings(evidence: Mapping[str, Any]) -> tuple[int, ...]:
    """The ids of the findings listed in an episode's daily evidence, in order."""
    daily = evidence.get("daily")
    found: list[int] = []
    for day in daily if isinstance(daily, Sequence) else ():
        ids = day.get(FINDINGS_KEY) if isinstance(day, Mapping) else None
        for i in ids if isinstance(ids, Sequence) else ():
            if isinstance(i, int) and i not in found:
                found.append(i)
    return tuple(found)


def news_of(evidence: Mapping[str, Any], new: Sequence[int]) -> str | None:
    """What a re-notification says about its new findings: ids, local day and care, no symptom.

    The minimum necessary for a clinician on call: which screen (the dashboard
    shows its answers), the day it was answered and how soon the answer asks
    for medical care (emergency or urgent: the triage level, like the
    severity, naming neither the question nor the pathology).
    """
    daily = evidence.get("daily")
    parts = []
    for day in daily if isinstance(daily, Sequence) else ():
        if not isinstance(day, Mapping):
            continue
        ids = list(day.get(FINDINGS_KEY) or ())
        cares = list(day.get("screen_care") or ())
        for n, i in enumerate(ids):
            if i in new:
                care = cares[n] if n < len(cares) and cares[n] else "unknown"
                parts.append(f"screen {i} answered {day.get('day')} ({care} care)")
    if not parts:
        return None
    return ("positive red-flag answer: " + "; ".join(parts))[:1000]


def _audit(
    conn: psycopg.Connection[Any],
    patient_id: int,
    alert_id: int,
    action: str,
    **detail: Any,
) -> None:
    audit(
        conn,
        actor=ALERT_ACTOR,
        action=action,
        obj="alert",
        patient_id=patient_id,
        detail={"alert_id": alert_id, **detail},
    )


def episodes_of(conn: psycopg.Connection[Any], evaluation: Evaluation) -> list[Episode]:
    """The evaluation's flags as the episodes alerts are about."""
    windows = records.flag_windows(conn, [o.flag_id for o in evaluation.flags])
    out = []
    for o in evaluation.flags:
        if o.flag_id not in windows:
            continue
        start, end = windows[o.flag_id]
        daily = o.flag.evidence.get("daily")
        last = daily[-1] if isinstance(daily, Sequence) and daily else None
        out.append(
            Episode(
                flag_id=o.flag_id,
                rule_id=o.flag.rule_id,
                severity=o.flag.severity,
                window_start=start,
                window_end=end,
                active=o.flag.active and o.status != "resolved",
                summary=summarize(o.flag.rule_id, o.flag.severity, o.flag.evidence),
                detail={"last_day": last, "thresholds": o.flag.evidence.get("thresholds")},
                hot=hot(o.flag.evidence, evaluation.day),
                findings=_findings(o.flag.evidence),
            )
        )
    return out


def fan_out(
    conn: psycopg.Connection[Any],
    patient_id: int,
    pushes: Sequence[Push],
    people: Sequence[records.Person],
    *,
    webhook: bool,
    config: DeliveryConfig,
    policy: AlertPolicy,
    now: datetime,
    quiet_hours: bool = True,
) -> list[int]:
    """Write the push deliveries (grouped per recipient and channel); return those due now."""
    enabled = config.enabled
    immediate = sorted(
        (p for p in pushes if p.urgency is Urgency.IMMEDIATE),
        key=lambda p: (-p.severity.rank, p.alert_id),
    )
    due: list[int] = []

    def write(
        push: Push,
        group: list[int],
        *,
        channel: str,
        recipient: str,
        address: str | None,
        kind: str,
        at: datetime,
        news: str | None,
    ) -> None:
        did = records.insert_delivery(
            conn,
            alert_id=push.alert_id,
            patient_id=patient_id,
            alert_ids=group,
            notice=push.notice,
            channel=channel,
            recipient=recipient,
            address=address,
            kind=kind,
            next_attempt_at=at,
            news=news,
            now=now,
        )
        if did is not None and kind == "immediate" and at <= now:
            due.append(did)

    lead = immediate[0] if immediate else None
    group = [p.alert_id for p in immediate]
    news = "; ".join(p.news for p in immediate if p.news) or None
    for person in people:
        if EMAIL not in enabled or not person.email:
            continue
        zone = ZoneInfo(person.timezone)
        if lead is not None:
            at = policy.push_at(now, zone, lead.severity) if quiet_hours else now
            write(
                lead,
                group,
                channel=EMAIL,
                recipient=person.recipient,
                address=person.email,
                kind="immediate",
                at=at,
                news=news,
            )
        for p in pushes:
            if p.urgency is Urgency.DIGEST:
                at = policy.digest_time(now, zone)
                write(
                    p,
                    [p.alert_id],
                    channel=EMAIL,
                    recipient=person.recipient,
                    address=person.email,
                    kind="digest",
                    at=at,
                    news=p.news,
                )
    if (
        webhook
        and lead is not None
        and WEBHOOK in enabled
        and not records.endpoint_disabled(conn, WEBHOOK_ENDPOINT)
    ):
        write(
            lead,
            group,
            channel=WEBHOOK,
            recipient=WEBHOOK_ENDPOINT,
            address=None,
            kind="immediate",
            at=now,
            news=news,
        )
    return due


def to_inbox(
    conn: psycopg.Connection[Any],
    patient_id: int,
    alert_id: int,
    people: Sequence[records.Person],
    *,
    now: datetime,
) -> None:
    """Put a new alert in each recipient's dashboard inbox (delivered as it is written)."""
    for person in people:
        records.insert_delivery(
            conn,
            alert_id=alert_id,
            patient_id=patient_id,
            alert_ids=[alert_id],
            notice=0,
            channel=INBOX,
            recipient=person.recipient,
            address=None,
            kind="immediate",
            next_attempt_at=None,
            delivered_at=now,
            now=now,
        )


def open_message(
    conn: psycopg.Connection[Any],
    patient_id: int,
    episode: Episode,
    *,
    config: DeliveryConfig,
    policy: AlertPolicy,
    now: datetime,
    quiet_hours: bool = True,
) -> tuple[int | None, list[int]]:
    """Open a message to the patient (reminder, good news) and write its deliveries."""
    alert_id = records.insert_alert(
        conn, patient_id, episode, audience=Audience.PATIENT, urgency=Urgency.IMMEDIATE, now=now
    )
    if alert_id is None:
        return None, []
    _audit(conn, patient_id, alert_id, "alert.open", rule_id=episode.rule_id, audience="patient")
    notice = records.mark_notified(
        conn, alert_id, episode.severity, repeat=False, findings=(), now=now
    )
    person = records.patient_person(conn, patient_id)
    to_inbox(conn, patient_id, alert_id, [person], now=now)
    push = Push(alert_id, notice, episode.severity, Urgency.IMMEDIATE)
    due = fan_out(
        conn,
        patient_id,
        [push],
        [person],
        webhook=False,
        config=config,
        policy=policy,
        now=now,
        quiet_hours=quiet_hours,
    )
    return alert_id, due


def raise_alerts(
    conn: psycopg.Connection[Any],
    evaluation: Evaluation,
    *,
    now: datetime,
    policy: AlertPolicy = DEFAULT_POLICY,
    config: DeliveryConfig | None = None,
) -> list[int]:
    """Create and update the alerts of one evaluated patient-day; return the deliveries due now."""
    config = DeliveryConfig.from_env() if config is None else config
    pid = evaluation.patient_id
    with conn.transaction():
        records.lock_patient(conn, pid)
        episodes = episodes_of(conn, evaluation)
        evidence = {o.flag_id: o.flag.evidence for o in evaluation.flags}
        alerts = {
            rule: _state(row)
            for rule, row in records.latest_alerts(conn, pid, Audience.CARE_TEAM).items()
        }
        decision = decide(
            policy, episodes, alerts, now=now, resolved_flag_ids=evaluation.resolved_flag_ids
        )
        team = records.care_team(conn, pid)
        opened: dict[int, int] = {}
        for op in decision.opens:
            aid = records.insert_alert(
                conn, pid, op.episode, audience=Audience.CARE_TEAM, urgency=op.urgency, now=now
            )
            if aid is None:
                continue
            opened[id(op)] = aid
            _audit(
                conn,
                pid,
                aid,
                "alert.open",
                rule_id=op.episode.rule_id,
                severity=op.episode.severity.value,
                flag_id=op.episode.flag_id,
            )
            to_inbox(conn, pid, aid, team, now=now)
        for c in decision.continues:
            before = alerts[c.episode.rule_id]
            records.continue_alert(
                conn,
                c.alert_id,
                c.episode,
                urgency=c.urgency,
                status=c.status,
                new_episode=c.new_episode,
                now=now,
            )
            if c.status is not before.status or c.new_episode:
                _audit(
                    conn,
                    pid,
                    c.alert_id,
                    "alert.reopen" if c.status is not before.status else "alert.continue",
                    status=c.status.value,
                    flag_id=c.episode.flag_id,
                )
        for aid in records.resolve_alerts(
            conn, decision.resolves, resolution="episode_ended", clinician_id=None, now=now
        ):
            _audit(conn, pid, aid, "alert.resolve", resolution="episode_ended")
        pushes: list[Push] = []
        for n in decision.notices:
            target = opened.get(id(n.target)) if isinstance(n.target, Open) else n.target
            if target is None:
                continue
            notice = records.mark_notified(
                conn,
                target,
                n.severity,
                repeat=n.reason is Reason.REPEAT,
                findings=n.findings,
                now=now,
            )
            news = None
            if n.reason is Reason.NEW_FINDING:
                flag_id = next(
                    c.episode.flag_id for c in decision.continues if c.alert_id == target
                )
                news = news_of(evidence.get(flag_id, {}), n.new_findings)
                _audit(conn, pid, target, "alert.new_finding", findings=list(n.new_findings))
            pushes.append(Push(target, notice, n.severity, n.urgency, news))
        due = fan_out(conn, pid, pushes, team, webhook=True, config=config, policy=policy, now=now)
        due += _good_news(conn, evaluation, config=config, policy=policy, now=now)
    return due


def _good_news(
    conn: psycopg.Connection[Any],
    evaluation: Evaluation,
    *,
    config: DeliveryConfig,
    policy: AlertPolicy,
    now: datetime,
) -> list[int]:
    due: list[int] = []
    tz = records.patient_person(conn, evaluation.patient_id).timezone
    for plan in evaluation.plan_changes:
        text = progression_message(plan)
        if text is None:
            continue
        start = datetime.combine(plan.valid_from, datetime.min.time(), ZoneInfo(tz))
        episode = Episode(
            flag_id=0,
            rule_id=PLAN_PROGRESSED,
            severity=Severity.INFO,
            window_start=start,
            window_end=start + timedelta(days=1),
            active=True,
            summary=text,
            detail={"version": plan.version, "quota": plan.quota},
        )
        _, d = open_message(
            conn, evaluation.patient_id, episode, config=config, policy=policy, now=now
        )
        due += d
    return due
