"""Single sign-on in a real browser: `st.login` against an OpenID provider on loopback.

The provider is oidc-provider-mock (a Flask/Authlib OpenID provider for
tests) served by werkzeug on 127.0.0.1 in a thread of this process; the
dashboard is `paceline dashboard` as a subprocess, configured through the
PACELINE_OIDC_* settings as a deployment would be; Chromium is driven by
Playwright as in test_browser.py. One browser walks through a clinician
signing in by e-mail (and out), an e-mail no account has, and a locked account.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import oidc_provider_mock
import pytest
import werkzeug.serving
from playwright.sync_api import Page, expect, sync_playwright

from paceline.store import accounts
from paceline.store.connection import connect
from paceline.store.secrets import write_secret
from tests.dashboard.browser import dashboard, launch, new_page, require_chromium
from tests.dashboard.conftest import Clinic

PROVIDER = "Clinic login"
LEE = "lee@clinic.example"  # dr.a, Dr Lee: team A
OKAFOR = "okafor@clinic.example"  # dr.b, Dr Okafor: team B, locked below


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    """An OpenID provider on a free loopback port (its issuer URL), until the module ends."""
    server = werkzeug.serving.make_server(
        "127.0.0.1", 0, oidc_provider_mock.app(require_nonce=True), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, name="oidc-provider", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


@dataclass(frozen=True)
class Server:
    """The dashboard's URL and its working directory (server.log)."""

    url: str
    work: Path


@pytest.fixture(scope="module")
def server(
    clinic: Clinic,
    dashboard_dsn: str,
    key_file: Path,
    provider: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """`paceline dashboard` with single sign-on through `provider`."""
    require_chromium()
    with connect(clinic.dsn) as c:
        c.execute("UPDATE account SET email = %s WHERE username = 'dr.a'", (LEE,))
        c.execute("UPDATE account SET email = %s WHERE username = 'dr.b'", (OKAFOR,))
        c.commit()
        accounts.set_disabled(c, "dr.b", disabled=True)
    work = tmp_path_factory.mktemp("oidc-dashboard")
    write_secret(work / "client.secret", "a client secret the mock provider accepts")
    env = {
        "PACELINE_OIDC_ISSUER": provider,
        "PACELINE_OIDC_CLIENT_ID": "paceline-dashboard",
        "PACELINE_OIDC_CLIENT_SECRET_FILE": str(work / "client.secret"),
        "PACELINE_OIDC_NAME": PROVIDER,
    }
    with dashboard(clinic.dsn, dashboard_dsn, key_file, work, env) as url:
        yield Server(url, work)


@contextmanager
def _explained(page: Page, work: Path) -> Iterator[None]:
    """On a failure, say where the browser was and what the server logged."""
    try:
        yield
    except Exception as exc:
        page.screenshot(path=str(work / "failure.png"))
        log = (work / "server.log").read_text(errors="replace")[-4000:]
        raise AssertionError(
            f"{exc}\nbrowser at {page.url}; screenshot {work / 'failure.png'}\n"
            f"page text:\n{page.inner_text('body')[:2000]}\nserver log tail:\n{log}"
        ) from exc


def _sign_on(page: Page, email: str) -> None:
    """Press "Sign in with …" and answer the provider's authorization form as `email`."""
    page.get_by_role("button", name=f"Sign in with {PROVIDER}").click()
    page.get_by_placeholder("sub").fill(email)
    page.get_by_role("button", name="Authorize").click()


def _walk(page: Page, server: str) -> None:
    page.goto(server)
    # Password sign-in stays beside single sign-on.
    expect(page.get_by_label("Username or e-mail")).to_be_visible()

    # Dr Lee's e-mail: her caseload, her team only.
    _sign_on(page, LEE)
    expect(page.get_by_role("heading", name="Caseload")).to_be_visible()
    expect(page.get_by_text("Signed in as Dr Lee (clinician)")).to_be_visible()
    page.get_by_label("Patient", exact=True).click()
    expect(page.get_by_role("option").first).to_be_visible()
    assert sorted(page.get_by_role("option").all_inner_texts()) == [
        "Alex Boom (A-1)",
        "Avery Avoid (A-2)",
        "Sam Steady (A-3)",
    ]
    page.keyboard.press("Escape")

    # Signing out ends Streamlit's identity cookie too (st.logout goes through the
    # provider's end-session page): coming back shows the sign-in page.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click()
    page.goto(server)
    expect(page.get_by_role("button", name=f"Sign in with {PROVIDER}")).to_be_visible()
    expect(page.get_by_role("heading", name="Caseload")).to_have_count(0)

    # An e-mail no account has: refused, in words, and no session.
    _sign_on(page, "stranger@clinic.example")
    expect(
        page.get_by_text(
            "No Paceline account has the e-mail address stranger@clinic.example."
        ).first
    ).to_be_visible()
    expect(page.get_by_role("button", name=f"Sign out of {PROVIDER}")).to_be_visible()
    expect(page.get_by_role("link", name="Caseload")).to_have_count(0)

    # Dr Okafor's account is locked by an administrator: refused as at the password form.
    _sign_on(page, OKAFOR)
    expect(
        page.get_by_text("This account is locked. Ask an administrator to unlock it.")
    ).to_be_visible()
    expect(page.get_by_role("link", name="Caseload")).to_have_count(0)


def test_a_clinician_signs_on_by_email_and_strangers_and_locked_accounts_do_not(
    server: Server, clinic: Clinic
) -> None:
    with sync_playwright() as pw:
        browser = launch(pw)
        page = new_page(browser)
        with _explained(page, server.work):
            _walk(page, server.url)
        browser.close()

    with connect(clinic.dsn) as c:
        logins = c.execute(
            "SELECT actor, detail->>'method' FROM audit_log WHERE action = 'dashboard.login'"
        ).fetchall()
        last = c.execute(
            "SELECT username FROM account WHERE last_login_at IS NOT NULL ORDER BY 1"
        ).fetchall()
    assert logins == [(f"clinician:{clinic.clinician_a}", "oidc")]
    assert last == [("dr.a",)]
