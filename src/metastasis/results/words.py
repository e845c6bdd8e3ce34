"""The disease's events in plain words, written once for every surface.

The command line's stories (:mod:`metastasis.cli.narrative`, :mod:`metastasis.cli.
clinical_story`), the patient page and ``/api/patient`` tell the events of
:func:`metastasis.results.story.lesion_events` in these sentences: a learner reads the same
words for the same event wherever it is shown.  The anatomy (labels, how blood, lymph and
body cavities carry cells from each organ) comes from the resolved model's knowledge.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metastasis.knowledge.schema import THORACIC_DUCT
from metastasis.model.resolve import ResolvedModel
from metastasis.model.routing import ROUTE_NAMES
from metastasis.results import numbers
from metastasis.results.patient import PatientResult
from metastasis.results.story import CLONE, Event

CAVITY_WORDS = {"peritoneum": "peritoneal cavity", "pleura": "pleural cavity"}
"""Adjectives for the serous cavities the default anatomy knows; others read 'X cavity'."""


class Anatomy:
    """Site labels and drainage read from the resolved model's knowledge (plain data)."""

    def __init__(self, model: ResolvedModel) -> None:
        self.model = model
        self.sites: dict[str, dict[str, Any]] = model.knowledge.get("sites", {})
        self.labels = dict(zip(model.site_names, model.site_labels, strict=True))

    def label(self, site: str) -> str:
        return self.labels.get(site, site.replace("_", " "))

    def blood_route(self, source: str) -> str:
        """How blood leaving ``source`` travels, and its first capillary bed."""
        drainage = self.sites.get(source, {}).get("venous_drainage")
        if drainage == "portal":
            return f"by the portal blood (first capillary bed: the {self.label('liver')})"
        if drainage == "caval":
            return f"by the caval blood (first capillary bed: the {self.label('lungs')})"
        if drainage == "arterial":
            return "by the arterial blood (shared among all organs by their blood flow)"
        return "by the blood"

    def lymph_route(self, source: str) -> str:
        target = self.sites.get(source, {}).get("lymph_drainage")
        if target == THORACIC_DUCT:
            return "by the lymph, through the thoracic duct into the caval blood"
        if target:
            return f"by the lymph towards the {self.label(target)}"
        return "by the lymph"

    def cavity_route(self, source: str) -> str:
        cavity = self.sites.get(source, {}).get("cavity")
        if cavity:
            return f"across the {CAVITY_WORDS.get(cavity, self.label(cavity) + ' cavity')}"
        return "across a body cavity"

    def route(self, route: str, source: str) -> str:
        if route == "blood":
            return self.blood_route(source)
        if route == "lymph":
            return self.lymph_route(source)
        if route == "cavity":
            return self.cavity_route(source)
        return f"by {route}"

    def routes_from(self, source: str) -> list[str]:
        """Every route by which the primary sheds, with its share of shed cells."""
        o = self.model.site_index(source)
        out = []
        for r, name in enumerate(ROUTE_NAMES):
            weight = float(self.model.route_weights[o, r])
            if weight > 0:
                out.append(f"{numbers.percent(100 * weight)} {self.route(name, source)}")
        return out


class LesionNamer:
    """Names lesions the way a reader can follow: the primary, or ``metastasis #3 in the
    liver``, by the lesion's id (a treated lesion has several rows; its id is one)."""

    def __init__(self, patient: PatientResult, anatomy: Anatomy) -> None:
        self.anatomy = anatomy
        first = np.flatnonzero(patient.lesions.first_segments())
        self.site = {int(patient.lesions.id[r]): patient.site_names[int(patient.lesions.site[r])]
                     for r in first}

    def site_of(self, lesion: int) -> str:
        return self.site.get(lesion, "")

    def lesion(self, lesion: int) -> str:
        if lesion == 0:
            return f"the primary ({self.anatomy.label(self.site_of(0))})"
        return f"metastasis #{lesion} in the {self.anatomy.label(self.site_of(lesion))}"


class EventWords:
    """The sentence of each lesion event of one patient (lower case: surfaces put a day and
    a step before it)."""

    def __init__(self, patient: PatientResult, model: ResolvedModel) -> None:
        self.model = model
        self.anatomy = Anatomy(model)
        self.namer = LesionNamer(patient, self.anatomy)

    def sentence(self, event: Event) -> str:
        model, anatomy, namer = self.model, self.anatomy, self.namer
        site = anatomy.label(event.site)
        kind = event.kind
        this = namer.lesion(event.lesion) if event.lesion >= 0 else site
        cells_cm3 = numbers.volume(model.clinical_size_cells, model.cells_per_cm3)
        if kind == "primary_founded":
            return (f"the first cancer cell begins to divide in the {site}; this is the primary "
                    "tumour.")
        if kind == "motility_acquired":
            return (
                f"a cell in the primary ({site}) gains the ability to move; its descendants "
                "can now crawl out of the tumour."
            )
        if kind == "local_invasion":
            return (
                f"moving cells break through the tissue boundary of the {site} and invade the "
                "tissue around it (local invasion)."
            )
        if kind == "shedding_began":
            routes = "; ".join(anatomy.routes_from(event.site))
            return f"cells start to enter the vessels (intravasation): {routes}."
        if kind == "primary_clinical_size":
            return f"the primary reaches {cells_cm3}, big enough to be found."
        if kind == "extravasated":
            parent = namer.lesion(event.parent)
            travel = anatomy.route(event.route, namer.site_of(event.parent))
            verb = "settled on" if event.route == "cavity" else "left the vessels in"
            return (
                f"a cell from {parent}, carried {travel}, survived the journey and {verb} the "
                f"{site}; it will found metastasis #{event.lesion}."
            )
        if kind == CLONE:
            return (f"a drug-resistant clone of {namer.lesion(event.parent)} survives and grows "
                    f"on as {namer.lesion(event.lesion)}.")
        if kind == "dormant":
            return (f"the founder of {this} falls asleep: a single dormant cell, invisible to "
                    "any scan.")
        if kind == "awakened":
            return f"the dormant cell of {this} wakes up and starts dividing."
        if kind == "micrometastasis":
            return (
                f"{this} is a micrometastasis of "
                f"{numbers.volume(model.micrometastasis_cells, model.cells_per_cm3)}; without "
                "its own blood supply it stays this small for a while."
            )
        if kind == "outgrowth":
            return f"{this} gains a blood supply and grows as a metastatic tumour."
        if kind == "clinical_size":
            return f"{this} reaches {cells_cm3}, big enough to be found."
        return f"{kind.replace('_', ' ')} in the {site}."
