"""The alert policy: which flags alert whom, how soon, and how often. Pure; no I/O.

The default (`DEFAULT_POLICY`), one row per rule prefix (`DEFAULT_ROUTES`; the
longest matching prefix wins, so a new rule family is one more row):

=========================  =========  =========  =========  =======  =========
rule (prefix)              info       warning    critical   repeats  escalates
=========================  =========  =========  =========  =======  =========
``flare.risk_high``        inbox      immediate  immediate  yes      yes
``flare.`` (the episode)   inbox      digest     immediate  no       yes
``boom.pain_followed``     digest     immediate  immediate  no       no
``boom.over_quota``        digest     digest     digest     no       yes
``boom.``, ``bust.``,      inbox      digest     immediate  no       yes
``cycling.``, ``pacing.``
``data.``                  digest     digest     digest     no       yes
``safety.`` (red flags)    immediate  immediate  immediate  no       yes
``exposure.`` (stopped)    inbox      immediate  immediate  no       yes
``relapse.`` (maintenance) inbox      digest     immediate  no       yes
anything else              inbox      digest     immediate  no       yes
=========================  =========  =========  =========  =======  =========

Why, row by row (figures from the development cohorts of `bench/alerts.py`,
seeds 11-13, 300 patients x 120 days; seed 2026, the benchmark's default, is
held out and only reported):

- ``flare.risk_high``: the 48 h flare risk is the alert that looks ahead, so
  it is pushed. Its flag opens at 19 % (model v4, `paceline.pacing.flare`;
  nearly three times the cohort's 7 % base rate); with an earlier model at
  35 %, 46 % of its new alerts preceded a flare onset within 48 h.
- ``flare.`` (the episode): a flare under way is already handled by the
  plan's automatic step-back, so it goes to the digest unless critical.
- ``boom.pain_followed``: a pain rise of 2 points within 48 h of a boom is
  what a flare's build-up looks like (pain rises over the days before a flare,
  Affleck et al. 1996), and 48 % of these alerts precede an onset within
  48 h, as many as the flare risk's. It went to the digest (as a report of
  what had happened), which made it the rule the naive policy caught most
  onsets with that the policy missed; a warning is pushed now. It does not
  escalate: a rise to 4 points is the flare itself, which the flare episode
  reports (and its escalation pushes preceded an onset 24 % of the time).
- ``boom.over_quota``: a day over the quota is known only once the day is
  over, so the 08:00 digest puts even a critical one in front of the
  clinician that morning; the same spike raises the flare risk that night.
  Load spikes precede onsets by 3-4 days, outside the 48 h (3 % of its new
  alerts precede one, below the base rate), so pushing it would add burden
  without recall. A heart rate above the ceiling stays immediate when critical.
- ``data.``: non-wear and a missing diary say nothing about flares (7 %, the
  base rate); they are for the digest.
- ``safety.``: a positive red-flag screen (``safety.red_flag``, critical) is
  pushed at once, in quiet hours too, and its route has no hysteresis: a new
  positive screen after a clinician cleared the last one is a new alert,
  pushed again.
- ``exposure.``: an exposure session stopped at the stop rule
  (``exposure.stopped``, a warning) is pushed too, after quiet hours: the
  clinician debriefs it before the step is repeated.

What `bench/alerts.py` measures on the held-out seed 2026 (flare-risk model
v4 at 0.19/0.14/0.45, the routes above): 0.097 pushes per patient-day
reaching a clinician (target ≤ 0.1) and 81.9 % of flare onsets preceded by
one within 48 h (78.2 % with model v3 at 0.20, 71.8 % with v2 at 0.35),
against the naive policy's 0.279 and 85.0 % (82.6 % with v3: the naive
policy alerts on every new flare-risk flag too, so a better score raises its
recall as well). The recall target (at least the naive policy's) is missed,
and no setting of these routes reaches it on the development cohorts either
(entry 0.15-0.19, hold at half or three quarters of it, critical at 0.45,
0.6 or never, with and without the repeat: at most 0.1 pushes per
patient-day, the best is 3.3 points short on the worst cohort): a push on
every day on which a flag of an immediate route is open would catch 85.3 %
at 0.21 per patient-day. Of the 79 onsets only the naive policy caught, its
alerts in their 48 h were mostly non-wear (25), over-quota days (22) and
missing diaries (13), flags that precede an onset at or below the base rate,
flare episodes at warning (17), which go to the digest, and flare-risk
flags the re-arm hysteresis held back (9); pushing those rules would buy
recall with the alert rate. Development seeds 11-13 were used for every
choice (seed 13: 0.0996 and 82.9 % against the naive 86.2 %); the held-out
seed was run twice with model v4: for this score, and before it for a
candidate with the re-arm off (81.8 %, not kept).

- Flag alerts go to the patient's care team (every clinician on it). The
  patient is told only non-alarming things: the diary reminder at their chosen
  local time and the good news of a quota raised by progression.
- *immediate*: pushed now (e-mail, webhook), except that a non-critical push
  waits for the end of the recipient's quiet hours (21:00-07:00 local).
  *digest*: collected into one e-mail per recipient at 08:00 local.
  *inbox*: shown in the dashboard only. Every alert is in the inbox.
- Grouping: the notices one evaluation produces for one recipient on one
  channel go out as one message.
- Repeats (Alertmanager's ``repeat_interval``): an immediate alert of a route
  that repeats, whose episode is still open, above its entry threshold that
  day (not merely held open by the lower hold threshold), at most 2 days old
  (`repeat_within_days`), and that nobody acknowledged, is pushed again after
  24 h, once (`max_repeats`). Why: a flare-risk episode's onsets come in its
  first days (on seed 11, 31 % of its second days precede an onset, 10 % of
  its third and under 2 % of later ones); a second repeat, or a repeat on day
  3 or later, added burden for a few onsets each. Acknowledging stops repeats.
- Escalation: on a route that escalates, a rise in severity above what was
  last pushed is pushed at once.
- New findings: an episode made of separate findings (a red flag's positive
  screens: `Episode.findings`) pushes each finding the care team has not yet
  been told about as a re-notification of the same alert, on any route that
  pushes, acknowledged or not, and even after a clinician resolved the alert
  while the episode (the pause) stays open: the alert goes back to open. A
  second "yes" while the pause is open may be a new, worse symptom (saddle
  numbness after night pain), and a clinician who saw the first must not
  miss it; one alert per episode still holds, so the inbox shows one red
  flag with its history rather than two.
- Hysteresis (re-arm): a new episode of a rule within 3 days of that rule's
  last alert resolving continues that alert instead of opening a new one, and
  is pushed only if more severe than what was already pushed; an
  acknowledgement carries over to it.

The bound this gives for a patient hovering at a threshold: a flag needs one
day on and two days off to close and reopen, and a new alert needs three more
quiet days, so a rule opens at most one alert per 6 days (3 in any 14 days);
each alert is pushed at most 1 + 1 repeat + 1 escalation (warning →
critical) times per channel and recipient. A patient crossing the flare-risk
threshold every fourth day for 14 days gets one alert and at most 2 pushes.

References
----------
Affleck G, Urrows S, Tennen H, Higgins P, Abeles M. Sequential daily relations of
sleep, pain intensity, and attention to pain among women with fibromyalgia.
Pain 1996;68:363-368.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

from paceline.pacing.flags import Severity
from paceline.pacing.progression import Cause, PlanVersion

#: Rule ids of the messages to patients (not flags).
DIARY_REMINDER: Final = "diary.reminder"
PLAN_PROGRESSED: Final = "plan.progressed"


class Audience(StrEnum):
    """Who an alert is for."""

    CARE_TEAM = "care_team"
    PATIENT = "patient"


class Urgency(StrEnum):
    """How an alert reaches its audience beyond the inbox."""

    IMMEDIATE = "immediate"
    DIGEST = "digest"
    INBOX = "inbox"

    @property
    def rank(self) -> int:
        """Order: inbox < digest < immediate."""
        return ("inbox", "digest", "immediate").index(self.value)


class Reason(StrEnum):
    """Why a notice is sent."""

    NEW = "new"
    REPEAT = "repeat"
    ESCALATED = "escalated"
    #: The episode holds a finding the last notice did not tell about (a new red-flag answer).
    NEW_FINDING = "new_finding"


class Status(StrEnum):
    """An alert's life cycle: open → acknowledged → resolved."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Route:
    """How urgent a rule family's alerts are at each severity."""

    prefix: str
    info: Urgency
    warning: Urgency
    critical: Urgency
    repeats: bool = False
    #: Whether a new episode soon after the last alert resolved continues that alert
    #: (the re-arm hysteresis); off for red flags, where every new episode is news.
    hysteresis: bool = True
    escalates: bool = True

    def urgency(self, severity: Severity) -> Urgency:
        """The urgency at `severity`."""
        return {
            Severity.INFO: self.info,
            Severity.WARNING: self.warning,
            Severity.CRITICAL: self.critical,
        }[severity]


