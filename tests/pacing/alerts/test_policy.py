"""The alert policy as a pure function: routes, quiet hours, digests, repeats, re-arm."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from paceline.pacing.alerts.policy import (
    DEFAULT_POLICY,
    AlertState,
    Episode,
    Reason,
    Status,
    Urgency,
    decide,
    hot,
    summarize,
)
from paceline.pacing.flags import Severity

T0 = datetime(2026, 3, 10, 9, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def ep(
    rule: str = "flare.risk_high",
    flag_id: int = 1,
    *,
    active: bool = True,
    severity: Severity = Severity.WARNING,
    start: datetime = T0,
) -> Episode:
    return Episode(flag_id, rule, severity, start, start + timedelta(days=1), active, "s")


def alert(
    ep_: Episode,
    *,
    status: Status = Status.OPEN,
    notified: Severity | None = None,
    last: datetime | None = T0,
    repeats: int = 0,
    resolved_at: datetime | None = None,
    urgency: Urgency = Urgency.IMMEDIATE,
) -> AlertState:
    return AlertState(
        alert_id=100 + ep_.flag_id,
        rule_id=ep_.rule_id,
        flag_id=ep_.flag_id,
        window_start=ep_.window_start,
        severity=ep_.severity,
        status=status,
        urgency=urgency,
        notified_severity=ep_.severity if notified is None and last else notified,
        last_notified_at=last,
        repeats=repeats,
        resolved_at=resolved_at,
    )


def test_default_routes_push_flare_risk_and_critical_at_once_and_digest_the_rest() -> None:
    u = DEFAULT_POLICY.urgency
    assert u("flare.risk_high", Severity.WARNING) is Urgency.IMMEDIATE
    assert u("flare.episode", Severity.WARNING) is Urgency.DIGEST
    assert u("boom.pain_followed", Severity.WARNING) is Urgency.IMMEDIATE
    assert u("boom.pain_followed", Severity.CRITICAL) is Urgency.IMMEDIATE
    assert u("boom.over_quota", Severity.WARNING) is Urgency.DIGEST
    assert u("boom.over_quota", Severity.CRITICAL) is Urgency.DIGEST
    assert u("boom.above_ceiling", Severity.CRITICAL) is Urgency.IMMEDIATE
    assert u("pacing.pain_contingent", Severity.INFO) is Urgency.INBOX
    assert u("data.device_silent", Severity.CRITICAL) is Urgency.DIGEST
    assert u("something.new", Severity.CRITICAL) is Urgency.IMMEDIATE


def test_quiet_hours_hold_back_non_critical_pushes_until_seven_local() -> None:
    night = datetime(2026, 3, 10, 22, 30, tzinfo=BERLIN)
    at = DEFAULT_POLICY.push_at(night, BERLIN, Severity.WARNING)
    assert at == datetime(2026, 3, 11, 7, tzinfo=BERLIN)
    assert DEFAULT_POLICY.push_at(night, BERLIN, Severity.CRITICAL) == night
    early = datetime(2026, 3, 11, 5, tzinfo=BERLIN)
    assert DEFAULT_POLICY.push_at(early, BERLIN, Severity.WARNING) == datetime(
        2026, 3, 11, 7, tzinfo=BERLIN
    )
    noon = datetime(2026, 3, 11, 12, tzinfo=BERLIN)
    assert DEFAULT_POLICY.push_at(noon, BERLIN, Severity.WARNING) == noon


def test_digest_time_is_the_next_eight_oclock_local_across_dst() -> None:
    before_dst = datetime(2026, 3, 28, 12, tzinfo=BERLIN)  # DST starts 29 March
    at = DEFAULT_POLICY.digest_time(before_dst, BERLIN)
    assert at == datetime(2026, 3, 29, 8, tzinfo=BERLIN)
    assert at.astimezone(UTC).hour == 6


def test_a_new_active_episode_opens_one_alert_with_one_notice() -> None:
    d = decide(DEFAULT_POLICY, [ep()], {}, now=T0)
    assert len(d.opens) == 1 and len(d.notices) == 1
    assert d.notices[0].reason is Reason.NEW and d.notices[0].urgency is Urgency.IMMEDIATE


def test_rerunning_the_same_day_changes_nothing_that_would_notify() -> None:
    e = ep()
    d = decide(DEFAULT_POLICY, [e], {e.rule_id: alert(e)}, now=T0 + timedelta(hours=1))
    assert d.opens == () and d.notices == ()


def test_a_flare_risk_alert_repeats_after_24h_while_open_hot_and_unacknowledged_once() -> None:
    e = ep()
    later = T0 + timedelta(hours=24)
    d = decide(DEFAULT_POLICY, [e], {e.rule_id: alert(e)}, now=later)
    assert [n.reason for n in d.notices] == [Reason.REPEAT]
    acked = decide(
        DEFAULT_POLICY, [e], {e.rule_id: alert(e, status=Status.ACKNOWLEDGED)}, now=later
    )
    assert acked.notices == ()
    capped = decide(DEFAULT_POLICY, [e], {e.rule_id: alert(e, repeats=1)}, now=later)
    assert capped.notices == ()
    held = decide(DEFAULT_POLICY, [replace(e, hot=False)], {e.rule_id: alert(e)}, now=later)
    assert held.notices == (), "held open below the entry threshold: no repeat"
    other = ep("bust.under_quota", severity=Severity.CRITICAL)
    once = decide(DEFAULT_POLICY, [other], {other.rule_id: alert(other)}, now=later)
    assert once.notices == (), "only the flare-risk route repeats"


def test_a_flare_risk_alert_repeats_only_in_the_first_two_days_of_its_episode() -> None:
    later = T0 + timedelta(hours=24)
    second_day = replace(ep(), window_end=T0 + timedelta(days=2))
    d = decide(DEFAULT_POLICY, [second_day], {second_day.rule_id: alert(second_day)}, now=later)
    assert [n.reason for n in d.notices] == [Reason.REPEAT]
    third_day = replace(ep(), window_end=T0 + timedelta(days=3))
    d = decide(DEFAULT_POLICY, [third_day], {third_day.rule_id: alert(third_day)}, now=later)
    assert d.notices == (), "a forecast for 48 h is not repeated on its third day"
    # Berlin's 24 and 25 October 2026 (the autumn DST change) span 49 hours: two days.
    fold = datetime(2026, 10, 23, 22, tzinfo=UTC)
    dst = replace(ep(start=fold), window_end=datetime(2026, 10, 25, 23, tzinfo=UTC))
    assert dst.days == 2
    d = decide(
        DEFAULT_POLICY, [dst], {dst.rule_id: alert(dst, last=fold)}, now=fold + timedelta(days=2)
    )
    assert [n.reason for n in d.notices] == [Reason.REPEAT]


def test_a_pain_rise_after_a_boom_is_pushed_and_does_not_escalate() -> None:
    e = ep("boom.pain_followed")
    d = decide(DEFAULT_POLICY, [e], {}, now=T0)
    assert [(n.reason, n.urgency) for n in d.notices] == [(Reason.NEW, Urgency.IMMEDIATE)]
    worse = replace(e, severity=Severity.CRITICAL)
    d = decide(DEFAULT_POLICY, [worse], {e.rule_id: alert(e)}, now=T0 + timedelta(hours=1))
    assert d.notices == (), "a 4-point rise is the flare, which the flare episode reports"
    assert d.continues[0].episode.severity is Severity.CRITICAL


def test_a_rise_in_severity_is_pushed_at_once_even_when_acknowledged() -> None:
    e = ep()
    worse = replace(e, severity=Severity.CRITICAL)
    a = alert(e, status=Status.ACKNOWLEDGED)
    d = decide(DEFAULT_POLICY, [worse], {e.rule_id: a}, now=T0 + timedelta(hours=1))
    assert [n.reason for n in d.notices] == [Reason.ESCALATED]
    assert d.continues[0].status is Status.OPEN


def test_an_ended_episode_resolves_its_alert() -> None:
    e = ep()
    d = decide(DEFAULT_POLICY, [replace(e, active=False)], {e.rule_id: alert(e)}, now=T0)
    assert d.resolves == (101,)
    gone = decide(DEFAULT_POLICY, [], {e.rule_id: alert(e)}, now=T0, resolved_flag_ids=[1])
    assert gone.resolves == (101,)


def test_a_new_episode_within_three_days_continues_the_alert_silently() -> None:
    e = ep()
    resolved = alert(e, status=Status.RESOLVED, resolved_at=T0 + timedelta(days=1))
    again = ep(flag_id=2, start=T0 + timedelta(days=3))
    d = decide(DEFAULT_POLICY, [again], {e.rule_id: resolved}, now=T0 + timedelta(days=3))
    assert d.opens == () and d.notices == ()
    assert d.continues[0].status is Status.OPEN and d.continues[0].new_episode
    after = decide(DEFAULT_POLICY, [again], {e.rule_id: resolved}, now=T0 + timedelta(days=4))
    assert len(after.opens) == 1 and len(after.notices) == 1


def test_a_clinician_resolved_alert_stays_resolved_while_its_episode_goes_on() -> None:
    e = ep()
    a = alert(e, status=Status.RESOLVED, resolved_at=T0)
    d = decide(DEFAULT_POLICY, [e], {e.rule_id: a}, now=T0 + timedelta(days=2))
    assert d == type(d)()


def test_inbox_only_alerts_are_opened_without_a_push() -> None:
    e = ep("pacing.pain_contingent", severity=Severity.INFO)
    d = decide(DEFAULT_POLICY, [e], {}, now=T0)
    assert len(d.opens) == 1 and d.notices == ()


def test_flare_risk_summary_names_the_contributing_factors_in_words() -> None:
    evidence = {
        "rule": "Flare risk over the next 48 h above threshold",
        "daily": [
            {
                "day": "2026-03-10",
                "score": 0.42,
                "contributing": [
                    "recent load up to 2.1× your usual",
                    "pain rising 0.8 points a day",
                ],
            }
        ],
    }
    text = summarize("flare.risk_high", Severity.WARNING, evidence)
    assert "48 h risk 42%" in text
    assert "recent load up to 2.1× your usual; pain rising 0.8 points a day" in text


def test_quiet_hours_that_do_not_wrap_midnight() -> None:
    p = replace(DEFAULT_POLICY, quiet_start=time(12), quiet_end=time(14))
    assert p.quiet(datetime(2026, 3, 10, 13, tzinfo=UTC), ZoneInfo("UTC"))
    assert not p.quiet(datetime(2026, 3, 10, 15, tzinfo=UTC), ZoneInfo("UTC"))


def test_an_acknowledgement_carries_over_to_a_new_episode_within_the_re_arm_time() -> None:
    e = ep()
    a = replace(
        alert(e, status=Status.RESOLVED, resolved_at=T0 + timedelta(days=1)), acknowledged=True
    )
    again = ep(flag_id=2, start=T0 + timedelta(days=3))
    d = decide(DEFAULT_POLICY, [again], {e.rule_id: a}, now=T0 + timedelta(days=3))
    assert d.continues[0].status is Status.ACKNOWLEDGED and d.notices == ()


def test_hot_reads_the_last_day_score_against_the_entry_threshold() -> None:
    day = T0.date()
    evidence = {
        "thresholds": {"enter": 0.35, "hold": 0.25},
        "daily": [{"day": day.isoformat(), "score": 0.3}],
    }
    assert not hot(evidence, day)
    assert hot({**evidence, "daily": [{"day": day.isoformat(), "score": 0.4}]}, day)
    assert not hot({**evidence, "daily": [{"day": "2026-03-01", "score": 0.4}]}, day)
    assert hot({"rule": "no score"}, day)
