"""Paceline's web app: `paceline dashboard` serves this file with Streamlit.

The pages a person sees depend on their role; a page that is not in their
navigation does not exist for them (and every page checks the role again).
"""

import streamlit as st

from paceline.dashboard import ui
from paceline.store.accounts import Role

st.set_page_config(page_title="Paceline", page_icon=":material/monitor_heart:", layout="wide")

PAGES = {
    Role.CLINICIAN: [
        st.Page("app_pages/caseload.py", title="Caseload", icon=":material/groups:", default=True),
        st.Page("app_pages/patient.py", title="Patient", icon=":material/person:"),
        st.Page("app_pages/plan.py", title="Plan", icon=":material/tune:"),
        st.Page("app_pages/goals.py", title="Exercise and goals", icon=":material/flag:"),
        st.Page("app_pages/alerts.py", title="Alerts", icon=":material/notifications:"),
    ],
    Role.PATIENT: [
        st.Page("app_pages/my_day.py", title="My day", icon=":material/today:", default=True),
    ],
    Role.ADMIN: [
        st.Page(
            "app_pages/admin.py",
            title="Admin",
            icon=":material/admin_panel_settings:",
            default=True,
        ),
    ],
}

who = ui.signed_in()
if who is None:
    page = st.navigation([st.Page(ui.login_page, title="Sign in", url_path="login")])
else:
    page = st.navigation(PAGES[who.role])
    ui.sidebar(who)
page.run()
