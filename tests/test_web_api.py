"""The web explorer's JSON API and pages, through FastAPI's TestClient.

What is checked: every endpoint answers with the public API's own numbers (the web adds no
arithmetic of its own to a result), the limits stated in the OpenAPI schema are the limits
enforced, every malformed request gets a 4xx whose message names the field, the value and
what is allowed (never a 500), a run past its time limit is stopped and its worker freed,
and every page and response carries the disclaimer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

import metastasis
import metastasis.guide as guide
from metastasis import jsondata
from metastasis.api import load_model, run_patient
from metastasis.clinical.course import Arm
from metastasis.cohort import run_cohort
from metastasis.knowledge.loader import load as load_knowledge
from metastasis.limits import FOLLOW_UP_YEARS
from metastasis.web import Limits, bodymap, charts, clinical_view, create_app
from metastasis.web.limits import MAX_INDEX, MAX_SEED
from metastasis.web.runner import Busy, Deadline, Runner, TooSlow

KB = load_knowledge()
CANCERS = sorted(KB.cancers)
SEED = 11
YEARS = 10.0
WEB_ARM = Arm("standard care", years_after_diagnosis=FOLLOW_UP_YEARS)
"""The arm of the web's clinical courses: standard care, followed five years from diagnosis."""


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def problem(response, status: int, field: str) -> str:
    """Assert the API's error shape and return its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["disclaimer"] == metastasis.DISCLAIMER
    assert body["error"]["status"] == status
    assert body["error"]["field"] == field
    assert body["detail"].startswith(f"{field}: got ")
    assert "allowed: " in body["detail"]
    return body["detail"]


def patient_with_metastases(cancer: str = "colorectal", years: float = 15.0) -> int:
    """Index of the first patient (seed SEED) with a growing metastasis outside the nodes:
    chosen through the public API so the tests follow the model as it is calibrated."""
    model = load_model(cancer)
    for index in range(200):
        if run_patient(model, SEED, index, years).first_organ_metastasis() is not None:
            return index
    pytest.fail("no colorectal patient among 200 developed an organ metastasis")


# --------------------------------------------------------------------------- model endpoints


def test_cancers_lists_the_knowledge_base(client: TestClient) -> None:
    response = client.get("/api/cancers")
    assert response.status_code == 200
    body = response.json()
    assert body["disclaimer"] == metastasis.DISCLAIMER
    assert [c["name"] for c in body["cancers"]] == CANCERS
    for c in body["cancers"]:
        spec = KB.cancers[c["name"]]
        assert c["label"] == spec.label and c["primary_site"] == spec.primary_site
        assert c["primary_label"] == KB.sites[spec.primary_site].label


def test_sites_and_limits(client: TestClient) -> None:
    sites = client.get("/api/sites").json()["sites"]
    assert [s["name"] for s in sites] == list(KB.sites)
    limits = client.get("/api/limits").json()["limits"]
    assert limits == Limits().as_dict()


def test_patient_is_the_public_api_result(client: TestClient) -> None:
    response = client.get("/api/patient", params={"cancer": "colorectal", "seed": SEED,
                                                  "index": 3, "years": YEARS})
    assert response.status_code == 200
    body = response.json()
    expected = run_patient(load_model("colorectal"), SEED, 3, YEARS).to_dict()
    assert body["disclaimer"] == metastasis.DISCLAIMER
    assert body["root_seed"] == SEED and body["seed_drawn"] is False
    assert body["end_time"] == expected["end_time"]
    assert body["lesions"] == expected["lesions"]
    assert body["accounting"] == expected["accounting"]
    assert len(body["events"]) == len(expected["events"])
    for got, want in zip(body["events"], expected["events"], strict=True):
        assert got["time"] == want["time"] and got["kind"] == want["kind"]
        assert got["description"]
        assert got["guide_url"] == f"/guide/{guide.for_step(want['step']).slug}"
    assert body["clinical"] is None


def test_patient_without_seed_draws_one_and_reports_it(client: TestClient) -> None:
    body = client.get("/api/patient", params={"cancer": "melanoma", "years": 2}).json()
    assert body["seed_drawn"] is True
    assert 0 <= body["root_seed"] <= MAX_SEED
    again = client.get("/api/patient", params={"cancer": "melanoma", "years": 2,
                                               "seed": body["root_seed"]}).json()
    assert again["seed_drawn"] is False
    assert again["lesions"] == body["lesions"]


def test_sizes_are_the_lesion_table_on_that_day(client: TestClient) -> None:
    index = patient_with_metastases()
    result = run_patient(load_model("colorectal"), SEED, index, 15.0)
    params = {"cancer": "colorectal", "seed": SEED, "index": index, "years": 15}
    for day in (0.0, result.end_time / 2, result.end_time):
        body = client.get("/api/patient/sizes", params={**params, "day": day}).json()
        sizes = result.lesions.size_at(day)
        states = result.lesions.state_at(day)
        founded = np.flatnonzero(states != "none")
        assert [row["id"] for row in body["lesions"]] == founded.tolist()
        assert [row["cells"] for row in body["lesions"]] == pytest.approx(sizes[founded])
        assert body["lesions"][0]["state"] == "primary"
        assert sum(s["cells"] for s in body["sites"]) == pytest.approx(sizes.sum())
    start = client.get("/api/patient/sizes", params={**params, "day": 0}).json()
    assert [(r["id"], r["cells"]) for r in start["lesions"]] == [(0, pytest.approx(1.0))]


def test_sizes_day_must_be_in_the_natural_history(client: TestClient) -> None:
    params = {"cancer": "colorectal", "seed": SEED, "index": 0, "years": 5}
    end = client.get("/api/patient", params=params).json()["end_time"]
    assert client.get("/api/patient/sizes", params={**params, "day": end}).status_code == 200
    message = problem(client.get("/api/patient/sizes", params={**params, "day": end + 1}),
                      422, "day")
    assert "end of this patient's natural history" in message
    for bad in ("-1", "nan", "inf", "soon", ""):
        problem(client.get("/api/patient/sizes", params={**params, "day": bad}), 422, "day")
    problem(client.get("/api/patient/sizes", params={"cancer": "colorectal", "day": 1}),
            422, "seed")


def test_cohort_is_the_public_api_cohort(client: TestClient) -> None:
    params = {"cancer": "breast", "patients": 120, "seed": SEED, "years": YEARS}
    body = client.get("/api/cohort", params=params).json()
    expected = run_cohort(load_model("breast"), 120, SEED, YEARS, keep_lesions=False)
    assert body["summary"] == json.loads(json.dumps(jsondata.plain(expected.summary())))
    assert body["provenance"]["root_seed"] == SEED
    assert body["provenance"]["n_patients"] == 120
    days = expected.patients["first_distant_day"].dropna().sort_values().tolist()
    assert body["first_distant_days"] == pytest.approx(days)
    curve = body["cumulative_incidence"]
    assert curve["share"][-1] == pytest.approx(len(days) / 120)
    assert curve["share"][-1] == pytest.approx(body["summary"]["any_distant"]["share"])
    assert curve["days"][-1] == pytest.approx(YEARS * 365.25)
    assert all(np.diff(curve["share"]) >= 0) and all(np.diff(curve["days"]) >= 0)


def test_chunked_web_cohort_equals_one_run() -> None:
    """The runner splits a cohort into chunks so it can stop on time; the joined cohort
    must be exactly the one a single run_cohort call gives."""
    runner = Runner(Limits())
    try:
        chunked = runner.cohort("gastric", 90, 5, 8.0, Deadline(60))
        whole = run_cohort(load_model("gastric"), 90, 5, 8.0, keep_lesions=False)
        assert chunked.patients.equals(whole.patients)
    finally:
        runner.shutdown()


# --------------------------------------------------------------------------- bad requests

BAD_QUERIES = [
    ("/api/patient", {"cancer": "lung", "seed": 1}, "cancer"),
    ("/api/patient", {"seed": 1}, "cancer"),
    ("/api/patient", {"cancer": "colorectal", "seed": -1}, "seed"),
    ("/api/patient", {"cancer": "colorectal", "seed": 2**63}, "seed"),
    ("/api/patient", {"cancer": "colorectal", "seed": "1.5"}, "seed"),
    ("/api/patient", {"cancer": "colorectal", "seed": "ten"}, "seed"),
    ("/api/patient", {"cancer": "colorectal", "seed": "9" * 5000}, "seed"),
    ("/api/patient", {"cancer": "colorectal", "seed": 1, "index": -3}, "index"),
    ("/api/patient", {"cancer": "colorectal", "seed": 1, "index": MAX_INDEX + 1}, "index"),
    ("/api/patient", {"cancer": "colorectal", "seed": 1, "years": 0}, "years"),
    ("/api/patient", {"cancer": "colorectal", "seed": 1, "years": -2}, "years"),
    ("/api/patient", {"cancer": "colorectal", "seed": 1, "years": 61}, "years"),
    ("/api/patient", {"cancer": "colorectal", "seed": 1, "years": "nan"}, "years"),
    ("/api/patient", {"cancer": "colorectal", "seed": 1, "years": "NaN"}, "years"),
    ("/api/patient", {"cancer": "colorectal", "seed": 1, "years": "inf"}, "years"),
    ("/api/patient", {"cancer": "colorectal", "seed": 1, "years": "1e400"}, "years"),
    ("/api/patient", {"cancer": "colorectal", "seed": 1, "years": "ten"}, "years"),
    ("/api/cohort", {"cancer": "colorectal", "patients": 0}, "patients"),
    ("/api/cohort", {"cancer": "colorectal", "patients": 2001}, "patients"),
    ("/api/cohort", {"cancer": "colorectal", "patients": 10**30}, "patients"),
    ("/api/cohort", {"cancer": "colorectal", "patients": "many"}, "patients"),
    ("/api/cohort", {"cancer": "Colorectal", "patients": 5}, "cancer"),
    ("/api/cohort", {"cancer": "colorectal", "patients": 5, "years": "-inf"}, "years"),
    ("/api/guide/search", {}, "q"),
    ("/api/guide/search", {"q": ""}, "q"),
    ("/api/guide/search", {"q": "x" * 201}, "q"),
    ("/api/guide/search", {"q": "liver", "limit": 0}, "limit"),
    ("/api/guide/search", {"q": "liver", "limit": 51}, "limit"),
    ("/api/guide/search", {"q": "!!! ???"}, "query"),
    ("/api/guide/search", {"q": " ".join(["word"] * 13)}, "query"),
]


@pytest.mark.parametrize(("path", "params", "field"), BAD_QUERIES)
def test_bad_request_gets_a_clear_422(client: TestClient, path: str, params: dict[str, object],
                                      field: str) -> None:
    message = problem(client.get(path, params=params), 422, field)
    if field in ("cancer",) and "cancer" in params:
        assert all(name in message for name in CANCERS)


def test_unknown_cancer_message_is_the_model_error(client: TestClient) -> None:
    body = client.get("/api/patient", params={"cancer": "lung", "seed": 1}).json()
    with pytest.raises(metastasis.ModelError) as raised:
        load_model("lung")
    assert body["detail"] == str(raised.value)
    assert body["error"]["value"] == "lung"


def test_unknown_paths_and_methods(client: TestClient) -> None:
    response = client.get("/api/nothing")
    assert response.status_code == 404
    assert response.json()["detail"] == "nothing at /api/nothing"
    assert response.json()["disclaimer"] == metastasis.DISCLAIMER
    response = client.post("/api/cancers")
    assert response.status_code == 405
    assert "POST is not allowed" in response.json()["detail"]
    response = client.get("/api/guide/sections/no-such-page")
    assert response.status_code == 404
    assert "six-steps" in response.json()["detail"]
    page = client.get("/no/such/page")
    assert page.status_code == 404 and metastasis.DISCLAIMER in page.text


def test_a_method_not_allowed_says_which_are(client: TestClient) -> None:
    """RFC 9110: a 405 carries Allow, for the API and the pages alike, and the methods it
    names are accepted."""
    for path in ("/api/cancers", "/api/limits", "/cohort", "/guide", "/"):
        response = client.request("DELETE", path)
        assert response.status_code == 405, path
        allowed = [m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()]
        assert "GET" in allowed, (path, response.headers)
        assert client.get(path).status_code == 200, path


@settings(max_examples=60)
@given(
    field=st.sampled_from(["cancer", "seed", "index", "years", "patients", "day", "q",
                           "limit"]),
    value=st.one_of(
        st.text(max_size=30),
        st.integers(min_value=-(10**40), max_value=10**40).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.sampled_from(["", " ", "nan", "-0", "1e-300", "0x10", "1_000", "٣", "\x00"]),
    ),
)
def test_no_input_makes_a_500(client: TestClient, field: str, value: str) -> None:
    """Whatever arrives in one field (others valid and cheap), the answer is 200 or a clear
    4xx: never a server error."""
    base = {
        "/api/patient": {"cancer": "melanoma", "seed": "1", "index": "0", "years": "1"},
        "/api/patient/sizes": {"cancer": "melanoma", "seed": "1", "years": "1", "day": "10"},
        "/api/cohort": {"cancer": "melanoma", "patients": "3", "seed": "1", "years": "1"},
        "/api/guide/search": {"q": "liver", "limit": "3"},
    }
    for path, params in base.items():
        if field not in params:
            continue
        response = client.get(path, params={**params, field: value})
        assert response.status_code in (200, 422), (path, field, value, response.text)
        if response.status_code == 422:
            assert response.json()["detail"]


# --------------------------------------------------------------------------- limits in time


def test_a_run_past_the_time_limit_is_stopped_and_its_worker_freed() -> None:
    app = create_app(Limits(request_seconds=0.3))
    runner = app.state.metastasis.runner
    with TestClient(app, raise_server_exceptions=False) as slow:
        began = time.monotonic()
        response = slow.get("/api/cohort", params={"cancer": "colorectal", "patients": 2000,
                                                   "seed": 1, "years": 60})
        assert time.monotonic() - began < 5.0
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert "longer than the limit of 0.3 s" in response.json()["detail"]
        deadline = time.monotonic() + 30
        while runner.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runner.active == 0, "the abandoned simulation kept running"
        # and the server still answers
        assert slow.get("/api/patient", params={"cancer": "melanoma", "seed": 1,
                                                "years": 1}).status_code == 200


def test_a_full_server_answers_busy_at_once() -> None:
    app = create_app(Limits(max_running=1, max_waiting=0, request_seconds=2))
    runner = app.state.metastasis.runner
    with TestClient(app, raise_server_exceptions=False) as busy:
        results: dict[str, int] = {}

        def long_request() -> None:
            results["first"] = busy.get(
                "/api/cohort", params={"cancer": "colorectal", "patients": 2000, "seed": 2,
                                       "years": 60}).status_code

        thread = threading.Thread(target=long_request)
        thread.start()
        waited = time.monotonic() + 10
        while runner.active == 0 and time.monotonic() < waited:
            time.sleep(0.01)
        assert runner.active == 1
        response = busy.get("/api/patient", params={"cancer": "melanoma", "seed": 1,
                                                    "years": 1})
        assert response.status_code == 503
        assert "try again" in response.json()["detail"]
        assert response.headers["Retry-After"]
        thread.join(60)
        assert results["first"] in (200, 503)


def test_runner_refuses_beyond_its_places_and_times_out() -> None:
    async def scenario() -> None:
        runner = Runner(Limits(max_running=1, max_waiting=0, request_seconds=0.2))
        gate = threading.Event()
        first = asyncio.ensure_future(runner.call(lambda deadline: gate.wait(5)))
        await asyncio.sleep(0.05)
        with pytest.raises(Busy):
            await runner.call(lambda deadline: 1)
        with pytest.raises(TooSlow):
            await first
        gate.set()
        for _ in range(100):
            if runner.active == 0:
                break
            await asyncio.sleep(0.01)
        assert runner.active == 0
        assert await runner.call(lambda deadline: 42) == 42
        runner.shutdown()

    asyncio.run(scenario())


# --------------------------------------------------------------------------- the schema


def test_openapi_lists_the_endpoints_and_their_limits(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/api/cancers", "/api/sites", "/api/limits", "/api/patient",
                 "/api/patient/sizes", "/api/cohort", "/api/guide", "/api/guide/glossary",
                 "/api/guide/search", "/api/guide/sections/{slug}"):
        assert path in paths, path
    assert not any(p.startswith(("/patient", "/cohort", "/guide")) for p in paths)

    def parameter(path: str, name: str) -> dict[str, object]:
        for p in paths[path]["get"]["parameters"]:
            if p["name"] == name:
                schema_part = p["schema"]
                if "anyOf" in schema_part:  # optional: [{type...}, {type: null}]
                    schema_part = schema_part["anyOf"][0]
                return {**schema_part, "required": p.get("required", False),
                        "description": p.get("description", "")}
        raise AssertionError(f"{path} has no parameter {name}")

    limits = Limits()
    patients = parameter("/api/cohort", "patients")
    assert patients["minimum"] == 1 and patients["maximum"] == limits.max_patients
    for path in ("/api/patient", "/api/cohort", "/api/patient/sizes"):
        years = parameter(path, "years")
        assert years["exclusiveMinimum"] == 0 and years["maximum"] == limits.max_years
        assert parameter(path, "cancer")["enum"] == CANCERS
        assert parameter(path, "seed")["maximum"] == MAX_SEED
    assert parameter("/api/patient/sizes", "seed")["required"] is True
    assert parameter("/api/patient", "index")["maximum"] == MAX_INDEX
    cohort = paths["/api/cohort"]["get"]
    assert {"422", "503"} <= set(cohort["responses"])
    assert f"{limits.request_seconds:g} s per request" in cohort["description"]
    assert metastasis.DISCLAIMER in schema["info"]["description"]
    assert "ErrorResponse" in schema["components"]["schemas"]


def test_schema_follows_the_apps_limits() -> None:
    limits = Limits(max_patients=50, max_years=5)
    with TestClient(create_app(limits)) as small:
        schema = small.get("/openapi.json").json()
        parameters = {p["name"]: p["schema"] for p in
                      schema["paths"]["/api/cohort"]["get"]["parameters"]}
        assert parameters["patients"]["maximum"] == 50
        assert parameters["years"]["maximum"] == 5
        problem(small.get("/api/cohort", params={"cancer": "colorectal", "patients": 51}),
                422, "patients")
        problem(small.get("/api/patient", params={"cancer": "colorectal", "years": 6}),
                422, "years")


# --------------------------------------------------------------------------- the guide


def test_guide_api(client: TestClient) -> None:
    toc = client.get("/api/guide").json()["sections"]
    assert [s["slug"] for s in toc] == [s.slug for s in guide.sections()]
    page = client.get(f"/api/guide/sections/{toc[0]['slug']}").json()
    assert page["title"] == toc[0]["title"] and "<h1>" in page["html"]
    assert page["disclaimer"] == metastasis.DISCLAIMER
    terms = client.get("/api/guide/glossary").json()["terms"]
    assert [t["term"] for t in terms] == [t.term for t in guide.glossary()]
    hits = client.get("/api/guide/search", params={"q": "jaundice"}).json()["hits"]
    assert hits, "the guide says what jaundice is"
    assert all(h["url"].startswith("/guide/") for h in hits)
    assert any(matched and "jaundice" in text.lower()
               for h in hits for text, matched in h["segments"])


def test_guide_pages_link_only_to_pages_and_terms_that_exist(client: TestClient) -> None:
    slugs = {s.slug for s in guide.sections()}
    glossary = client.get("/guide/glossary")
    assert glossary.status_code == 200
    anchors = set(re.findall(r'id="([^"]+)"', glossary.text))
    assert {t.anchor for t in guide.glossary()} <= anchors
    term_links = 0
    for slug in slugs:
        response = client.get(f"/guide/{slug}")
        assert response.status_code == 200, slug
        assert metastasis.DISCLAIMER in response.text
        for href in re.findall(r'href="(/guide/[^"]*)"', response.text):
            path, _, fragment = href.partition("#")
            target = path.removeprefix("/guide/")
            if target == "search" or not target:
                continue
            assert target in slugs, f"{slug} links to {href}"
            if target == "glossary" and fragment:
                assert fragment in anchors, f"{slug} links to a missing term {href}"
                term_links += 1
    assert term_links > 10, "glossary terms are linked from the pages"


def test_guide_toc_and_search_pages(client: TestClient) -> None:
    toc = client.get("/guide")
    for section in guide.sections():
        assert f'href="/guide/{section.slug}"' in toc.text
    found = client.get("/guide/search", params={"q": "jaundice"})
    assert found.status_code == 200 and "<mark>" in found.text
    bad = client.get("/guide/search", params={"q": "???"})
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    empty = client.get("/guide/search")
    assert empty.status_code == 200


# --------------------------------------------------------------------------- pages


def test_patient_page_draws_the_map_and_links_the_steps(client: TestClient) -> None:
    index = patient_with_metastases()
    # the untreated natural history (the page's default is the treated clinical course)
    query = {"cancer": "colorectal", "seed": SEED, "index": index, "years": 15,
             "clinical": "false"}
    page = client.get("/patient", params=query)
    assert page.status_code == 200
    text = page.text
    assert metastasis.DISCLAIMER in text
    assert 'id="day-slider"' in text and 'type="range"' in text
    assert len(re.findall(r'class="lesion state-primary" cx=', text)) == 1
    assert 'class="lesion state-growing"' in text
    assert 'class="route route-' in text
    for step in range(1, 7):
        assert f'href="/guide/{guide.for_step(step).slug}"' in text
    assert 'id="accounting"' in text
    assert 'id="clinical"' not in text  # no clinical layer in the natural history yet
    assert "/static/patient.js" in text


def test_map_fragment_changes_with_the_day(client: TestClient) -> None:
    index = patient_with_metastases()
    query = {"cancer": "colorectal", "seed": SEED, "index": index, "years": 15}
    result = run_patient(load_model("colorectal"), SEED, index, 15.0)

    def circles(day: float) -> list[tuple[int, float]]:
        html = client.get("/patient/map", params={**query, "day": day}).text
        return [(int(lesion), float(r)) for r, lesion in
                re.findall(r'r="([\d.]+)" data-lesion="(\d+)"', html)]

    start, end = circles(0), circles(result.end_time)
    assert start == [(0, pytest.approx(bodymap.radius(1.0), abs=0.01))]
    assert len(end) > 1
    assert dict(end)[0] > dict(start)[0]
    bad = client.get("/patient/map", params={**query, "day": result.end_time + 5})
    assert bad.status_code == 422 and "day: got" in bad.text


def test_patient_page_without_seed_redirects_to_a_recorded_seed(client: TestClient) -> None:
    response = client.get("/patient", params={"cancer": "melanoma", "years": "2"},
                          follow_redirects=False)
    assert response.status_code == 303
    seed = parse_qs(urlsplit(response.headers["location"]).query)["seed"][0]
    assert 0 <= int(seed) <= MAX_SEED


@pytest.mark.parametrize(("params", "field"), [
    ({"cancer": "colorectal", "seed": "abc"}, "seed"),
    ({"cancer": "nope", "seed": "1"}, "cancer"),
    ({"cancer": "colorectal", "seed": "1", "years": "nan"}, "years"),
    ({"cancer": "colorectal", "seed": "1", "years": "100"}, "years"),
    ({"cancer": "colorectal", "seed": "1", "index": "-1"}, "index"),
])
def test_patient_form_errors_show_the_form_again(client: TestClient, params: dict[str, str],
                                                 field: str) -> None:
    response = client.get("/patient", params=params)
    assert response.status_code == 422
    assert 'id="form-error"' in response.text and f"{field}: got" in response.text
    assert 'id="patient-form"' in response.text


def test_cohort_page(client: TestClient) -> None:
    assert 'id="cohort-form"' in client.get("/cohort").text
    response = client.get("/cohort", params=[("cancer", "colorectal"), ("cancer", "breast"),
                                             ("patients", "60"), ("seed", "3"),
                                             ("years", "10")])
    assert response.status_code == 200
    assert 'id="figures-data"' in response.text and "/vendor/plotly.min.js" in response.text
    assert response.text.count('class="chart"') == 3
    assert 'id="clinical-note"' in response.text
    too_many = client.get("/cohort", params=[("cancer", c) for c in CANCERS] + [
        ("patients", "300"), ("seed", "1"), ("years", "10")])
    assert too_many.status_code == 422
    assert "at most 2000 patients per request in all" in too_many.text


def test_clinical_cohort_sets_survival_beside_the_registries(client: TestClient) -> None:
    """With the clinical course the cohort page and API set the cohort's survival beside
    the registry figures of its type, with verdicts and the plain sentence; screened
    patients get the reason instead."""
    params = {"cancer": "colorectal", "patients": "12", "seed": "4", "years": "20",
              "clinical": "true"}
    body = client.get("/api/cohort", params=params).json()
    registry = body["clinical"]["registry"]
    assert registry["compared"] is True and registry["rows"]
    assert {r["verdict"] for r in registry["rows"]} <= {"meets", "misses", "no data"}
    assert "registry survival figures met" in registry["sentence"]
    page = client.get("/cohort", params=params)
    assert page.status_code == 200
    assert 'id="registry-table"' in page.text
    assert registry["rows"][0]["label"] in page.text
    screened = client.get("/api/cohort", params={**params, "screening": "true"}).json()
    assert screened["clinical"]["registry"]["compared"] is False
    assert "screened" in screened["clinical"]["registry"]["sentence"]


def test_five_year_survival_is_known_for_every_stage(client: TestClient) -> None:
    """Issue 11: over a short horizon counted from the first cell, 5-year survival was
    unknown (or shown carried on).  Every diagnosed patient is now followed five years after
    diagnosis, so each stage's curve reaches five years or falls to zero, and the page shows
    a figure for every stage, even with 8 years to a diagnosis."""
    params = {"cancer": "colorectal", "patients": "40", "seed": "2024", "years": "8",
              "clinical": "true"}
    body = client.get("/api/cohort", params=params).json()
    curves = body["clinical"]["survival_by_stage"]
    assert curves
    for curve in curves.values():
        assert max(curve["years"]) >= 5.0 or min(curve["survival"]) == 0.0
        assert curve["five_year_survival"] is not None
    page = client.get("/cohort", params=params)
    assert "not known (follow-up under 5 years)" not in page.text
    assert "then 5 years of follow-up for each patient diagnosed" in page.text


# --------------------------------------------------------------------------- offline, safe


def test_pages_load_nothing_from_elsewhere(client: TestClient) -> None:
    for path in ("/", "/guide", "/guide/references", "/patient", "/cohort",
                 "/patient?cancer=colorectal&seed=1&index=0&years=10"):
        response = client.get(path)
        assert response.status_code == 200
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Metastasis-Disclaimer"] == metastasis.DISCLAIMER
        loads = re.findall(r'<(?:script|img|link|iframe)[^>]*(?:src|href)="([^"]*)"',
                           response.text)
        assert loads and all(u.startswith(("/", "data:")) for u in loads), loads


def test_plotly_js_is_served_from_the_installed_package(client: TestClient) -> None:
    from metastasis.web.app import plotly_js_path

    path = plotly_js_path()
    assert path is not None, "plotly is a dependency of the web extra"
    response = client.get("/vendor/plotly.min.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert len(response.content) == path.stat().st_size


# --------------------------------------------------------------------------- the body map


def test_every_site_of_the_model_has_a_place_on_the_map() -> None:
    labels = {n: s.label for n, s in KB.sites.items()}
    for name, spec in KB.cancers.items():
        shapes = bodymap.layout(tuple(KB.sites), labels, spec.primary_site)
        assert all(s.known for s in shapes), name
        assert all(0 < x < bodymap.WIDTH and 0 < y < bodymap.HEIGHT
                   for s in shapes for x, y in s.anchors)
    extra = bodymap.layout(("liver", "spleen_capsule"), {}, "liver")
    assert [s.known for s in extra] == [True, False]


def test_radius_grows_with_cells() -> None:
    cells = np.logspace(0, 11, 30)
    radii = [bodymap.radius(c) for c in cells]
    assert all(b > a for a, b in itertools.pairwise(radii))
    assert bodymap.radius(1.0) == pytest.approx(2.0)
    assert math.isfinite(bodymap.radius(0.0))


def test_map_frame_routes_appear_with_their_lesions() -> None:
    index = patient_with_metastases()
    result = run_patient(load_model("colorectal"), SEED, index, 15.0)
    labels = {n: s.label for n, s in KB.sites.items()}
    start = bodymap.frame(result, 0.0, labels)
    end = bodymap.frame(result, result.end_time, labels)
    assert not start.routes and [c.lesion for c in start.circles] == [0]
    assert end.routes
    founded = {result.site_names[int(s)] for s in result.lesions.site}
    assert {r.target for r in end.routes} <= founded
    assert sum(r.count for r in end.routes) <= len(result.lesions) - 1


def test_clinical_charts_appear_only_with_clinical_data() -> None:
    """Stage and survival figures are drawn from a cohort's clinical block, and not
    without one; survival lines are coloured by stage (Okabe-Ito)."""
    plain = pd.DataFrame({"first_distant_day": [1.0, np.nan]})
    assert charts.clinical_data(plain) is None
    assert charts.clinical_figures([{"label": "x", "clinical": None}]) == []
    frame = pd.DataFrame({
        "diagnosed": [True, True, True, False],
        "summary_stage": ["localized", "distant", "distant", None],
        "survival_days": [100.0, 50.0, 200.0, np.nan],
        "died": [False, True, True, False],
    })
    # product-limit on the distant pair: deaths at 50 and 200 days, no censoring
    curve = clinical_view.survival_curve(frame[frame["summary_stage"] == "distant"])
    assert curve["survival"] == [1.0, 0.5, 0.0]
    assert curve["years"] == pytest.approx([0.0, 50 / 365.25, 200 / 365.25])
    cohort = {"label": "x", "clinical": {"stage_shares": {"I": 0.25, "IV": 0.75},
                                         "survival_by_stage": {"distant": curve}}}
    figures = charts.clinical_figures([cohort])
    assert [f["id"] for f in figures] == ["stage", "survival"]
    assert figures[0]["data"][0]["y"] == [25.0, 75.0]
    line = figures[1]["data"][0]
    assert line["line"]["color"] == charts.STAGE_COLOURS["distant"]
    assert line["y"] == [100.0, 50.0, 0.0]


# ---------------------------------------------------------------- the clinical course

CLINICAL_INDEX = 3
"""Colorectal patient of seed 11 diagnosed within 10 years and treated (surgery, then
FOLFOX): checked in the test itself, so a change of model shows up as a clear failure."""


@pytest.fixture(scope="module")
def course():
    from metastasis.clinical.course import simulate_course
    from metastasis.clinical.loader import load_clinical
    from metastasis.clinical.treatment_schema import load_treatments

    return simulate_course(load_model("colorectal"), load_clinical(), load_treatments(), SEED,
                           CLINICAL_INDEX, YEARS, WEB_ARM)


def test_patient_clinical_course_is_the_clinical_layers(client: TestClient, course) -> None:
    """``clinical=true`` returns the course the clinical layer simulates, number for number,
    and the true state it returns is the treated one."""
    assert course.diagnosis is not None and course.treatment
    params = {"cancer": "colorectal", "seed": SEED, "index": CLINICAL_INDEX, "years": YEARS}
    body = client.get("/api/patient", params={**params, "clinical": "true"}).json()
    natural = client.get("/api/patient", params=params).json()
    assert natural["clinical"] is None
    clinical = body["clinical"]
    dx = clinical["diagnosis"]
    assert dx["name"] == course.diagnosis.name
    assert dx["day"] == pytest.approx(course.diagnosis.day)
    assert dx["stage"] == {"t": course.diagnosis.stage.t, "n": course.diagnosis.stage.n,
                           "m": course.diagnosis.stage.m, "tnm": course.diagnosis.stage.tnm,
                           "group": course.diagnosis.stage.group,
                           "summary": course.diagnosis.stage.summary}
    assert dx["pathway"] == course.diagnosis.pathway
    assert (dx["metastases_present"], dx["metastases_found"], dx["metastases_hidden"]) == (
        course.diagnosis.metastases_present, course.diagnosis.metastases_found,
        course.diagnosis.metastases_hidden)
    assert clinical["protocol"] == course.protocol
    assert [(t["day"], t["outcome"]) for t in clinical["treatment"]] == [
        (pytest.approx(t.day), t.outcome) for t in course.treatment]
    assert [(e["kind"], e["label"]) for e in clinical["events"]] == [
        (e.kind, e.label) for e in course.events]
    outcome = clinical["outcome"]
    assert outcome["died"] == course.died and outcome["censored"] == (not course.died)
    assert outcome["cause_of_death"] == course.cause_of_death
    assert body["headline"] == clinical["summary"] and course.diagnosis.name in body["headline"]
    # the true state under treatment: after the resection the primary is gone
    after = course.treatment[-1].day
    sizes = {
        mode: client.get("/api/patient/sizes", params={**params, "clinical": mode,
                                                       "day": after}).json()
        for mode in ("true", "false")
    }
    assert 0 not in {row["id"] for row in sizes["true"]["lesions"]}
    assert 0 in {row["id"] for row in sizes["false"]["lesions"]}


def test_patient_screening_changes_the_arm(client: TestClient) -> None:
    params = {"cancer": "colorectal", "seed": SEED, "index": CLINICAL_INDEX, "years": YEARS,
              "clinical": "true"}
    plain = client.get("/api/patient", params=params).json()["clinical"]
    screened = client.get("/api/patient", params={**params, "screening": "true"}).json()
    assert plain["screening"] is False and plain["arm"] == "standard care"
    assert screened["clinical"]["screening"] is True
    assert screened["clinical"]["arm"] == "screening"


@pytest.mark.parametrize("path", ["/api/patient", "/api/patient/sizes", "/api/cohort"])
@pytest.mark.parametrize("field", ["clinical", "screening"])
def test_yes_no_fields_refuse_other_words(client: TestClient, path: str, field: str) -> None:
    params = {"cancer": "colorectal", "seed": SEED, "day": 0, "patients": 1, field: "maybe"}
    detail = problem(client.get(path, params=params), 422, field)
    assert "'maybe'" in detail and "true or false" in detail


def test_patient_page_refuses_other_words(client: TestClient) -> None:
    response = client.get("/patient", params={"cancer": "colorectal", "seed": SEED,
                                              "clinical": "maybe"})
    assert response.status_code == 422
    assert "clinical: got" in response.text and "true or false" in response.text


def test_patient_page_tells_the_clinical_course_by_default(client: TestClient, course
                                                           ) -> None:
    params = {"cancer": "colorectal", "seed": SEED, "index": CLINICAL_INDEX, "years": YEARS}
    page = client.get("/patient", params=params).text
    assert 'id="diagnosis-name">' + course.diagnosis.name.replace("'", "&#39;") in page
    assert "clinical=true" in page  # the map and JSON links keep the choice
    plain = client.get("/patient", params={**params, "clinical": "false"}).text
    assert 'id="clinical"' not in plain and "clinical=false" in plain


def test_clinical_cohort_is_the_clinical_layers(client: TestClient) -> None:
    from metastasis.clinical.cohort import run_clinical_cohort
    from metastasis.clinical.loader import load_clinical
    from metastasis.clinical.treatment_schema import load_treatments

    n = 12
    expected = run_clinical_cohort(load_model("colorectal"), load_clinical(),
                                   load_treatments(), n, SEED, YEARS, WEB_ARM).summary()
    body = client.get("/api/cohort", params={"cancer": "colorectal", "patients": n,
                                             "seed": SEED, "years": YEARS,
                                             "clinical": "true"}).json()
    clinical = body["clinical"]
    assert clinical["patients"] == n and clinical["diagnosed"] == expected["diagnosed"]
    assert clinical["stage_group"] == expected["stage_group"]
    assert clinical["summary_stage"] == expected["summary_stage"]
    assert clinical["causes_of_death"] == expected["causes_of_death"]
    assert clinical["metastases_at_diagnosis"] == expected["metastases_at_diagnosis"]
    assert set(clinical["survival_by_stage"]) == set(expected["survival_by_stage"])
    for stage, curve in clinical["survival_by_stage"].items():
        summary = expected["survival_by_stage"][stage]
        assert curve["patients"] == summary["patients"]
        if summary["five_year_survival"] is None:
            assert curve["five_year_survival"] is None
        else:
            assert curve["five_year_survival"] == pytest.approx(summary["five_year_survival"])
        assert len(curve["years"]) == len(curve["survival"]) == len(curve["ci_low"])
    plain = client.get("/api/cohort", params={"cancer": "colorectal", "patients": n,
                                              "seed": SEED, "years": YEARS}).json()
    assert plain["clinical"] is None
    assert plain["summary"] == body["summary"], "the same patients, untreated"


def test_clinical_cohort_limit_is_stated_and_enforced() -> None:
    limits = Limits(max_patients=50, max_clinical_patients=3)
    with TestClient(create_app(limits), raise_server_exceptions=False) as small:
        assert small.get("/api/limits").json()["limits"]["max_clinical_patients"] == 3
        schema = small.get("/openapi.json").json()
        stated = {p["name"]: p for p in schema["paths"]["/api/cohort"]["get"]["parameters"]}
        assert stated["patients"]["schema"]["maximum"] == 50
        assert "with clinical=true at most 3" in stated["patients"]["description"]
        params = {"cancer": "colorectal", "patients": 4, "seed": SEED}
        assert small.get("/api/cohort", params=params).status_code == 200
        detail = problem(small.get("/api/cohort", params={**params, "clinical": "true"}),
                         422, "patients")
        assert "at most 3 patients per clinical cohort" in detail
        page = small.get("/cohort", params={**params, "cancer": "colorectal",
                                             "clinical": "true"})
        assert page.status_code == 422 and "at most 3 patients" in page.text


def test_clinical_cohort_page_shows_stage_survival_and_causes(client: TestClient) -> None:
    page = client.get("/cohort", params={"cancer": "colorectal", "patients": 10,
                                         "seed": SEED, "clinical": "true"}).text
    for element in ("chart-stage", "chart-survival", "stage-table", "survival-table",
                    "causes-table"):
        assert f'id="{element}"' in page
    assert 'id="clinical-note"' not in page
    plain = client.get("/cohort", params={"cancer": "colorectal", "patients": 10,
                                          "seed": SEED}).text
    assert 'id="chart-survival"' not in plain and 'id="clinical-note"' in plain


def test_openapi_states_the_clinical_options(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/api/patient", "/api/cohort"):
        names = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        assert names["clinical"]["schema"]["type"] == "boolean"
        assert names["screening"]["schema"]["type"] == "boolean"
    assert "ClinicalCourse" in schema["components"]["schemas"]
    assert "DiagnosisOut" in schema["components"]["schemas"]
    assert "CohortClinical" in schema["components"]["schemas"]


def _answered_meanwhile(monkeypatch: pytest.MonkeyPatch, owner: object, builder: str,
                        path: str) -> list[str]:
    """Make ``owner.builder`` take 3 s, ask for ``path``, and check that /api/limits is
    answered meanwhile (1.5 s allows for a busy machine); the names of the threads that
    ran the builder."""
    app = create_app(Limits(max_running=2, max_waiting=2, request_seconds=30))
    if owner is None:
        owner = app.state.metastasis
    builders: list[str] = []
    build = getattr(owner, builder)

    def slow_build(*args: object, **kwargs: object) -> object:
        builders.append(threading.current_thread().name)
        time.sleep(3.0)
        return build(*args, **kwargs)

    monkeypatch.setattr(owner, builder, slow_build)
    with TestClient(app, raise_server_exceptions=False) as client:
        answers: list[int] = []
        thread = threading.Thread(target=lambda: answers.append(client.get(
            path, params={"cancer": "melanoma", "seed": 1, "years": 1}).status_code))
        thread.start()
        waited = time.monotonic() + 20
        while not builders and time.monotonic() < waited:
            time.sleep(0.01)
        assert builders, "the answer was never built"
        began = time.monotonic()
        assert client.get("/api/limits").status_code == 200
        assert time.monotonic() - began < 1.5, "the event loop waited for the large answer"
        thread.join(30)
        assert answers == [200]
    return builders


def test_large_answers_are_built_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building, checking and encoding a patient's answer runs in a simulation worker, so
    another request is answered while it is made (issue 10: ten requests for a 23 MB patient
    froze the server for 72 s)."""
    builders = _answered_meanwhile(monkeypatch, None, "patient_payload", "/api/patient")
    assert builders[0].startswith("metastasis-sim"), builders


