"""One story, said alike: the command line and the web open a clinical course with the same
sentences (issue 11: the story was worded in five places and the surfaces drifted).

How the cancer was found, what was done and how the story ended are built once
(:mod:`metastasis.clinical.words`); ``simulate`` prints them under "In short" (the cause of
death explained further), and the patient page and ``/api/patient`` show them as the
headline.  Checked on patients of every ending: diagnosed and dead, diagnosed and alive at
the end of follow-up, never diagnosed.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from metastasis.api import load_model
from metastasis.cli.app import app
from metastasis.clinical import words
from metastasis.clinical.course import Arm, ClinicalResult, simulate_course
from metastasis.clinical.loader import load_clinical
from metastasis.clinical.treatment_schema import load_treatments
from metastasis.limits import FOLLOW_UP_YEARS
from metastasis.web import create_app

SEED = 31
YEARS = 10.0
LABELS = dict(zip(load_model("colorectal").site_names, load_model("colorectal").site_labels,
                  strict=True))


@functools.cache
def story(index: int) -> ClinicalResult:
    return simulate_course(load_model("colorectal"), load_clinical(), load_treatments(), SEED,
                           index, YEARS, Arm("standard care",
                                             years_after_diagnosis=FOLLOW_UP_YEARS))


def _first(kind: str) -> int:
    tests = {
        "died": lambda r: r.diagnosis is not None and r.died,
        "alive": lambda r: r.diagnosis is not None and not r.died,
        "undiagnosed": lambda r: r.diagnosis is None,
    }
    for index in range(200):
        if tests[kind](story(index)):
            return index
    pytest.fail(f"no {kind} patient among 200 of seed {SEED}")


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(create_app())


@pytest.mark.parametrize("kind", ["died", "alive", "undiagnosed"])
def test_the_command_line_and_the_web_open_with_the_same_sentences(
    client: TestClient, kind: str,
) -> None:
    index = _first(kind)
    result = story(index)
    lines = words.in_short(result, labels=LABELS)
    found, care, ending = lines[:3]
    assert len(lines) == (4 if kind == "alive" else 3)  # a survivor: what is still hidden
    printed = CliRunner().invoke(app, ["simulate", "--seed", str(SEED), "--patient",
                                       str(index), "--years", f"{YEARS:g}"])
    assert printed.exit_code == 0, printed.stderr
    short = _flat(printed.stdout.split("\nIn short\n")[1].split("\nTimeline\n")[0])
    assert short.startswith(f"{found} {care}")
    if result.died:  # the command line explains the cause further; the rest is the same
        assert short.startswith(f"{found} {care} Died on {words.when(result.death_day)} of "
                                f"{result.cause_of_death}")
        if result.diagnosis is not None:
            survival = words.duration(result.survival_from_diagnosis_days)
            assert short.endswith(f", {survival} after diagnosis.")
    else:
        assert short == " ".join(lines)
    body = client.get("/api/patient", params={"cancer": "colorectal", "seed": SEED,
                                              "index": index, "years": YEARS,
                                              "clinical": "true"}).json()
    assert body["clinical"]["summary"] == " ".join(lines)
    assert body["headline"] == " ".join(lines)
    assert body["clinical"]["outcome"]["text"] == ending
    page = client.get("/patient", params={"cancer": "colorectal", "seed": SEED,
                                          "index": index, "years": YEARS}).text
    assert found.replace("'", "&#39;") in page


def test_an_ending_says_the_follow_up_or_the_cause() -> None:
    alive, died = story(_first("alive")), story(_first("died"))
    assert words.ending_sentence(alive).startswith(
        f"Alive {FOLLOW_UP_YEARS:g} years after diagnosis, at the end of follow-up")
    assert f"of {died.cause_of_death}" in words.ending_sentence(died)
    assert words.ending_sentence(died, "a cause in more words").count("a cause in more words")


def test_a_survivor_s_story_says_what_is_still_hidden() -> None:
    """Alive at the end of follow-up is not cured: the last sentence counts what the body
    still holds on the last day (the true state), tumours a scan could find apart from
    smaller deposits, or says that nothing is left; a death or an undiagnosed story has no
    such sentence."""
    seen = set()
    for index in range(120):
        result = story(index)
        hidden = words.hidden_sentence(result, LABELS)
        if result.diagnosis is None or result.died:
            assert hidden is None
            continue
        assert hidden is not None
        patient = result.patient
        lesions = patient.lesions
        day = patient.end_time
        present = ~np.isin(lesions.state_at(day), ["none", "gone"])
        sizes = lesions.size_at(day)[present]
        visible = int((sizes >= patient.clinical_size_cells).sum())
        small = int(present.sum()) - visible
        if not present.any():
            assert hidden == "At the end of follow-up no cancer cell was left in the body."
            seen.add("none left")
        elif visible:
            assert f"{visible:,} tumour" in hidden and "big enough for a scan" in hidden
            assert (f"{small:,} smaller deposit" in hidden) == (small > 0)
            seen.add("visible")
        else:
            assert hidden.startswith(f"Hidden at the end of follow-up: {small:,} deposit")
            seen.add("small only")
        if present.any():  # the site holding most cells is named first
            cells = np.bincount(lesions.site[present], weights=sizes)
            first = patient.site_names[int(np.argmax(cells))]
            assert f"in the {LABELS[first]}" in hidden
    assert {"none left", "small only"} <= seen, seen