_I, _D, _N = Urgency.IMMEDIATE, Urgency.DIGEST, Urgency.INBOX

DEFAULT_ROUTES: Final[tuple[Route, ...]] = (
    Route("flare.risk_high", _N, _I, _I, repeats=True),
    Route("flare.", _N, _D, _I),
    Route("boom.pain_followed", _D, _I, _I, escalates=False),
    Route("boom.over_quota", _D, _D, _D),
    Route("boom.", _N, _D, _I),
    Route("bust.", _N, _D, _I),
    Route("cycling.", _N, _D, _I),
    Route("pacing.", _N, _D, _I),
    Route("data.", _D, _D, _D),
    Route("safety.", _I, _I, _I, hysteresis=False),
    Route("exposure.", _N, _I, _I),
    Route("relapse.", _N, _D, _I),
)
FALLBACK_ROUTE: Final = Route("", _N, _D, _I)


def _local(now: datetime, zone: ZoneInfo, at: time, *, days: int = 0) -> datetime:
    local_day = now.astimezone(zone).date() + timedelta(days=days)
    return datetime.combine(local_day, at, zone)


@dataclass(frozen=True)
class AlertPolicy:
    """Routes, timing and rate limits of alerts (see the module docstring for the default)."""

    routes: tuple[Route, ...] = DEFAULT_ROUTES
    repeat_interval: timedelta = timedelta(hours=24)
    #: Repeats only while the episode is at most this many local days long (None: always).
    repeat_within_days: int | None = 2
    max_repeats: int = 1
    rearm: timedelta = timedelta(days=3)
    quiet_start: time = time(21)
    quiet_end: time = time(7)
    digest_at: time = time(8)

    def route(self, rule_id: str) -> Route:
        """The route of the longest prefix that matches `rule_id`."""
        matches = [r for r in self.routes if rule_id.startswith(r.prefix)]
        return max(matches, key=lambda r: len(r.prefix)) if matches else FALLBACK_ROUTE

    def urgency(self, rule_id: str, severity: Severity) -> Urgency:
        """How an alert of `rule_id` at `severity` is delivered."""
        return self.route(rule_id).urgency(severity)

    def quiet(self, when: datetime, zone: ZoneInfo) -> bool:
        """Whether `when` falls in the recipient's quiet hours."""
        t = when.astimezone(zone).time()
        if self.quiet_start <= self.quiet_end:
            return self.quiet_start <= t < self.quiet_end
        return t >= self.quiet_start or t < self.quiet_end

    def push_at(self, now: datetime, zone: ZoneInfo, severity: Severity) -> datetime:
        """When an immediate push may go out: now, or at the end of quiet hours unless critical."""
        if severity is Severity.CRITICAL or not self.quiet(now, zone):
            return now
        end = _local(now, zone, self.quiet_end)
        return end if end > now else _local(now, zone, self.quiet_end, days=1)

    def digest_time(self, now: datetime, zone: ZoneInfo) -> datetime:
        """The recipient's next digest time after `now`."""
        at = _local(now, zone, self.digest_at)
        return at if at > now else _local(now, zone, self.digest_at, days=1)


