"""The web explorer in a real browser: Debian's chromium driven by Playwright for Python.

The test starts the real app with uvicorn on a free localhost port in a background thread,
then reads the guide, searches it, runs a virtual patient, moves the time slider with the
keyboard and checks that the body map changed, and runs a cohort and checks that plotly drew
its charts.  Every request the browser makes is recorded: one to anywhere but the test
server (a CDN, a font service) fails the test, as does any error in the browser console
(which is also where a Content-Security-Policy violation would show).  Screenshots of the
patient and cohort pages are written to ``tests/artifacts/``.

Chromium is Debian's (``apt-get install chromium``), launched by path: ``playwright
install`` is never needed.  Without it the test fails and says how to install it; set
``METASTASIS_SKIP_BROWSER=1`` to skip these tests on a machine without a browser.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from metastasis import DISCLAIMER
from metastasis.api import load_model, run_patient
from metastasis.clinical.course import Arm
from metastasis.limits import FOLLOW_UP_YEARS

CHROMIUM = os.environ.get("METASTASIS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
SEED = 11
YEARS = 15

pytestmark = [
    pytest.mark.slow,  # a real browser: seconds per page
    pytest.mark.skipif(
        os.environ.get("METASTASIS_SKIP_BROWSER") == "1",
        reason="METASTASIS_SKIP_BROWSER=1: browser tests skipped on request",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """The real app, served by uvicorn from a background thread for this module."""
    import uvicorn

    from metastasis.web import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the web explorer did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"no chromium at {CHROMIUM}: install Debian's (apt-get install -y chromium) or "
            "point METASTASIS_CHROMIUM at one; set METASTASIS_SKIP_BROWSER=1 to skip the "
            "browser tests on purpose"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright for Python is missing: pip install playwright (the browser "
                    "itself comes from Debian; do not run 'playwright install')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@dataclass
class Session:
    """A page plus what it asked for and what it complained about."""

    page: Any
    base_url: str
    requests: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check_clean(self) -> None:
        """Nothing loaded from elsewhere, nothing went wrong in the page."""
        elsewhere = [u for u in self.requests
                     if not u.startswith((self.base_url, "data:", "about:"))]
        assert not elsewhere, f"the page reached outside the app: {elsewhere}"
        assert not self.problems, f"errors in the browser: {self.problems}"

    def wait_for_map(self, frame: int) -> None:
        self.page.wait_for_function(
            "f => { const m = document.getElementById('bodymap');"
            " return m && m.dataset.frame === String(f); }",
            arg=frame,
        )

    def circles(self) -> dict[int, float]:
        """Radius of each lesion drawn on the map, by lesion number."""
        return {
            int(lesion): float(r)
            for lesion, r in self.page.eval_on_selector_all(
                "#bodymap circle.lesion",
                "cs => cs.map(c => [c.dataset.lesion, c.getAttribute('r')])",
            )
        }


@pytest.fixture
def session(browser: Any, base_url: str) -> Iterator[Session]:
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    s = Session(page, base_url)
    page.on("request", lambda request: s.requests.append(request.url))
    page.on("console", lambda m: s.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: s.problems.append(str(error)))
    yield s
    context.close()


def a_patient_with_metastases() -> int:
    """First patient of seed SEED with a metastasis growing outside the lymph nodes, found
    through the public API so the test follows the model's calibration."""
    model = load_model("colorectal")
    for index in range(200):
        if run_patient(model, SEED, index, YEARS).first_organ_metastasis() is not None:
            return index
    pytest.fail("no colorectal patient among 200 developed an organ metastasis")


