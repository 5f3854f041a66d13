"""A real browser against `paceline dashboard`: headless Chromium driven by Playwright.

One bounded walk through the main pages, saving a screenshot of each into a
temporary directory, or with `PACELINE_UPDATE_SCREENSHOTS=1` into docs/screenshots/
(the README shows those), so that an ordinary run changes no tracked file. Needs
Debian's `chromium` at /usr/bin/chromium: `python3 dev.py test` installs it when
run as root; otherwise the test fails and says how to install it (it never skips).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from paceline.store.connection import connect
from tests.dashboard.browser import WAIT_MS, dashboard, launch, new_page, require_chromium
from tests.dashboard.conftest import PASSWORD, ROOT, Clinic

DOCS_SHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def server(
    clinic: Clinic, dashboard_dsn: str, key_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`paceline dashboard` on a free loopback port, as a subprocess, until the module ends."""
    require_chromium()
    with connect(clinic.dsn) as c:
        # An open alert for the clinician to acknowledge (as an evaluation would raise it).
        c.execute(
            "INSERT INTO alert (patient_id, rule_id, window_start, severity, status, summary)"
            " VALUES (%s, 'boom.over_quota', now() - interval '1 day', 'critical', 'open',"
            " 'Load above the envelope two days running')",
            (clinic.patient_id,),
        )
        c.commit()
    with dashboard(
        clinic.dsn, dashboard_dsn, key_file, tmp_path_factory.mktemp("dashboard")
    ) as url:
        yield url


def _sign_in(page: Page, url: str, username: str) -> None:
    page.goto(url)
    page.get_by_label("Username or e-mail").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _choose(page: Page, label: str, option: str) -> None:
    """Pick an option of a Streamlit selectbox by typing it."""
    box = page.get_by_label(label, exact=True)
    box.click()
    page.keyboard.type(option)
    page.keyboard.press("Enter")


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=WAIT_MS)


def screenshot_dir(env: Mapping[str, str], tmp: Path) -> Path:
    """docs/screenshots with `PACELINE_UPDATE_SCREENSHOTS=1`, otherwise `tmp`."""
    flag = env.get("PACELINE_UPDATE_SCREENSHOTS", "").strip()
    if flag not in ("", "0", "1"):
        raise ValueError(f"PACELINE_UPDATE_SCREENSHOTS={flag!r}: expected 1 (or 0, or unset)")
    return DOCS_SHOTS if flag == "1" else tmp


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this run saves its screenshots."""
    return screenshot_dir(os.environ, tmp_path_factory.mktemp("screenshots"))


def _shot(page: Page, shots: Path, name: str, *, height: int = 1000) -> None:
    """Save a screenshot of the page as it stands, `height` pixels tall."""
    width = page.viewport_size["width"] if page.viewport_size else 1400
    page.set_viewport_size({"width": width, "height": height})
    # Wait until the script run has finished (the running man is gone) and Streamlit has
    # loaded the code of every table, chart and select box it shows (a placeholder
    # stands in meanwhile), so that no screenshot shows a placeholder.
    page.wait_for_load_state("networkidle")
    expect(page.get_by_test_id("stStatusWidgetRunningManIcon")).to_have_count(0)
    expect(page.locator('[data-testid^="stSkeleton"]')).to_have_count(0)
    page.wait_for_timeout(1500)  # let charts and tables paint; a pause, not an assertion
    page.screenshot(path=str(shots / f"{name}.png"))


def test_screenshots_go_to_the_docs_only_when_asked(tmp_path: Path) -> None:
    assert screenshot_dir({}, tmp_path) == tmp_path
    assert screenshot_dir({"PACELINE_UPDATE_SCREENSHOTS": "0"}, tmp_path) == tmp_path
    assert screenshot_dir({"PACELINE_UPDATE_SCREENSHOTS": "1"}, tmp_path) == DOCS_SHOTS
    with pytest.raises(ValueError, match="PACELINE_UPDATE_SCREENSHOTS"):
        screenshot_dir({"PACELINE_UPDATE_SCREENSHOTS": "yes"}, tmp_path)


def test_clinician_and_patient_walk_through_the_dashboard(
    server: str, clinic: Clinic, shots: Path
) -> None:
    note = "<b>Walked</b> to the shop and back, knee fine"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        page = new_page(browser)

        # A clinician: the caseload, one patient, the plan.
        _sign_in(page, server, "dr.a")
        expect(page.get_by_role("heading", name="Caseload")).to_be_visible()
        expect(page.get_by_text("Needs attention now").first).to_be_visible()
        _shot(page, shots, "caseload", height=1100)
        _choose(page, "Patient", "Alex Boom")
        page.get_by_role("button", name="Open patient").click()
        expect(page.get_by_role("heading", name="Alex Boom")).to_be_visible()
        expect(page.get_by_text("Daily load against quota").first).to_be_visible()
        _shot(page, shots, "patient", height=2600)
        page.get_by_text("Edit plan and ladder").click()
        expect(page.get_by_role("heading", name="Plan", exact=True)).to_be_visible()
        _shot(page, shots, "plan", height=1500)
        page.get_by_role("link", name="Alerts").click()
        expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
        page.get_by_label("Note (what you did or will do)").fill("Called; rest day agreed.")
        page.get_by_role("button", name="Acknowledge", exact=True).click()
        expect(page.get_by_text(re.compile(r"^Alert \d+ acknowledged\.$"))).to_be_visible()
        _shot(page, shots, "alerts", height=1000)
        _sign_out(page)

        # The patient, on a phone-sized screen: today's plan and the diary.
        phone = new_page(browser, 390, 844)
        _sign_in(phone, server, clinic.patient_login)
        expect(phone.get_by_role("heading", name="Hello, Alex")).to_be_visible()
        phone.get_by_label("Anything you want your clinician to know").fill(note)
        phone.get_by_role("button", name="Save diary").click()
        expect(phone.get_by_text("Saved. Thank you.")).to_be_visible()
        phone.get_by_role("heading", name="Hello, Alex").scroll_into_view_if_needed()
        _shot(phone, shots, "my_day", height=1400)
        _sign_out(phone)

        # Back as the clinician: the note is there, as the patient typed it.
        _sign_in(page, server, "dr.a")
        _choose(page, "Patient", "Alex Boom")
        page.get_by_role("button", name="Open patient").click()
        expect(page.get_by_text(note, exact=True)).to_be_visible()
        _sign_out(page)

        _sign_in(page, server, "admin")
        expect(page.get_by_role("heading", name="Administration")).to_be_visible()
        _shot(page, shots, "admin", height=900)
        _sign_out(page)
        browser.close()
    saved = {p.name for p in shots.glob("*.png")}
    assert saved >= {
        f"{n}.png" for n in ("caseload", "patient", "plan", "alerts", "my_day", "admin")
    }
