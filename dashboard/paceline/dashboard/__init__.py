"""The clinician and patient web app: accounts, login, view models (testable without Streamlit)."""
