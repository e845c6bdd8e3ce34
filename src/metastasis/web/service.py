"""What the pages and the JSON API both do: check a request, run it, shape the result.

Both interfaces go through these functions, so a page and its API endpoint can never
disagree about limits, seeds or numbers.  Checks raise :class:`ModelError` (field, value,
what is allowed), which the app turns into a 422 for the API and a message on the page.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Response
from pydantic import BaseModel

from metastasis.api import check_seed
from metastasis.clinical.course import ClinicalResult
from metastasis.errors import ModelError
from metastasis.jsondata import plain
from metastasis.knowledge.loader import load as load_knowledge
from metastasis.knowledge.schema import KnowledgeBase
from metastasis.results.patient import PatientResult
from metastasis.web import bodymap, charts, clinical_view, guide_html, story
from metastasis.web.limits import MAX_INDEX, MAX_SEED, Limits
from metastasis.web.runner import Deadline, Runner

T = TypeVar("T")

DAY_SLACK = 1e-6
"""Days past the end a request may name (a client's rounding of the end day) and still be
shown the last day."""


@dataclass
class AppState:
    """Everything a request needs, built once by :func:`metastasis.web.create_app`."""

    limits: Limits
    runner: Runner
    knowledge: KnowledgeBase

    @classmethod
    def build(cls, limits: Limits, model_path: str | Path | None) -> AppState:
        return cls(limits, Runner(limits, model_path), load_knowledge(model_path))

    # ------------------------------------------------------------------ the knowledge base

    @property
    def cancer_names(self) -> list[str]:
        return sorted(self.knowledge.cancers)

    @property
    def site_labels(self) -> dict[str, str]:
        return {name: site.label for name, site in self.knowledge.sites.items()}

    def cancer_label(self, cancer: str) -> str:
        return self.knowledge.cancers[cancer].label

    def cancers(self) -> list[dict[str, str]]:
        labels = self.site_labels
        return [
            {"name": name, "label": spec.label, "primary_site": spec.primary_site,
             "primary_label": labels.get(spec.primary_site, spec.primary_site)}
            for name, spec in sorted(self.knowledge.cancers.items())
        ]

    def rules(self) -> dict[str, str]:
        """What each request field allows, in the words of the error messages."""
        return {
            "cancer": "one of: " + ", ".join(self.cancer_names),
            "seed": f"an integer from 0 to {MAX_SEED}",
            "index": f"an integer from 0 to {MAX_INDEX}",
            "years": f"a number of years in (0, {self.limits.max_years:g}]",
            "patients": f"an integer from 1 to {self.limits.max_patients}",
            "clinical": "true or false (run the clinical course: diagnosis, treatment, "
                        "outcome)",
            "screening": "true or false (screen with the cancer type's programmes)",
            "day": "a day from 0 to the end of this patient's natural history",
            "q": "one to 12 words to search for",
            "limit": "an integer from 1 to 50",
            "slug": "the slug or number of a guide section (see /api/guide)",
        }

    # ------------------------------------------------------------------ checks

    def check_cancer(self, cancer: str) -> str:
        if cancer not in self.knowledge.cancers:
            raise ModelError("cancer", cancer, ", ".join(self.cancer_names))
        return cancer

    def check_years(self, years: float) -> float:
        if not (isinstance(years, int | float) and math.isfinite(years)
                and 0.0 < years <= self.limits.max_years):
            raise ModelError("years", years, self.rules()["years"])
        return float(years)

    @property
    def max_clinical_patients(self) -> int:
        """Patients per clinical cohort request: never more than an untreated one allows."""
        return min(self.limits.max_clinical_patients, self.limits.max_patients)

    def check_patients(self, patients: int) -> int:
        if not 1 <= patients <= self.limits.max_patients:
            raise ModelError("patients", patients, self.rules()["patients"])
        return patients

    # ------------------------------------------------------------------ patients

    async def patient(
        self, cancer: str, seed: int, index: int, years: float
    ) -> PatientResult:
        """One patient, within the request limits (cached across requests)."""
        self.check_cancer(cancer)
        years = self.check_years(years)
        runner = self.runner

        def work(deadline: Deadline) -> PatientResult:
            deadline.check()
            return runner.patient(cancer, seed, index, years)

        return await runner.call(work)

    async def course(
        self, cancer: str, seed: int, index: int, years: float, screening: bool
    ) -> ClinicalResult:
        """One patient's clinical course, within the request limits (cached)."""
        self.check_cancer(cancer)
        years = self.check_years(years)
        runner = self.runner

        def work(deadline: Deadline) -> ClinicalResult:
            deadline.check()
            return runner.course(cancer, seed, index, years, screening)

        return await runner.call(work)

    async def subject(
        self, cancer: str, seed: int, index: int, years: float, clinical: bool,
        screening: bool,
    ) -> tuple[PatientResult, ClinicalResult | None]:
        """The true state to draw and, with ``clinical``, the course it belongs to.

        The body map, the slider and the cell accounting read the true state either way;
        in a clinical course that state includes treatment (resected or shrunken lesions).
        """
        if not clinical:
            return await self.patient(cancer, seed, index, years), None
        course = await self.course(cancer, seed, index, years, screening)
        return course.patient, course

    async def off_loop(self, build: Callable[[], T]) -> T:
        """``build()`` run in a worker, within the request limits (see :meth:`encoded`): for
        what grows with the patient, such as a page's story and body map."""

        def work(deadline: Deadline) -> T:
            deadline.check()
            return build()

        return await self.runner.call(work)

    async def encoded(self, model: type[BaseModel], build: Callable[[], dict[str, Any]]
                      ) -> Response:
        """The JSON answer ``build()`` makes, checked against ``model`` and encoded in a
        worker, within the request limits.

        A long clinical course answers with tens of megabytes: building, validating and
        encoding them on the event loop froze every other request for a minute under ten
        such requests at once.  Here they take a worker's place (refused with 503 when none
        is free) and the event loop only sends the bytes.  The same document FastAPI would
        make from the returned dict (the model's fields, by alias), which its schema states.
        """

        def work(deadline: Deadline) -> bytes:
            deadline.check()
            data = build()
            deadline.check()
            return model.model_validate(data).model_dump_json(by_alias=True).encode()

        return Response(await self.runner.call(work), media_type="application/json")

    def patient_payload(self, result: PatientResult, years: float, seed_drawn: bool,
                        course: ClinicalResult | None = None, screening: bool = False,
                        lesions_from: int = 0, events_from: int = 0) -> dict[str, Any]:
        """One patient as the API answers it, with one page of its lesions and of its events
        (at most ``max_rows_per_answer`` of each, from the rows asked for)."""
        labels = self.site_labels
        urls = guide_html.step_urls()
        data = plain(result.to_dict())
        page = self.limits.max_rows_per_answer
        for key, start in (("lesions", lesions_from), ("events", events_from)):
            rows = data[key]
            data[f"{key}_total"], data[f"{key}_from"] = len(rows), start
            data[key] = rows[start : start + page]
        shown = result.events()[events_from : events_from + page]
        said = story.sentences(result, self.runner.model(result.cancer), labels, shown)
        for event, text in zip(data["events"], said, strict=True):
            event["description"] = text
            event["guide_url"] = urls.get(event["step"])
        data.update(
            years=years,
            seed_drawn=seed_drawn,
            headline=story.headline(result, labels),
            site_labels={s: labels.get(s, s) for s in result.site_names},
            guide_urls=urls,
            clinical=(clinical_view.course_payload(course, labels, screening=screening)
                      if course is not None
                      else data.get("clinical") or story.clinical(result)),
        )
        if course is not None:
            data["headline"] = clinical_view.summary_text(course, labels)
        return data

    def check_day(self, result: PatientResult, day: float) -> float:
        if not (math.isfinite(day) and 0.0 <= day <= result.end_time * (1 + 1e-12) + DAY_SLACK):
            raise ModelError(
                "day", day,
                f"a day from 0 to {result.end_time:.6f}, the end of this patient's natural "
                "history",
            )
        return min(day, result.end_time)

    def sizes_payload(self, result: PatientResult, years: float, day: float) -> dict[str, Any]:
        frame = bodymap.frame(result, day, self.site_labels)
        return plain({
            "cancer": result.cancer,
            "root_seed": result.root_seed,
            "patient_index": result.patient_index,
            "years": years,
            "day": day,
            "end_time": result.end_time,
            "lesions": bodymap.lesion_rows(result, day),
            "sites": [
                {"site": r.site, "label": r.label, "growing": r.growing,
                 "micrometastases": r.micrometastases, "colonies": r.colonies,
                 "dormant": r.dormant, "cells": r.cells}
                for r in frame.rows
            ],
        })

    # ------------------------------------------------------------------ cohorts

    async def cohorts(
        self, cancers: list[str], patients: int, seed: int | None, years: float,
        clinical: bool = False, screening: bool = False,
    ) -> tuple[list[dict[str, Any]], float]:
        """Cohorts of ``patients`` per cancer type, one seed, within one time limit.

        With ``clinical`` each cohort also runs every patient's clinical course (same seed,
        same indices, so the same people) and carries its stage, survival and causes of
        death under ``clinical``; such a request is held to the smaller clinical limit.
        """
        if not cancers:
            raise ModelError("cancer", "nothing", "at least one of: "
                             + ", ".join(self.cancer_names))
        for cancer in cancers:
            self.check_cancer(cancer)
        self.check_patients(patients)
        total = patients * len(cancers)
        if total > self.limits.max_patients:
            raise ModelError(
                "patients", total,
                f"at most {self.limits.max_patients} patients per request in all "
                f"({patients} for each of {len(cancers)} cancer types asked)",
            )
        if clinical and total > self.max_clinical_patients:
            raise ModelError(
                "patients", total,
                f"at most {self.max_clinical_patients} patients per clinical cohort request in "
                f"all ({patients} for each of {len(cancers)} cancer types asked); a clinical "
                "course costs about twenty untreated histories",
            )
        years = self.check_years(years)
        seed_drawn = seed is None
        root = check_seed(seed)
        runner = self.runner

        def one(cancer: str, deadline: Deadline) -> dict[str, Any]:
            data = charts.cohort_data(
                runner.cohort(cancer, patients, root, years, deadline),
                self.cancer_label(cancer), seed_drawn=seed_drawn,
            )
            if clinical:
                course = runner.clinical_cohort(cancer, patients, root, years, screening,
                                                deadline)
                data["clinical"] = clinical_view.cohort_clinical(course, screening=screening)
            return data

        def work(deadline: Deadline) -> list[dict[str, Any]]:
            return [one(cancer, deadline) for cancer in cancers]

        began = time.monotonic()
        result = await runner.call(work)
        return result, time.monotonic() - began