def test_the_patient_page_is_built_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    """The patient page's story and body map grow with the patient: they too are made in a
    worker while other requests are answered."""
    from metastasis.web import story

    builders = _answered_meanwhile(monkeypatch, story, "timeline", "/patient")
    assert builders[0].startswith("metastasis-sim"), builders


def test_a_patients_lesions_and_events_come_in_pages() -> None:
    """An answer holds at most max_rows_per_answer lesions and events (a long clinical course
    has tens of thousands of each); the totals say how many there are, and the pages, read
    in turn, are the whole lists of an answer without a bound."""
    params = {"cancer": "colorectal", "seed": 3, "index": 0, "years": 8}  # 7 and 41 rows
    with TestClient(create_app()) as whole:
        full = whole.get("/api/patient", params=params).json()
    assert full["lesions_total"] == len(full["lesions"]) and full["lesions_from"] == 0
    assert full["events_total"] == len(full["events"]) > full["lesions_total"] > 4
    page = 4
    with TestClient(create_app(Limits(max_rows_per_answer=page))) as small:
        assert small.get("/api/limits").json()["limits"]["max_rows_per_answer"] == page
        for key in ("lesions", "events"):
            rows, start = [], 0
            while start < full[f"{key}_total"]:
                body = small.get("/api/patient", params={**params, f"{key}_from": start}).json()
                assert body[f"{key}_total"] == full[f"{key}_total"]
                assert body[f"{key}_from"] == start and len(body[key]) <= page
                rows += body[key]
                start += page
            assert rows == full[key], key
        past = small.get("/api/patient", params={**params, "lesions_from": 10**6}).json()
        assert past["lesions"] == [] and past["lesions_total"] == full["lesions_total"]
        assert problem(small.get("/api/patient", params={**params, "events_from": -1}), 422,
                       "events_from")