DEFAULT_POLICY: Final = AlertPolicy()


@dataclass(frozen=True)
class Episode:
    """A flag as the evaluation left it: the thing an alert is about."""

    flag_id: int
    rule_id: str
    severity: Severity
    window_start: datetime
    window_end: datetime
    active: bool
    summary: str
    detail: Mapping[str, object] = field(default_factory=dict)
    #: Whether today is above the rule's entry threshold, not merely held open.
    hot: bool = True
    #: Ids of the separate findings the episode is made of (a red flag's positive screens).
    findings: tuple[int, ...] = ()

    @property
    def days(self) -> int:
        """How many local days the episode spans so far (a DST day counts as one)."""
        return round((self.window_end - self.window_start) / timedelta(days=1))


@dataclass(frozen=True)
class AlertState:
    """The latest stored alert of one rule for the patient."""

    alert_id: int
    rule_id: str
    flag_id: int | None
    window_start: datetime
    severity: Severity
    status: Status
    urgency: Urgency
    notified_severity: Severity | None
    last_notified_at: datetime | None
    repeats: int
    resolved_at: datetime | None
    acknowledged: bool = False
    #: The findings the care team was told about by the notices so far.
    notified_findings: tuple[int, ...] = ()


@dataclass(frozen=True)
class Open:
    """A new alert for an episode."""

    episode: Episode
    urgency: Urgency


