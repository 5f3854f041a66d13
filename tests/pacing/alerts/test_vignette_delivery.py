"""A boom vignette end to end: engine, alerts, and delivery to a real SMTP server and webhook receiver.

The nightly pass is played day by day through the functions the queue's jobs
call (`evaluate_patient`, `raise_alerts`, `due_deliveries`, `due_digests`,
`deliver`); the clinician acknowledges the flare-risk alert the morning it
arrives.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg

from paceline.pacing import replay
from paceline.pacing.alerts import (
    Channels,
    acknowledge,
    deliver,
    due_deliveries,
    due_digests,
    list_alerts,
    raise_alerts,
)
from paceline.pacing.engine import evaluate_patient
from paceline.pacing.simulate import Persona, SimPatient
from tests.pacing.alerts.helpers import CONFIG, SECRET, START, enrol, morning_after
from tests.pacing.alerts.servers import smtp_server, webhook_receiver


def test_a_boom_gives_one_alert_each_delivered_exactly_once_per_channel(
    conn: psycopg.Connection[Any],
) -> None:
    pid, team = enrol(conn)
    sim = SimPatient(Persona.FLARE_AFTER_SPIKE, seed=4, spike_day=20)
    with smtp_server() as (smtp_url, box), webhook_receiver(SECRET) as (hook_url, receiver):
        config = replace(CONFIG, smtp_url=smtp_url, webhook_url=hook_url)
        channels = Channels.from_config(config)
        quota = None
        for i in range(30):
            d = START + timedelta(days=i)
            now = morning_after(d)
            replay.store_sim_day(conn, pid, sim.next_day(d, quota))
            ev = evaluate_patient(conn, pid, d)
            due = raise_alerts(conn, ev, now=now, config=config)
            conn.commit()
            quota = ev.next_plan.quota if ev.next_plan is not None else None
            for did in sorted({*due, *due_deliveries(conn, now), *due_digests(conn, now)}):
                assert deliver(conn, did, channels=channels, now=now).status == "delivered"
                conn.commit()
            if i == 20:
                boom = [
                    (a.rule_id, a.severity)
                    for a in list_alerts(conn, patient_id=pid, audience="care_team")
                ]
                assert boom == [("boom.over_quota", "warning")], "the boom day: one alert"
            for a in list_alerts(conn, patient_id=pid, statuses=("open",)):
                if a.rule_id == "flare.risk_high" and a.last_notified_at is not None:
                    acknowledge(conn, a.alert_id, clinician_id=team[0], note="rang", now=now)
                    conn.commit()

    alerts = {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT rule_id, alert_id FROM alert WHERE patient_id = %s AND audience = 'care_team'",
            (pid,),
        ).fetchall()
    }
    assert {"boom.over_quota", "flare.risk_high"} <= set(alerts)
    rows = conn.execute(
        "SELECT delivery_id, alert_id, alert_ids, channel, recipient, status, attempts,"
        " message_key, digest_of FROM alert_delivery WHERE patient_id = %s AND recipient <> %s",
        (pid, f"patient:{pid}"),
    ).fetchall()
    assert all(r[5] == "delivered" and r[6] <= 1 for r in rows), "each delivered at one go"
    per_channel = Counter((alert_id, r[3]) for r in rows for alert_id in r[2])
    boom, risk = alerts["boom.over_quota"], alerts["flare.risk_high"]
    assert per_channel[(boom, "inbox")] == 1
    assert per_channel[(boom, "email")] == 1  # in the next morning's digest
    assert per_channel[(boom, "webhook")] == 0  # a digest alert is not pushed to the webhook
    assert per_channel[(risk, "inbox")] == 1
    assert per_channel[(risk, "email")] == 1
    assert per_channel[(risk, "webhook")] == 1

    # What the receivers saw: each message once, every webhook verified by the oracle.
    # A digest goes out under its lead row's key; the rows it carried say whose digest.
    email_rows = [r for r in rows if r[3] == "email" and r[8] in (None, r[0])]
    mail_ids = Counter(m["Message-ID"] for m in box.messages)
    team_ids = {f"<{r[7]}@paceline.test>" for r in email_rows}
    assert {k: v for k, v in mail_ids.items() if k in team_ids} == dict.fromkeys(team_ids, 1)
    assert all(r.verified for r in receiver.requests)
    hook_ids = Counter(r.headers["webhook-id"] for r in receiver.requests)
    assert set(hook_ids.values()) == {1}
    carried = [a["alert_id"] for r in receiver.accepted for a in json.loads(r.body)["alerts"]]
    assert carried.count(risk) == 1 and carried.count(boom) == 0