def test_read_and_search_the_guide(session: Session) -> None:
    page = session.page
    page.goto("/guide")
    assert DISCLAIMER in page.inner_text("#disclaimer")
    page.click("main a[href='/guide/six-steps']")
    page.wait_for_url("**/guide/six-steps")
    assert "six steps" in page.inner_text("article h1").lower()

    term = page.locator("article a.term").first
    href = term.get_attribute("href")
    assert href and href.startswith("/guide/glossary#")
    term.click()
    page.wait_for_url("**/guide/glossary#*")
    assert page.locator(f"#{href.split('#')[1]}").count() == 1

    page.fill("#guide-search", "jaundice")
    page.press("#guide-search", "Enter")
    page.wait_for_selector("#search-results li")
    assert "jaundice" in page.inner_text("#search-results mark").lower()
    first = page.locator("#search-results li a").first
    target = first.get_attribute("href")
    first.click()
    page.wait_for_url(f"**{target}")
    assert "jaundice" in page.inner_text("article").lower()
    assert DISCLAIMER in page.inner_text("#disclaimer")
    session.check_clean()


def test_virtual_patient_and_time_slider(session: Session) -> None:
    page = session.page
    index = a_patient_with_metastases()
    page.goto("/patient")
    page.select_option("#cancer", "colorectal")
    page.fill("#seed", str(SEED))
    page.fill("#index", str(index))
    page.fill("#years", str(YEARS))
    # the untreated natural history: every metastasis stays on the map to the end
    page.select_option("#clinical-choice", "false")
    page.click("#run-patient")
    page.wait_for_selector("#bodymap")
    assert f"seed {SEED}, patient {index}" in page.inner_text("#summary-title")
    assert page.locator("#clinical").count() == 0, "no clinical course was asked for"
    frames = int(page.get_attribute("#day-slider", "max") or 0)
    session.wait_for_map(frames)
    at_end = session.circles()
    assert len(at_end) > 1, "metastases are drawn"
    assert page.locator("#bodymap path.route").count() > 0, "routes of spread are drawn"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "patient-page.png"), full_page=True)

    # keyboard only: the slider back to the first cell
    page.focus("#day-slider")
    page.keyboard.press("Home")
    session.wait_for_map(0)
    at_start = session.circles()
    assert list(at_start) == [0], "on day 0 there is only the primary's first cell"
    assert at_start[0] < at_end[0], "the primary grew"
    assert page.inner_text("#day-output").startswith("day 0 ")
    assert page.get_attribute("#day-slider", "aria-valuetext").startswith("day 0 ")

    # step forward with the arrow keys: the map follows
    for _ in range(3):
        page.keyboard.press("ArrowRight")
    session.wait_for_map(3)
    page.keyboard.press("End")
    session.wait_for_map(frames)
    assert session.circles() == at_end

    # an event of the timeline shows its day on the map
    outgrowth = page.locator("#timeline tr", has_text="grows as a metastatic tumour").first
    day = float(outgrowth.locator("button[data-day]").get_attribute("data-day") or "nan")
    outgrowth.locator("button[data-day]").click()
    page.wait_for_function(
        "d => { const m = document.getElementById('bodymap');"
        " return m && Math.abs(parseFloat(m.dataset.day) - d) < 1e-6 * Math.max(1, d); }",
        arg=day,
    )
    assert session.circles() != at_end or day == pytest.approx(float(
        page.get_attribute("#patient", "data-end-time") or "nan"))
    session.check_clean()


