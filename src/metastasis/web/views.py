"""The pages: home, guide, virtual patient, cohort.

Pages are rendered on the server from the same functions as the JSON API, and work
without JavaScript (forms with GET, the body map drawn as SVG on the server); the scripts
only make them livelier: the time slider fetches the map for the chosen day
(``/patient/map``, an HTML fragment drawn by the same template), and the cohort page hands
its figure data to the locally served plotly.js.

Form fields arrive as text and are parsed here with the API's rules, so a bad value shows
the form again with one clear message (status 422) instead of a bare error page.
"""

from __future__ import annotations

import math
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

import metastasis
import metastasis.guide as guide
from metastasis.api import check_seed
from metastasis.clinical.course import ClinicalResult
from metastasis.errors import ModelError
from metastasis.limits import FOLLOW_UP_YEARS
from metastasis.results.patient import PatientResult
from metastasis.web import bodymap, charts, clinical_view, guide_html, story
from metastasis.web.errors import NotFound, Problem, from_model_error
from metastasis.web.limits import MAX_INDEX, MAX_SEED
from metastasis.web.service import AppState

FRAMES = 200

OPENING_FRAME = -1
"""Slider position asked for when the URL names none: the page picks it (see patient)."""
"""Positions of the time slider: fine enough to watch a metastasis grow, coarse enough that
arrow keys move visibly (Home and End jump to the first cell and the end)."""

DEFAULT_COHORT = ("colorectal", "breast", "nsclc", "prostate")
DEFAULT_COHORT_SEED = 2024
DEFAULT_YEARS = 10.0

OptionalText = Annotated[str | None, Query(max_length=400)]


def parse_int(field: str, text: str | None, low: int, high: int, allowed: str,
              default: int | None = None) -> int:
    """An integer form field, or :class:`ModelError` naming it."""
    if text is None or not text.strip():
        if default is not None:
            return default
        raise ModelError(field, text or "", allowed)
    try:
        value = int(text.strip())
    except ValueError:
        raise ModelError(field, text, allowed) from None
    if not low <= value <= high:
        raise ModelError(field, value, allowed)
    return value


def parse_float(field: str, text: str | None, allowed: str, default: float) -> float:
    """A finite number form field, or :class:`ModelError` naming it."""
    if text is None or not text.strip():
        return default
    try:
        value = float(text.strip())
    except ValueError:
        raise ModelError(field, text, allowed) from None
    if not math.isfinite(value):
        raise ModelError(field, text, allowed)
    return value


TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
"""The words a form or link may use for a yes/no field: the API's (FastAPI's) own set, so a
page and its JSON twin accept the same links."""


def parse_bool(field: str, text: str | None, allowed: str, default: bool) -> bool:
    """A yes/no form field, or :class:`ModelError` naming it (``maybe`` is not an answer)."""
    if text is None or not text.strip():
        return default
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ModelError(field, text, allowed)