def test_the_maps_table_counts_the_primary_where_it_is(client: TestClient) -> None:
    """The primary's row says it holds the primary tumour (it read 'Growing 0' beside
    billions of cells); after the primary is removed, the row no longer says so."""
    index = patient_with_metastases()
    query = {"cancer": "colorectal", "seed": SEED, "index": index, "years": 15}
    html = client.get("/patient/map", params=query).text
    row = re.search(r'<tr><th scope="row">[^<]*\(primary\)</th><td>([^<]*)</td>', html)
    assert row is not None and row.group(1).startswith("primary"), html[-2000:]
    frame = bodymap.frame(run_patient(load_model("colorectal"), SEED, index, 15.0), 0.0, {})
    primary_row = next(r for r in frame.rows if r.primary)
    assert primary_row.holds_primary and primary_row.growing == 0
    course = simulate_course_for_map()
    treated = bodymap.frame(course.patient, course.patient.end_time, {})
    assert not next(r for r in treated.rows if r.primary).holds_primary


def simulate_course_for_map():  # type: ignore[no-untyped-def]
    """A treated colorectal course whose primary was removed (resection), for the map."""
    from metastasis.clinical.course import simulate_course
    from metastasis.clinical.loader import load_clinical
    from metastasis.clinical.treatment_schema import load_treatments

    model = load_model("colorectal")
    for index in range(100):
        course = simulate_course(model, load_clinical(), load_treatments(), SEED, index, 20.0,
                                 WEB_ARM)
        if any(e.modality == "surgery" for e in course.treatment) and course.death_day is None:
            return course
    pytest.fail("no resected, surviving colorectal patient among 100")