def test_clinical_course_on_the_patient_page(session: Session) -> None:
    """The page tells the clinical course by default: the diagnosis named as the clinical
    layer names it, and a treatment day shown on the body map (the treated true state)."""
    from metastasis.clinical.course import simulate_course
    from metastasis.clinical.loader import load_clinical
    from metastasis.clinical.treatment_schema import load_treatments

    # the first patient operated on and then treated on a later day (adjuvant drugs)
    model, clinical, treatments = load_model("colorectal"), load_clinical(), load_treatments()
    for index in range(40):
        course = simulate_course(model, clinical, treatments, SEED, index, 10.0,
                                 Arm("standard care", years_after_diagnosis=FOLLOW_UP_YEARS))
        if (course.diagnosis is not None and course.treatment
                and course.treatment[0].outcome == "resected"
                and course.treatment[-1].day > course.treatment[0].day):
            break
    else:
        pytest.fail("no patient of 40 was operated on and treated later")
    page = session.page
    page.goto(f"/patient?cancer=colorectal&seed={SEED}&index={index}&years=10")
    page.wait_for_selector("#bodymap")
    assert page.is_visible("#diagnosis-name")
    assert page.inner_text("#diagnosis-name").strip() == course.diagnosis.name
    assert course.diagnosis.stage.tnm in page.inner_text("#diagnosis")
    assert page.inner_text("#protocol").strip() == course.protocol
    # the last treatment's day, by keyboard: the primary, resected before it, is off the map
    assert course.treatment[0].outcome == "resected"
    assert course.treatment[-1].day > course.treatment[0].day
    button = page.locator("#treatment button[data-day]").last
    day = float(button.get_attribute("data-day") or "nan")
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_function(
        "d => { const m = document.getElementById('bodymap');"
        " return m && Math.abs(parseFloat(m.dataset.day) - d) < 1e-6 * Math.max(1, d); }",
        arg=day,
    )
    assert 0 not in session.circles(), "the resected primary is no longer drawn"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "patient-clinical.png"), full_page=True)
    session.check_clean()


def test_the_slider_is_reachable_by_keyboard(session: Session) -> None:
    page = session.page
    page.goto(f"/patient?cancer=colorectal&seed={SEED}&index=0&years=10")
    page.wait_for_selector("#bodymap")
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == "day-slider":
            break
    else:
        pytest.fail("Tab never reached the time slider")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "the focused slider shows a focus ring"
    session.check_clean()


def test_cohort_page_draws_plotly_charts(session: Session) -> None:
    page = session.page
    page.goto("/cohort")
    page.click("#run-cohort")
    page.wait_for_selector("#chart-sites[data-rendered='true']", timeout=90_000)
    page.wait_for_selector("#chart-incidence[data-rendered='true']")
    assert page.locator("#chart-sites .main-svg").count() > 0
    assert page.locator("#chart-sites g.point").count() > 0, "bars were drawn"
    assert page.locator("#chart-incidence g.trace").count() >= 2, "one curve per cancer"
    assert page.locator("#cohort-summary tbody tr").count() >= 2
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "cohort-page.png"), full_page=True)
    assert any(u.endswith("/vendor/plotly.min.js") for u in session.requests)
    session.check_clean()


def test_ticking_clinical_course_keeps_the_default_cohort_within_the_limit(
    session: Session,
) -> None:
    """The form's defaults (four cancer types, 200 patients each) exceed the clinical
    course's limit: ticking it lowers the number per type to what the limit allows, says so,
    and the run is accepted; unticking it restores the reader's number."""
    from metastasis.web.limits import Limits

    limit = min(Limits().max_clinical_patients, Limits().max_patients)
    page = session.page
    page.goto("/cohort")
    types = page.locator("input[name='cancer']:checked").count()
    assert int(page.input_value("#patients")) * types > limit, "the defaults exceed the limit"
    page.check("#clinical")
    allowed = limit // types
    assert int(page.input_value("#patients")) == allowed
    assert str(allowed) in page.inner_text("#clinical-cap")
    page.uncheck("#clinical")
    assert page.input_value("#patients") == "200"
    assert page.inner_text("#clinical-cap") == ""
    page.check("#clinical")
    page.fill("#years", "8")
    page.click("#run-cohort")
    page.wait_for_selector("#cohort-results", timeout=120_000)
    assert page.locator("#form-error").count() == 0, "the clinical cohort was accepted"
    session.check_clean()


PHONE_PAGES = (
    "/", "/guide", "/guide/common-sites", "/patient",
    "/patient?cancer=colorectal&seed=7&index=0&years=10&clinical=true",
    f"/patient?cancer=breast&seed={SEED}&index=0&years={YEARS}",
    "/cohort", "/cohort?cancer=colorectal&cancer=breast&patients=30&seed=1&years=10",
    "/cohort?cancer=colorectal&patients=20&seed=1&years=10&clinical=true",
)