@dataclass(frozen=True)
class Continue:
    """An existing alert follows its episode, or a new episode of its rule within the re-arm time."""

    alert_id: int
    episode: Episode
    urgency: Urgency
    status: Status
    new_episode: bool


@dataclass(frozen=True)
class Notice:
    """A push of one alert; `target` is an alert id or the `Open` it will get."""

    target: int | Open
    reason: Reason
    severity: Severity
    urgency: Urgency
    #: Every finding of the episode (what the alert has told about after this notice).
    findings: tuple[int, ...] = ()
    #: The findings this notice is the first to tell about (for NEW_FINDING).
    new_findings: tuple[int, ...] = ()


@dataclass(frozen=True)
class Decision:
    """What one evaluation does to a patient's alerts."""

    opens: tuple[Open, ...] = ()
    continues: tuple[Continue, ...] = ()
    resolves: tuple[int, ...] = ()
    notices: tuple[Notice, ...] = ()


def latest(episodes: Iterable[Episode]) -> dict[str, Episode]:
    """Each rule's most recent episode."""
    out: dict[str, Episode] = {}
    for e in episodes:
        if e.rule_id not in out or e.window_start > out[e.rule_id].window_start:
            out[e.rule_id] = e
    return out


def _escalates(severity: Severity, notified: Severity | None) -> bool:
    return notified is not None and severity.rank > notified.rank


def decide(
    policy: AlertPolicy,
    episodes: Iterable[Episode],
    alerts: Mapping[str, AlertState],
    *,
    now: datetime,
    resolved_flag_ids: Iterable[int] = (),
) -> Decision:
    """Turn an evaluation's episodes and each rule's latest alert into opens, updates and pushes."""
    opens: list[Open] = []
    continues: list[Continue] = []
    resolves: list[int] = []
    notices: list[Notice] = []
    gone = set(resolved_flag_ids)
    current = latest(episodes)
    for prior in alerts.values():
        now_ep = current.get(prior.rule_id)
        ended = prior.flag_id in gone or (
            now_ep is not None and now_ep.flag_id == prior.flag_id and not now_ep.active
        )
        if ended and prior.status is not Status.RESOLVED:
            resolves.append(prior.alert_id)
    for rule_id in sorted(current):
        ep = current[rule_id]
        if not ep.active:
            continue
        route = policy.route(rule_id)
        urgency = route.urgency(ep.severity)
        a = alerts.get(rule_id)
        rearmed = (
            a is not None
            and a.status is Status.RESOLVED
            and a.resolved_at is not None
            and (
                now - a.resolved_at >= policy.rearm
                or (not route.hysteresis and a.flag_id != ep.flag_id)
            )
        )
        if a is None or rearmed:
            op = Open(ep, urgency)
            opens.append(op)
            if urgency is not Urgency.INBOX:
                notices.append(Notice(op, Reason.NEW, ep.severity, urgency, ep.findings))
            continue
        known = set(a.notified_findings)
        new_findings = tuple(f for f in ep.findings if f not in known)
        pushes = max(urgency, a.urgency, key=lambda u: u.rank) is not Urgency.INBOX
        if (
            a.flag_id == ep.flag_id
            and (a.alert_id in resolves or a.status is Status.RESOLVED)
            and not (pushes and new_findings and a.notified_severity is not None)
        ):
            # A clinician resolved it while the episode goes on: it stays resolved (unless
            # the episode brings a finding nobody was told about, below).
            continue
        urgency = max(urgency, a.urgency, key=lambda u: u.rank)
        status = a.status
        pushed = urgency is not Urgency.INBOX
        if pushed and a.notified_severity is None:
            reason: Reason | None = Reason.NEW
        elif pushed and new_findings:
            reason = Reason.NEW_FINDING
        elif pushed and route.escalates and _escalates(ep.severity, a.notified_severity):
            reason = Reason.ESCALATED
        elif (
            urgency is Urgency.IMMEDIATE
            and route.repeats
            and ep.hot
            and status is Status.OPEN
            and a.flag_id == ep.flag_id
            and a.last_notified_at is not None
            and now - a.last_notified_at >= policy.repeat_interval
            and a.repeats < policy.max_repeats
            and (policy.repeat_within_days is None or ep.days <= policy.repeat_within_days)
        ):
            reason = Reason.REPEAT
        else:
            reason = None
        if reason in (Reason.ESCALATED, Reason.NEW_FINDING):
            status = Status.OPEN
        elif status is Status.RESOLVED:
            # Re-armed within the hysteresis: a clinician's acknowledgement still holds.
            status = Status.ACKNOWLEDGED if a.acknowledged else Status.OPEN
        continues.append(Continue(a.alert_id, ep, urgency, status, a.flag_id != ep.flag_id))
        if a.alert_id in resolves:
            resolves.remove(a.alert_id)
        if reason is not None:
            news = new_findings if reason is Reason.NEW_FINDING else ()
            notices.append(Notice(a.alert_id, reason, ep.severity, urgency, ep.findings, news))
    return Decision(tuple(opens), tuple(continues), tuple(resolves), tuple(notices))


