"""Alerts: the care team's inbox, acknowledged and resolved with a note; failed deliveries."""

import streamlit as st

from paceline.dashboard import alerts_view, ui
from paceline.pacing import overview
from paceline.pacing.alerts import AlertError, acknowledge, dead_letters, list_alerts, resolve
from paceline.store import access
from paceline.store.accounts import Role

who = ui.require(Role.CLINICIAN)
st.title("Alerts")
flash = st.session_state.pop("alerts_flash", None)
if flash:
    st.success(flash)

shown = st.segmented_control(
    "Show",
    ["open", "acknowledged", "resolved"],
    selection_mode="multi",
    default=["open", "acknowledged"],
    key="alerts_status",
) or ["open"]

with ui.person(who) as conn:
    found = list_alerts(conn, statuses=list(shown))
    patients = overview.patient_labels(conn)
    dead = dead_letters(conn, limit=100)
    # One read row per patient whose alerts or failed deliveries the page shows, as
    # the caseload and the timeline record theirs; the page view names the alerts.
    access.record_reads(
        conn,
        obj="alerts",
        patient_ids=[a.patient_id for a in found] + [d.patient_id for d in dead],
        detail={"statuses": sorted(shown)},
    )
    ui.audit(conn, who, page="alerts", detail={"alerts": [a.alert_id for a in found]})

if not found:
    st.info("No alerts to show.")
else:
    st.dataframe(alerts_view.alert_table(found, patients), hide_index=True)
    labels = alerts_view.choices(found, patients)
    pick = st.selectbox("Alert", list(labels), key="alerts_pick")
    alert = labels[pick]
    note = st.text_area("Note (what you did or will do)", max_chars=2000, key="alerts_note")
    ack_col, resolve_col, _ = st.columns([1, 1, 4])
    action = None
    if ack_col.button(
        "Acknowledge", type="primary", key="alerts_ack", disabled=alert.status != "open"
    ):
        action = "acknowledge"
    if resolve_col.button("Resolve", key="alerts_resolve", disabled=alert.status == "resolved"):
        action = "resolve"
    if action is not None:
        try:
            with ui.person(who) as conn:
                change = acknowledge if action == "acknowledge" else resolve
                change(
                    conn,
                    alert.alert_id,
                    clinician_id=who.clinician_id or 0,
                    note=note,
                    now=ui.now(),
                )
                ui.audit(
                    conn,
                    who,
                    page="alerts",
                    action=f"alert.{action}",
                    patient_id=alert.patient_id,
                    detail={"alert_id": alert.alert_id},
                )
        except AlertError as exc:
            st.error(str(exc))
        else:
            st.session_state["alerts_flash"] = f"Alert {alert.alert_id} {action}d."
            st.rerun()

st.subheader("Deliveries that failed")
st.caption(
    "Messages that could not be delivered after every retry, or were refused; the inbox still shows their alerts."
)
if not dead:
    st.text("None.")
else:
    st.dataframe(alerts_view.dead_table(dead, patients), hide_index=True)