def test_no_page_scrolls_sideways_on_a_phone(browser: Any, base_url: str) -> None:
    """At 390 px (a phone) no page is wider than the screen: wide tables scroll inside their
    own box, which takes keyboard focus and is named for screen readers."""
    context = browser.new_context(base_url=base_url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        for path in PHONE_PAGES:
            response = page.goto(path)
            assert response is not None and response.status == 200, path
            page.wait_for_load_state("networkidle")
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is {width} px wide at 390 px"
        boxes = page.eval_on_selector_all(
            ".table-scroll", "bs => bs.map(b => [b.scrollWidth > b.clientWidth, "
            "b.getAttribute('tabindex'), b.getAttribute('role'), b.getAttribute('aria-label')])")
        assert any(scrolls for scrolls, *_ in boxes), "a wide table scrolls in its box"
        for _, tabindex, role, label in boxes:
            assert tabindex == "0" and role == "region" and label
    finally:
        context.close()


def test_cohort_charts_are_readable(session: Session) -> None:
    """On the cohort page the site chart's legend covers none of its organ labels, its y
    title is inside the drawing, and its ticks carry the % unit (all three were wrong)."""
    page = session.page
    page.goto("/cohort?cancer=colorectal&cancer=breast&patients=60&seed=1&years=10")
    page.wait_for_selector("#chart-sites[data-rendered='true']", timeout=90_000)
    boxes = page.evaluate("""() => {
        const chart = document.querySelector('#chart-sites');
        const box = e => { const r = e.getBoundingClientRect();
                           return [r.left, r.top, r.right, r.bottom]; };
        return {
            svg: box(chart.querySelector('.main-svg')),
            legend: box(chart.querySelector('.legend')),
            labels: [...chart.querySelectorAll('.xtick text')].map(box),
            ytitle: box(chart.querySelector('.ytitle')),
            ticks: [...chart.querySelectorAll('.ytick text')].map(t => t.textContent),
        };
    }""")

    def overlap(a: list[float], b: list[float]) -> bool:
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    assert boxes["labels"], "the chart has organ labels"
    assert not any(overlap(boxes["legend"], label) for label in boxes["labels"])
    assert boxes["ytitle"][0] >= boxes["svg"][0] - 0.5, "the y title is clipped on the left"
    assert all(t.endswith("%") for t in boxes["ticks"] if t.strip()), boxes["ticks"]
    session.check_clean()


def _axe_violations(page: Any) -> list[str]:
    """axe-core's violations on the page as it stands, one line each (rule, impact, where)."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(node["target"]) for node in v["nodes"][:5]) for v in found]


@pytest.mark.parametrize("width", [1280, 390])
def test_axe_core_finds_no_violation_on_any_page(browser: Any, base_url: str,
                                                width: int) -> None:
    """axe-core (the accessibility engine browsers' own tools use, bundled by
    axe-playwright-python; nothing is fetched) on every kind of page at desktop and phone
    width, after the charts are drawn: it found plotly's toolbar buttons inside a chart
    marked as an image, and two guide search forms with one name."""
    from metastasis.guide.content import slugs

    pages = [*PHONE_PAGES, "/guide/search?q=liver", "/patient?cancer=nope"]
    if width == 1280:
        pages += [f"/guide/{slug}" for slug in slugs()]
    context = browser.new_context(base_url=base_url, viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(90_000)
    problems: dict[str, list[str]] = {}
    try:
        for path in dict.fromkeys(pages):
            page.goto(path)
            page.wait_for_load_state("networkidle")
            if page.query_selector("[data-figure]"):
                page.wait_for_selector("[data-figure]:not([data-rendered='true'])",
                                       state="detached")
            found = _axe_violations(page)
            if found:
                problems[path] = found
    finally:
        context.close()
    assert not problems, problems