# Words --------------------------------------------------------------------------------------


def summarize(rule_id: str, severity: Severity, evidence: Mapping[str, object]) -> str:
    """One line a clinician reads in the inbox: the rule in words and, for flare risk, why."""
    title = str(evidence.get("rule") or rule_id)
    text = f"{severity.value}: {title}"
    daily = evidence.get("daily")
    last = daily[-1] if isinstance(daily, Sequence) and daily else None
    if isinstance(last, Mapping):
        score = last.get("score")
        factors = last.get("contributing")
        if isinstance(score, float | int):
            text += f" (48 h risk {float(score):.0%})"
        if isinstance(factors, Sequence) and factors and not isinstance(factors, str):
            text += "; contributing: " + "; ".join(str(f) for f in factors)
    return text[:2000]


def progression_message(plan: PlanVersion) -> str | None:
    """The good news a patient gets when progression raises their quota (None otherwise)."""
    if plan.cause is not Cause.PROGRESSION or plan.quota is None:
        return None
    unit = {"active_minutes": "active minutes", "steps": "steps", "trimp": "load points"}
    return (
        f"Well done: your steady week earned a step up. From {plan.valid_from:%A %d %B} your"
        f" daily goal is {plan.quota:g} {unit.get(plan.measure.value, plan.measure.value)}."
    )


REMINDER_TEXT: Final = (
    "A gentle reminder: today's diary is still open. A minute now keeps your plan in tune."
)


def hot(evidence: Mapping[str, object], day: date) -> bool:
    """Whether an episode's evidence shows `day` at or above the entry threshold.

    Rules whose evidence carries no score against an ``enter`` threshold count
    as hot on every day they are open.
    """
    daily = evidence.get("daily")
    last = daily[-1] if isinstance(daily, Sequence) and daily else None
    thresholds = evidence.get("thresholds")
    if not isinstance(last, Mapping) or not isinstance(thresholds, Mapping):
        return True
    score, enter = last.get("score"), thresholds.get("enter")
    if not isinstance(score, int | float) or not isinstance(enter, int | float):
        return True
    return last.get("day") == day.isoformat() and score >= enter


def reminder_due(now: datetime, zone: ZoneInfo, at: time, *, logged_today: bool) -> bool:
    """Whether a patient who wants a reminder at local `at` should get it now."""
    return not logged_today and now.astimezone(zone).time() >= at
