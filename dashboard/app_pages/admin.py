"""Admin: accounts (lock and unlock), care teams, and the audit log with filters."""

from datetime import UTC, datetime, time, timedelta

import streamlit as st

from paceline.dashboard import ui
from paceline.dashboard.times import shown_at
from paceline.store import accounts
from paceline.store.accounts import AccountError, Role

who = ui.require(Role.ADMIN)
st.title("Administration")
moment = ui.now()

tab_accounts, tab_teams, tab_audit = st.tabs(["Accounts", "Care teams", "Audit log"])

with tab_accounts:
    with ui.admin(who) as conn:
        found = accounts.admin_accounts(conn)
    st.dataframe(
        [
            {
                "username": a.username,
                "role": a.role.value,
                "name": a.display_name,
                "state": "locked"
                if a.disabled
                else "locked out"
                if a.locked_at(moment)
                else "active",
                "failed logins": a.failed_attempts,
                "last login": None if a.last_login_at is None else shown_at(a.last_login_at, UTC),
            }
            for a in found
        ],
        hide_index=True,
    )
    others = [a.username for a in found if a.account_id != who.account_id]
    if others:
        target = st.selectbox("Account", others, key="admin_account")
        lock_col, unlock_col, _ = st.columns([1, 1, 4])
        for column, label, lock in ((lock_col, "Lock", True), (unlock_col, "Unlock", False)):
            if column.button(label, key=f"admin_{label.lower()}"):
                try:
                    with ui.admin(who) as conn:
                        accounts.admin_set_disabled(conn, target, disabled=lock)
                except AccountError as exc:
                    st.error(str(exc))
                else:
                    st.rerun()
    st.caption("New logins and passwords: `paceline accounts add|passwd` on the server.")

with tab_teams:
    with ui.admin(who) as conn:
        links = accounts.admin_care_teams(conn)
    st.dataframe(
        [
            {
                "clinician": link.clinician,
                "patient": link.patient,
                "reference": link.patient_ref,
                "as": link.team_role,
                "since": shown_at(link.since, UTC),
            }
            for link in links
        ],
        hide_index=True,
    )

with tab_audit:
    c1, c2, c3, c4 = st.columns(4)
    first = c1.date_input("From", value=moment.date() - timedelta(days=7), key="audit_from")
    last = c2.date_input("To", value=moment.date(), key="audit_to")
    actor = c3.text_input("Actor starts with", key="audit_actor", placeholder="clinician:7")
    action = c4.text_input("Action starts with", key="audit_action", placeholder="dashboard.")
    patient = st.number_input("Patient id (0 = all)", min_value=0, step=1, key="audit_patient")
    with ui.admin(who) as conn:
        entries = accounts.admin_audit(
            conn,
            since=datetime.combine(first, time(), moment.tzinfo),
            until=datetime.combine(last + timedelta(days=1), time(), moment.tzinfo),
            actor=actor.strip(),
            action=action.strip(),
            patient_id=int(patient) or None,
        )
    st.caption(f"{len(entries)} entries (newest first, at most 500)")
    st.dataframe(
        [
            {
                "at": shown_at(e.at, UTC),
                "actor": e.actor,
                "action": e.action,
                "object": e.object,
                "patient": e.patient_id,
                "page": e.detail.get("page"),
                "detail": str(e.detail),
            }
            for e in entries
        ],
        hide_index=True,
    )