def test_the_map_draws_a_breast_or_prostate_patient_as_one_sex(client: TestClient) -> None:
    """A breast-cancer patient's map has breasts and no prostate; a prostate-cancer
    patient's has a prostate and no breasts; others keep both shapes."""

    def organs(cancer: str) -> set[str]:
        html = client.get("/patient/map", params={"cancer": cancer, "seed": SEED,
                                                  "years": 2}).text
        return set(re.findall(r'class="organ[^"]*" data-site="(breast|prostate)"', html))

    assert organs("breast") == {"breast"}
    assert organs("prostate") == {"prostate"}
    assert organs("colorectal") == {"breast", "prostate"}


def _crosses(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """Whether two segments (x1, y1, x2, y2) cross (touching ends do not count)."""
    def side(px: float, py: float, qx: float, qy: float, rx: float, ry: float) -> float:
        return (qx - px) * (ry - py) - (qy - py) * (rx - px)

    (x1, y1, x2, y2), (x3, y3, x4, y4) = a, b
    return (side(x3, y3, x4, y4, x1, y1) * side(x3, y3, x4, y4, x2, y2) < 0
            and side(x1, y1, x2, y2, x3, y3) * side(x1, y1, x2, y2, x4, y4) < 0)


def test_map_labels_are_spaced_and_their_leaders_never_cross() -> None:
    """For every primary site the map knows (where its regional nodes sit), each site has
    one label inside the drawing, labels in a column are at least LABEL_GAP apart, and no
    two leader lines cross (the regional nodes' crossed the colon's, and the pancreas' the
    small bowel's)."""
    labels = {n: s.label for n, s in KB.sites.items()}
    primaries = {spec.primary_site for spec in KB.cancers.values()} | set(
        bodymap.REGIONAL_ANCHORS) | {"bone"}
    for primary in sorted(primaries):
        shapes = [s for s in bodymap.layout(tuple(KB.sites), labels, primary) if s.known]
        assert len({s.site for s in shapes}) == len(shapes) == len(KB.sites), primary
        for side in ("left", "right"):
            ys = sorted(s.label_y for s in shapes if s.side == side)
            assert all(b - a >= bodymap.LABEL_GAP - 1e-9 for a, b in itertools.pairwise(ys))
            assert all(bodymap.LABEL_TOP <= y <= bodymap.LABEL_BOTTOM for y in ys), primary
        for s in shapes:
            assert s.target in s.anchors, (primary, s.site)
            x1, _, x2, _ = s.leader
            assert (x1 < x2) == (s.side == "left"), (primary, s.site)  # points inwards
        crossing = [(a.site, b.site) for a, b in itertools.combinations(shapes, 2)
                    if _crosses(a.leader, b.leader)]
        assert not crossing, (primary, crossing)
    # the check sees a crossing where there is one
    assert _crosses((0, 0, 10, 10), (0, 10, 10, 0)) and not _crosses((0, 0, 10, 0),
                                                                       (0, 5, 10, 5))


def test_a_breast_patients_map_has_no_prostate_label(client: TestClient) -> None:
    def named(cancer: str) -> set[str]:
        html = client.get("/patient/map", params={"cancer": cancer, "seed": SEED,
                                                  "years": 2}).text
        block = html.split('<g class="labels">')[1].split("</g>")[0]
        return set(re.findall(r">(breast|prostate)</text>", block))

    assert named("breast") == {"breast"}
    assert named("prostate") == {"prostate"}
    assert named("colorectal") == {"breast", "prostate"}


def test_many_lesions_in_a_site_are_grouped_under_a_count(client: TestClient) -> None:
    """Past the cap a site's lesions are one badge with their number, not a heap of circles:
    the circles drawn plus the count are every lesion with a place on the map."""
    cap = Limits().max_lesions_drawn_per_site
    model = load_model("colorectal")
    index, result, frame = next(
        (i, r, f) for i in range(60)
        if (f := bodymap.frame(r := run_patient(model, SEED, i, 15.0), r.end_time, {},
                               max_per_site=cap)).groups)
    drawn: dict[str, int] = {}
    for c in frame.circles:
        drawn[c.site] = drawn.get(c.site, 0) + (not c.primary)
    assert max(drawn.values()) <= cap
    lesions = result.lesions
    states = lesions.state_at(result.end_time)
    reaches = {int(i) for i in lesions.id[lesions.micrometastasis <= result.end_time]}
    for group in frame.groups:
        code = result.site_names.index(group.site)
        present = {int(lesions.id[i]) for i in range(len(lesions))
                   if lesions.site[i] == code and states[i] not in bodymap.HIDDEN_STATES
                   and lesions.id[i] != 0 and int(lesions.id[i]) in reaches}
        assert drawn[group.site] == cap and group.count == len(present) - cap, group
        assert f"{group.count:,} more lesion" in group.title
    html = client.get("/patient/map", params={"cancer": "colorectal", "seed": SEED,
                                              "index": index, "years": 15,
                                              "day": result.end_time}).text
    assert html.count('class="group-count"') == len(frame.groups)
    assert html.count('class="lesion ') == len(frame.circles)


def test_the_slider_opens_at_diagnosis(client: TestClient) -> None:
    """A clinical story opens its map at diagnosis (it opened on the last day, which after a
    cure shows an empty body); a natural history, or a frame in the URL, as before."""
    from metastasis.clinical.course import simulate_course
    from metastasis.clinical.loader import load_clinical
    from metastasis.clinical.treatment_schema import load_treatments
    from metastasis.web.views import FRAMES

    model = load_model("colorectal")
    index, course = next(
        (i, c) for i in range(60)
        if (c := simulate_course(model, load_clinical(), load_treatments(), SEED, i,
                                 20.0, WEB_ARM)).diagnosis is not None)
    query = {"cancer": "colorectal", "seed": SEED, "index": index, "years": 20}

    def slider(**extra: object) -> int:
        html = client.get("/patient", params={**query, **extra}).text
        found = re.search(r'id="day-slider"[^>]*value="(\d+)"', html)
        assert found is not None
        return int(found.group(1))

    expected = bodymap.frame_at(course.diagnosis.day, course.patient.end_time, FRAMES)
    assert 0 < expected < FRAMES
    assert slider(clinical="true") == expected
    assert bodymap.frame_day(course.patient.end_time, expected, FRAMES) >= course.diagnosis.day
    assert slider(clinical="true", frame=FRAMES) == FRAMES
    assert slider(clinical="false") == FRAMES


def test_an_app_served_twice_still_simulates() -> None:
    """Closing a test client (or a server's lifespan) shut the simulation pool down for
    good, and every later simulation got 503; found by the API fuzz suite."""
    app = create_app()
    for _ in range(2):
        with TestClient(app) as client:
            answer = client.get("/api/patient", params={"cancer": "breast", "seed": 1,
                                                        "years": 5})
            assert answer.status_code == 200, answer.text


def test_event_sentences_count_one_cell_as_one_cell() -> None:
    """The cascade's totals say "1 cell stopped", not "1 cells" (seen on a patient page)."""
    from metastasis.web.story import describe_event

    def said(kind: str, counts: dict[str, int]) -> str:
        return describe_event({"kind": kind, "site": "skin", "counts": counts},
                              {"skin": "skin"})

    assert said("arrested_total", {"arrested": 1}) == "1 cell stopped in the skin."
    assert said("arrested_total", {"arrested": 2_500}) == "2,500 cells stopped in the skin."
    assert said("extravasated_total", {"extravasated": 1, "outgrowth": 0}).startswith(
        "1 cell left the vessels of the skin; 0 of them")


def test_the_timeline_says_whose_history_it_tells(client: TestClient) -> None:
    """Under a clinical course the step-by-step table is the disease as treatment shaped it,
    and says so; a natural history is called one."""
    query = {"cancer": "colorectal", "seed": SEED, "index": 0, "years": 10}
    treated = client.get("/patient", params={**query, "clinical": "true"}).text
    untreated = client.get("/patient", params={**query, "clinical": "false"}).text
    assert "step by step, under this treatment" in treated
    assert "disease under treatment, in time order" in treated
    assert "step by step, under this treatment" not in untreated
    assert "natural history, in time order" in untreated
