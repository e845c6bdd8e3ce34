"""The JSON API: cancers, one patient, one frame of the body map, a cohort, the guide.

Limits are stated in the OpenAPI schema (``minimum``, ``maximum``, the descriptions) and
enforced by the same bounds, so the schema cannot promise what the server refuses.  The
router is built per app because the limits are the app's (:class:`Limits`); for the same
reason this module does not use ``from __future__ import annotations``: FastAPI must see the
parameter types built inside :func:`build`, not their names.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

import metastasis
import metastasis.guide as guide
from metastasis.api import check_seed
from metastasis.errors import ModelError
from metastasis.limits import FOLLOW_UP_YEARS
from metastasis.web import guide_html, models
from metastasis.web.errors import NotFound
from metastasis.web.limits import MAX_INDEX, MAX_SEED
from metastasis.web.service import AppState

ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": models.ErrorResponse, "description": "A field is outside what is allowed."},
    503: {"model": models.ErrorResponse,
          "description": "Too many simulations at once, or the request ran past its time "
                         "limit and was stopped (Retry-After is set)."},
}


def build(state: AppState) -> APIRouter:
    """The ``/api`` router for an app with ``state``'s limits and knowledge base."""
    limits = state.limits
    names = state.cancer_names
    rules = state.rules()
    router = APIRouter(prefix="/api", responses=ERRORS)

    Cancer = Annotated[str, Query(
        description=f"Cancer type: {rules['cancer']}.", json_schema_extra={"enum": names},
    )]
    Seed = Annotated[int | None, Query(
        ge=0, le=MAX_SEED,
        description="Root seed of the cohort the patient belongs to. Omitted: one is drawn "
                    "and returned, so the run can be repeated.",
    )]
    RequiredSeed = Annotated[int, Query(ge=0, le=MAX_SEED, description="Root seed.")]
    Index = Annotated[int, Query(ge=0, le=MAX_INDEX, description="Patient index in the cohort.")]
    RowsFrom = Annotated[int, Query(
        ge=0, le=MAX_INDEX,
        description=f"First row of the page of this list (at most {limits.max_rows_per_answer} "
        "rows per answer; the answer gives the total).")]
    Years = Annotated[float, Query(
        gt=0, le=limits.max_years, allow_inf_nan=False,
        description=f"Years from the first cancer cell: {rules['years']}. The untreated "
                    "history's horizon; with clinical=true, the time within which a diagnosis "
                    f"can come, each diagnosed patient then followed {FOLLOW_UP_YEARS:g} years.",
    )]

    Clinical = Annotated[bool, Query(
        description="true: the whole clinical course (symptoms, screening, diagnosis, stage, "
                    "treatment, outcome), whose true state includes treatment; false: the "
                    "untreated natural history.",
    )]
    Screening = Annotated[bool, Query(
        description="With clinical=true: screen with the cancer type's programmes "
                    "(colonoscopy, mammography, low-dose CT).",
    )]

    @router.get("/cancers", response_model=models.CancersResponse, tags=["model"],
                summary="Cancer types of the model")
    def cancers() -> dict[str, Any]:
        return {"disclaimer": metastasis.DISCLAIMER, "cancers": state.cancers()}

    @router.get("/sites", response_model=models.SitesResponse, tags=["model"],
                summary="Sites (organs, cavities, lymph nodes) of the model")
    def sites() -> dict[str, Any]:
        return {
            "disclaimer": metastasis.DISCLAIMER,
            "sites": [{"name": n, "label": s.label, "kind": str(s.kind.value)}
                      for n, s in state.knowledge.sites.items()],
        }

    @router.get("/limits", response_model=models.LimitsResponse, tags=["model"],
                summary="Limits on one request")
    def get_limits() -> dict[str, Any]:
        return {"disclaimer": metastasis.DISCLAIMER, "limits": limits.as_dict()}

    @router.get(
        "/patient", response_model=models.PatientResponse, tags=["simulation"],
        summary="Simulate one virtual patient",
        description=f"Patient `index` of the cohort with root `seed`: the untreated natural "
        f"history, or with `clinical=true` the clinical course (about 50-100 ms more) and the "
        f"true state under treatment. Limits: years in (0, {limits.max_years:g}], "
        f"{limits.request_seconds:g} s per request; at most {limits.max_rows_per_answer} "
        "lesions and as many events per answer (`lesions_total`, `events_total` give the "
        "whole; ask for the next page with `lesions_from`, `events_from`).",
    )
    async def patient(cancer: Cancer, seed: Seed = None, index: Index = 0,
                      years: Years = 10.0, clinical: Clinical = False,
                      screening: Screening = False, lesions_from: RowsFrom = 0,
                      events_from: RowsFrom = 0) -> Response:
        root = check_seed(seed)
        result, course = await state.subject(cancer, root, index, years, clinical, screening)
        return await state.encoded(models.PatientResponse, lambda: state.patient_payload(
            result, years, seed_drawn=seed is None, course=course, screening=screening,
            lesions_from=lesions_from, events_from=events_from))

    @router.get(
        "/patient/sizes", response_model=models.SizesResponse, tags=["simulation"],
        summary="Sizes and states of a patient's lesions on one day",
        description="One frame of the body map: every lesion founded by `day`, its cells "
        "and state, and per-site totals. `day` runs from 0 to the patient's `end_time`.",
    )
    async def sizes(
        cancer: Cancer, seed: RequiredSeed,
        day: Annotated[float, Query(ge=0, allow_inf_nan=False,
                                    description="Days since the first cancer cell.")],
        index: Index = 0, years: Years = 10.0, clinical: Clinical = False,
        screening: Screening = False,
    ) -> Response:
        result, _ = await state.subject(cancer, seed, index, years, clinical, screening)
        moment = state.check_day(result, day)
        return await state.encoded(models.SizesResponse,
                                   lambda: state.sizes_payload(result, years, moment))

    default_cohort = min(200, limits.max_patients)
    """Patients of a cohort asked without a number: 200, or the limit where it is lower (a
    schema's default must meet its own maximum)."""

    @router.get(
        "/cohort", response_model=models.CohortResponse, tags=["simulation"],
        summary="Simulate a cohort and summarise it",
        description=f"Patients 0 to `patients` - 1 of the cohort with root `seed`. "
        f"Limits: at most {limits.max_patients} patients, years in "
        f"(0, {limits.max_years:g}], {limits.request_seconds:g} s per request (a longer run "
        "is stopped and answered with 503). With `clinical=true` every patient's clinical "
        "course is run too (stage at diagnosis, Kaplan-Meier survival by stage, causes of "
        f"death), and at most {state.max_clinical_patients} patients are allowed.",
    )
    async def cohort(
        cancer: Cancer,
        patients: Annotated[int, Query(
            ge=1, le=limits.max_patients,
            description=f"Patients: {rules['patients']}; with clinical=true at most "
            f"{state.max_clinical_patients} (the schema cannot state a bound that depends "
            "on another field, so the server checks it: 422 above).")] = default_cohort,
        seed: Seed = None,
        years: Years = 10.0,
        clinical: Clinical = False,
        screening: Screening = False,
    ) -> Response:
        results, elapsed = await state.cohorts([cancer], patients, seed, years, clinical,
                                               screening)
        return await state.encoded(models.CohortResponse, lambda: {
            **results[0], "elapsed_seconds": elapsed, "disclaimer": metastasis.DISCLAIMER})

    @router.get("/guide", response_model=models.GuideResponse, tags=["guide"],
                summary="The guide's table of contents")
    def guide_toc() -> dict[str, Any]:
        return {
            "disclaimer": metastasis.DISCLAIMER,
            "sections": [{**e.__dict__, "url": e.url} for e in guide_html.toc()],
        }

    @router.get("/guide/glossary", response_model=models.GlossaryResponse, tags=["guide"],
                summary="The glossary")
    def glossary() -> dict[str, Any]:
        return {
            "disclaimer": metastasis.DISCLAIMER,
            "terms": [
                {"term": t.term, "anchor": t.anchor, "definition": t.definition,
                 "url": f"{guide_html.GUIDE_PREFIX}/{guide_html.GLOSSARY_SLUG}#{t.anchor}"}
                for t in guide.glossary()
            ],
        }

    @router.get("/guide/search", response_model=models.SearchResponse, tags=["guide"],
                summary="Full-text search of the guide (ranked, with snippets)")
    def search(
        q: Annotated[str, Query(min_length=1, max_length=200,
                                description="One to 12 words to search for (all must "
                                            "match; word* matches a prefix); text without a "
                                            "word to search for is answered with 422.")],
        limit: Annotated[int, Query(ge=1, le=50)] = 10,
    ) -> dict[str, Any]:
        return {
            "disclaimer": metastasis.DISCLAIMER,
            "query": q,
            "hits": [h.__dict__ for h in guide_html.search(q, limit)],
        }

    @router.get("/guide/sections/{slug}", response_model=models.GuidePageResponse,
                tags=["guide"], summary="One section of the guide",
                responses={404: {"model": models.ErrorResponse}})
    def section(slug: Annotated[str, Path(max_length=100)]) -> dict[str, Any]:
        page = _page(slug)
        return {
            "disclaimer": metastasis.DISCLAIMER, "slug": page.slug, "number": page.number,
            "title": page.title, "step": page.step, "markdown": page.markdown,
            "html": page.html, "url": f"{guide_html.GUIDE_PREFIX}/{page.slug}",
        }

    return router


def _page(slug: str) -> guide_html.GuidePage:
    try:
        return guide_html.page(slug)
    except ModelError as error:
        raise NotFound(error.field, error.value, error.allowed) from None