def build(state: AppState, templates: Jinja2Templates) -> APIRouter:
    """The HTML routes of an app with ``state``."""
    router = APIRouter(include_in_schema=False)
    rules = state.rules()
    limits = state.limits

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(
            request, name,
            {"disclaimer": metastasis.DISCLAIMER, "version": metastasis.__version__,
             "limits": limits, "follow_up_years": FOLLOW_UP_YEARS, **context},
            status_code=status,
        )

    @router.get("/", response_class=HTMLResponse)
    def home(request: Request) -> HTMLResponse:
        return page(request, "home.html", section="home", toc=guide_html.toc(),
                    cancers=state.cancers())

    # ------------------------------------------------------------------ guide

    @router.get("/guide", response_class=HTMLResponse)
    def guide_toc(request: Request) -> HTMLResponse:
        groups: list[tuple[guide_html.TocEntry, list[guide_html.TocEntry]]] = []
        for entry in guide_html.toc():  # step pages nest under the page before them
            if entry.step and groups:
                groups[-1][1].append(entry)
            else:
                groups.append((entry, []))
        return page(request, "guide_toc.html", section="guide", groups=groups)

    @router.get("/guide/search", response_class=HTMLResponse)
    def guide_search(request: Request, q: OptionalText = None) -> HTMLResponse:
        query = (q or "").strip()
        hits: list[guide_html.Hit] = []
        error = None
        if query:
            try:
                hits = guide_html.search(query, 20)
            except ModelError as problem:
                error = str(problem)
        return page(request, "guide_search.html", status=422 if error else 200,
                    section="guide", query=query, hits=hits, error=error)

    @router.get("/guide/{slug}", response_class=HTMLResponse)
    def guide_page(request: Request, slug: str) -> HTMLResponse:
        try:
            entry = guide_html.page(slug)
        except ModelError as error:
            raise NotFound(error.field, error.value, error.allowed) from None
        glossary = guide.glossary() if entry.slug == guide_html.GLOSSARY_SLUG else ()
        return page(request, "guide_page.html", section="guide", page=entry,
                    glossary=glossary, toc=guide_html.toc())

    # ------------------------------------------------------------------ virtual patient

    def patient_form(cancer: str | None, seed: str | None, index: str | None,
                     years: str | None, clinical: str | None = None,
                     screening: str | None = None) -> dict[str, Any]:
        names = state.cancer_names
        return {
            # the page tells the clinical course unless asked not to; bad words are kept
            # as typed so the form shows them beside the error
            "clinical": (clinical or "true").strip().lower(),
            "screening": (screening or "false").strip().lower(),
            "cancer": cancer if cancer in names else
            ("colorectal" if "colorectal" in names else names[0]),
            "seed": (seed or "").strip(),
            "index": (index or "0").strip(),
            "years": (years or f"{DEFAULT_YEARS:g}").strip(),
        }

    def parse_patient(cancer: str, seed: str | None, index: str | None, years: str | None
                      ) -> tuple[str, int, int, float]:
        state.check_cancer(cancer)
        root = parse_int("seed", seed, 0, MAX_SEED, rules["seed"])
        row = parse_int("index", index, 0, MAX_INDEX, rules["index"], default=0)
        span = state.check_years(parse_float("years", years, rules["years"], DEFAULT_YEARS))
        return cancer, root, row, span

    @router.get("/patient", response_class=HTMLResponse)
    async def patient(
        request: Request, cancer: OptionalText = None, seed: OptionalText = None,
        index: OptionalText = None, years: OptionalText = None,
        frame: OptionalText = None, clinical: OptionalText = None,
        screening: OptionalText = None,
    ) -> Response:
        form = patient_form(cancer, seed, index, years, clinical, screening)
        context: dict[str, Any] = {"section": "patient", "form": form,
                                   "cancers": state.cancers(), "result": None}
        if cancer is None:
            return page(request, "patient.html", **context)
        if not form["seed"]:
            # a run without a seed draws one, and the URL records it so it can be re-run
            fresh = {"cancer": cancer, "seed": check_seed(None), "index": form["index"],
                     "years": form["years"], "clinical": form["clinical"],
                     "screening": form["screening"]}
            return RedirectResponse(f"/patient?{urlencode(fresh)}", status_code=303)
        try:
            name, root, row, span = parse_patient(cancer, seed, index, years)
            shown = parse_int("frame", frame, 0, FRAMES, f"an integer from 0 to {FRAMES}",
                              default=OPENING_FRAME)
            told = parse_bool("clinical", clinical, rules["clinical"], True)
            screened = parse_bool("screening", screening, rules["screening"], False)
        except ModelError as error:
            return page(request, "patient.html", status=422,
                        error=from_model_error(error).message, **context)
        result, course = await state.subject(name, root, row, span, told, screened)
        query = urlencode({"cancer": name, "seed": root, "index": row, "years": f"{span:g}",
                           "clinical": str(told).lower(), "screening": str(screened).lower()})
        # the story and the map grow with the patient: built in a worker, off the event loop
        context.update(await state.off_loop(lambda: patient_details(
            result, course, name, root, row, span, told, screened, shown, query)))
        return page(request, "patient.html", **context)

    def patient_details(
        result: PatientResult, course: ClinicalResult | None, name: str, root: int,
        row: int, span: float, told: bool, screened: bool, shown: int, query: str,
    ) -> dict[str, Any]:
        """What the patient page shows of one simulated patient."""
        if shown == OPENING_FRAME:
            # a clinical story opens where the clinic's begins, at diagnosis; a natural
            # history (or an undiagnosed patient) at its end
            dx = course.diagnosis if course is not None else None
            shown = (FRAMES if dx is None
                     else bodymap.frame_at(dx.day, result.end_time, FRAMES))
        data = result.to_dict()
        labels = state.site_labels
        urls = guide_html.step_urls()
        events = story.timeline(result, state.runner.model(name), labels, urls)
        by_site = data["accounting"]["by_site"]
        return dict(
            result=result,
            params={"cancer": name, "seed": root, "index": row, "years": span,
                    "clinical": told, "screening": screened},
            cancer_label=state.cancer_label(name),
            headline=(clinical_view.summary_text(course, labels) if course is not None
                      else story.headline(result, labels)),
            map=bodymap.frame(result, bodymap.frame_day(result.end_time, shown, FRAMES),
                              labels, frames=FRAMES,
                              max_per_site=limits.max_lesions_drawn_per_site),
            events=events[: limits.max_events_shown],
            n_events=len(events),
            accounting=story.accounting(data["accounting"]["totals"], urls),
            by_site=sorted(by_site.items(), key=lambda kv: -kv[1]["arrested"]),
            site_labels=labels,
            clinical=(clinical_view.course_payload(course, labels, screening=screened)
                      if course is not None else story.clinical(result)),
            map_url=f"/patient/map?{query}",
            json_url=f"/api/patient?{query}",
            query=query,
            step_urls=urls,
        )

    @router.get("/patient/map", response_class=HTMLResponse)
    async def patient_map(
        request: Request, cancer: OptionalText = None, seed: OptionalText = None,
        index: OptionalText = None, years: OptionalText = None, day: OptionalText = None,
        clinical: OptionalText = None, screening: OptionalText = None,
    ) -> HTMLResponse:
        try:
            name, root, row, span = parse_patient(cancer or "", seed, index, years)
            when = parse_float("day", day, rules["day"], math.inf)
            # a map link without ``clinical`` is the natural history, as in the JSON API
            told = parse_bool("clinical", clinical, rules["clinical"], False)
            screened = parse_bool("screening", screening, rules["screening"], False)
            result, _ = await state.subject(name, root, row, span, told, screened)
            if not math.isinf(when):
                when = state.check_day(result, when)
        except ModelError as error:
            return page(request, "error_fragment.html", status=422,
                        problem=from_model_error(error))
        when = result.end_time if math.isinf(when) else when
        frame_data = await state.off_loop(lambda: bodymap.frame(
            result, when, state.site_labels, frames=FRAMES,
            max_per_site=limits.max_lesions_drawn_per_site))
        return page(request, "map.html", map=frame_data)

    # ------------------------------------------------------------------ cohort

    @router.get("/cohort", response_class=HTMLResponse)
    async def cohort(
        request: Request,
        cancer: Annotated[list[str] | None, Query(max_length=50)] = None,
        patients: OptionalText = None, seed: OptionalText = None,
        years: OptionalText = None, clinical: OptionalText = None,
        screening: OptionalText = None,
    ) -> Response:
        names = state.cancer_names
        chosen = [c for c in (cancer or []) if c]
        form = {
            "cancers": chosen or [c for c in DEFAULT_COHORT if c in names] or names[:1],
            "patients": (patients or "200").strip(),
            "seed": (seed or str(DEFAULT_COHORT_SEED)).strip() if cancer is None
            else (seed or "").strip(),
            "years": (years or f"{DEFAULT_YEARS:g}").strip(),
            # off unless asked: a clinical cohort is held to a far smaller patient limit
            "clinical": (clinical or "false").strip().lower(),
            "screening": (screening or "false").strip().lower(),
        }
        context: dict[str, Any] = {"section": "cohort", "form": form,
                                   "cancers": state.cancers(), "cohorts": None}
        if cancer is None:
            return page(request, "cohort.html", **context)
        if not form["seed"]:
            query = [("cancer", c) for c in chosen] + [
                ("patients", form["patients"]), ("seed", check_seed(None)),
                ("years", form["years"]), ("clinical", form["clinical"]),
                ("screening", form["screening"])]
            return RedirectResponse(f"/cohort?{urlencode(query)}", status_code=303)
        try:
            n = parse_int("patients", patients, 1, limits.max_patients, rules["patients"],
                          default=200)
            root = parse_int("seed", seed, 0, MAX_SEED, rules["seed"])
            span = parse_float("years", years, rules["years"], DEFAULT_YEARS)
            told = parse_bool("clinical", clinical, rules["clinical"], False)
            screened = parse_bool("screening", screening, rules["screening"], False)
            results, elapsed = await state.cohorts(chosen, n, root, span, told, screened)
        except ModelError as error:
            return page(request, "cohort.html", status=422,
                        error=from_model_error(error).message, **context)
        labels = state.site_labels
        figures = [
            {"id": "sites", **charts.sites_figure(results, labels)},
            {"id": "incidence", **charts.incidence_figure(results)},
            {"id": "histogram", **charts.histogram_figure(results)},
            *charts.clinical_figures(results),
        ]
        context.update(cohorts=results, figures=figures, elapsed=elapsed, site_labels=labels,
                       site_order=[s["site"] for s in results[0]["summary"]["sites"]
                                   if any(_share(c, s["site"]) > 0 for c in results)],
                       share=_share, clinical=told, screening=screened,
                       stage_order=charts.STAGE_ORDER,
                       stage_groups=charts.stage_groups(results))
        return page(request, "cohort.html", **context)

    return router


def _share(cohort: dict[str, Any], site: str) -> float:
    """Share of a cohort's patients with a growing metastasis in ``site``."""
    for row in cohort["summary"]["sites"]:
        if row["site"] == site:
            return float(row["share"])
    return 0.0


def error_page(templates: Jinja2Templates) -> Any:
    """The HTML error page renderer handed to :func:`metastasis.web.errors.install`."""

    def render(request: Request, problem: Problem) -> HTMLResponse:
        return templates.TemplateResponse(
            request, "error.html",
            {"disclaimer": metastasis.DISCLAIMER, "version": metastasis.__version__,
             "problem": problem, "section": None},
            status_code=problem.status,
        )

    return render
