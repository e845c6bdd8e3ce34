"""Why cancers spread to one organ: anatomy and affinity from the model, shares from a cohort.

``metastasis explain liver`` answers three questions a learner asks about an organ, each from
a different part of the project so that every answer can be traced:

1. *Which cancers reach it, and why?*  The anatomy of the knowledge base says whose venous
   blood meets this organ's capillaries first (portal vein or venae cavae), how much arterial
   blood it receives, and which lymph or body-cavity routes lead to it; the resolved model of
   each cancer type adds its seed-and-soil affinity (with the affinity's source) and the
   closed-form share of that cancer's metastasis founders that land here.
2. *What does it do to a person?*  Symptoms and consequences, from the guide's own notes
   (``content/sites.toml``).
3. *How often, in the model?*  The share of simulated patients of each cancer type who
   develop a growing metastasis there, from a small seeded cohort whose size, seed and
   horizon are stated.

The result is plain data (:class:`SiteExplanation`) so the terminal and the web explorer
render the same explanation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from metastasis.errors import ModelError
from metastasis.guide import content, figures
from metastasis.guide.pages import DRAINAGE_WORDS
from metastasis.guide.settings import EXPLAIN_PATIENTS
from metastasis.knowledge.loader import load as load_knowledge
from metastasis.knowledge.schema import THORACIC_DUCT, KnowledgeBase

COMMON_SHARE = 0.1
"""A cancer type 'commonly' spreads to a site, in the model, when at least this share of its
distant metastasis founders land there (closed form)."""


EXPLAINED = 4
"""Most cancer types whose route to the site is spelt out (the table lists them all)."""


@dataclass(frozen=True)
class CancerAtSite:
    """How one cancer type of the model relates to the site being explained."""

    cancer: str
    label: str
    primary: str
    first_bed_share: float
    affinity: float
    affinity_source: str
    founder_share: float
    reasons: tuple[str, ...]
    simulated_hits: int
    simulated_patients: int

    @property
    def simulated_share(self) -> float:
        return self.simulated_hits / self.simulated_patients


@dataclass(frozen=True)
class SiteExplanation:
    """Everything ``explain`` shows about a site, as data."""

    site: str
    label: str
    kind: str
    anatomy: tuple[str, ...]
    cancers: tuple[CancerAtSite, ...]  # most simulated patients first
    common: tuple[str, ...]  # labels of the cancer types that commonly spread here
    guide_primaries: tuple[str, ...]
    symptoms: tuple[str, ...]
    consequences: str
    guide: str
    patients: int
    seed: int
    years: float

    def cohort_note(self) -> str:
        return (
            f"simulated: {self.patients} virtual patients per cancer type, root seed "
            f"{self.seed}, {self.years:g} years untreated"
        )


def _join(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _normal(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", text.strip().lower())


def resolve_site(name: str, kb: KnowledgeBase | None = None) -> str:
    """The knowledge base's name for a site a person typed ('Lung', 'adrenal', 'bones')."""
    kb = kb or load_knowledge()
    wanted = _normal(name)
    notes = content.site_notes()
    for key, site in kb.sites.items():
        names = {key, _normal(site.label), *notes.get(key, {}).get("aliases", [])}
        if wanted in names:
            return key
    raise ModelError("site", name, ", ".join(kb.sites))


def _anatomy(kb: KnowledgeBase, site: str) -> list[str]:
    """Sentences about how cells reach ``site``, from the anatomy of the knowledge base."""
    spec = kb.sites[site]
    label = spec.label
    lines: list[str] = []
    portal = [s.label for s in kb.sites.values() if str(s.venous_drainage) == "portal"]
    caval = [
        s.label for k, s in kb.sites.items() if str(s.venous_drainage) == "caval" and k != "lungs"
    ]
    if site == "liver":
        lines.append(
            "First capillary bed of the portal vein: venous blood from the "
            f"{_join(portal)} passes through the liver before anything else, so cells "
            "shed into that blood meet the liver's sinusoids first."
        )
    if site == "lungs":
        lines.append(
            "First capillary bed of the venae cavae: venous blood from the "
            f"{_join(caval)} returns to the right heart and is pumped through the lungs "
            "first; so is the blood leaving the liver, and the lymph of the thoracic duct."
        )
    plexus = [s.label for s in kb.sites.values() if s.vertebral_plexus_share]
    if site == "bone" and plexus:
        lines.append(
            "The valveless spinal veins (Batson's vertebral plexus) carry part of the venous "
            f"blood of the {_join(plexus)} straight to the spine, bypassing the lungs."
        )
    if spec.arterial_share.value > 0:
        lines.append(
            f"Arterial supply: {figures.percent(spec.arterial_share.value)} of cardiac output, "
            f"so cells that get through the lungs reach the {label} in about that proportion "
            f"(source: {spec.arterial_share.source})."
        )
    drains = [s.label for s in kb.sites.values() if s.lymph_drainage == site]
    if drains:
        lines.append(f"Lymph reaches it from the {_join(drains)}.")
    cavity = [s.label for s in kb.sites.values() if s.cavity == site]
    if cavity:
        lines.append(
            f"A body cavity: cells shed from the surface of the {_join(cavity)} can fall "
            "across it and settle on its lining."
        )
    if spec.capillary_arrest.value > 0 and str(spec.kind) != "cavity":
        noun = "node" if str(spec.kind) == "lymph_nodes" else "capillary bed"
        lines.append(
            f"A circulating cell that reaches this {noun} stops there with probability "
            f"{figures.percent(spec.capillary_arrest.value)} (source: "
            f"{spec.capillary_arrest.source})."
        )
    if str(spec.venous_drainage) in DRAINAGE_WORDS:
        lines.append(
            f"Blood leaving the {label} goes on through the "
            f"{DRAINAGE_WORDS[str(spec.venous_drainage)]}: where its own metastases shed next."
        )
    elif spec.lymph_drainage:
        target = (
            "the thoracic duct into the blood"
            if spec.lymph_drainage == THORACIC_DUCT
            else f"the {kb.sites[spec.lymph_drainage].label}"
        )
        lines.append(f"Lymph leaving it drains on to {target}.")
    return lines


def _reasons(kb: KnowledgeBase, cancer: str, site: str, first_bed: float) -> list[str]:
    """Why a cancer type's cells reach ``site``, in words, from anatomy and affinity."""
    spec = kb.cancers[cancer]
    primary = kb.sites[spec.primary_site]
    target = kb.sites[site]
    reasons: list[str] = []
    if site == "liver" and str(primary.venous_drainage) == "portal":
        reasons.append("its venous blood flows through the portal vein to the liver first")
    elif site == "lungs" and str(primary.venous_drainage) == "caval":
        reasons.append("its venous blood returns through the venae cavae to the lungs first")
    elif site == "bone" and primary.vertebral_plexus_share:
        reasons.append("part of its venous blood reaches the spine through the vertebral plexus")
    elif first_bed > 0 and target.arterial_share.value > 0:
        reasons.append("reached by arterial blood once cells have passed the first capillary bed")
    if first_bed > 0:
        reasons.append(
            f"{figures.percent(first_bed)} of its blood-borne cells that stop, stop here"
        )
    if primary.lymph_drainage == site:
        reasons.append("the primary's lymph drains here")
    if primary.cavity == site and spec.shedding.cavity_fraction.value > 0:
        reasons.append(f"the primary sheds cells into the {target.label}")
    return reasons


def explain_site(
    name: str,
    patients: int = EXPLAIN_PATIENTS,
    seed: int = figures.GUIDE_SEED,
    years: float = figures.GUIDE_YEARS,
) -> SiteExplanation:
    """Explain why and how often cancers spread to site ``name`` (see the module docstring)."""
    from metastasis.limits import check_seed, check_years

    kb = load_knowledge()
    site = resolve_site(name, kb)
    figures.check_patients(patients)
    seed = check_seed(seed)
    years = check_years(years)
    rows = []
    for cancer, spec in kb.cancers.items():
        m = figures.model(cancer)
        j = m.site_index(site)
        first_bed = float(figures.first_bed_shares(m)[j])
        if site == figures.REGIONAL_NODES:
            founders = m.founder_probability[m.primary_site]
            founder_share = float(founders[j] / founders.sum())
        else:
            founder_share = float(figures.distant_founder_shares(m)[j])
        affinity = spec.affinity.get(site)
        cohort = figures.cohort(cancer, patients, seed, years)
        rows.append(
            CancerAtSite(
                cancer=cancer,
                label=spec.label,
                primary=kb.sites[spec.primary_site].label,
                first_bed_share=first_bed,
                affinity=affinity.value if affinity else 0.0,
                affinity_source=affinity.source if affinity else "no affinity given: 0",
                founder_share=founder_share,
                reasons=tuple(_reasons(kb, cancer, site, first_bed)),
                simulated_hits=sum(site in r.sites for r in cohort.rows),
                simulated_patients=patients,
            )
        )
    rows.sort(key=lambda r: (-r.simulated_hits, -r.founder_share, r.cancer))
    common = tuple(
        r.label
        for r in sorted(rows, key=lambda r: -r.founder_share)
        if r.founder_share >= COMMON_SHARE and kb.cancers[r.cancer].primary_site != site
    )
    notes = content.site_notes().get(site, {})
    return SiteExplanation(
        site=site,
        label=kb.sites[site].label,
        kind=str(kb.sites[site].kind),
        anatomy=tuple(_anatomy(kb, site)),
        cancers=tuple(rows),
        common=common,
        guide_primaries=tuple(notes.get("guide_primaries", [])),
        symptoms=tuple(notes.get("symptoms", [])),
        consequences=notes.get("consequences", ""),
        guide=notes.get("guide", "common-sites"),
        patients=patients,
        seed=seed,
        years=years,
    )


MECHANICS_TITLE = "How the model computes this"
"""The section for researchers: the model's own terms (founders, first capillary bed,
affinity, root seed), kept after the plain-words explanation a learner reads first."""


def to_markdown(e: SiteExplanation) -> str:
    """The explanation as Markdown, disclaimer first: one text for the terminal and the web.

    A learner reads plain words first (which cancers spread here and why, how often in
    simulated patients, the symptoms); the model's terms and exact figures follow under
    :data:`MECHANICS_TITLE` (issue 11: "founder share" and "affinity" greeted learners)."""
    from metastasis.guide.pages import disclaimer_block

    away = ("" if e.site == figures.REGIONAL_NODES
            else " away from the lymph nodes near the first tumour")
    founders = (
        "metastasis founders"
        if e.site == figures.REGIONAL_NODES
        else "metastasis founders outside the regional lymph nodes"
    )
    lines = [disclaimer_block(), f"# Why cancers spread to the {e.label}", ""]
    if e.common:
        lines.append(
            f"**Cancers that often spread here:** {_join(list(e.common))}. Of the cells from "
            f"these cancers that start a new tumour{away}, at least "
            f"{figures.percent(COMMON_SHARE)} start it here."
        )
    else:
        lines.append(
            f"**No cancer type often spreads here:** for every one, fewer than "
            f"{figures.percent(COMMON_SHARE)} of the cells that start a new tumour{away} start "
            "it here."
        )
    if e.guide_primaries:
        lines += ["", f"The guide names: {', '.join(e.guide_primaries)}."]
    lines += ["", "## How cells get there", ""]
    lines += [f"- {line}" for line in e.anatomy]
    lines += ["", "## Why these cancers", ""]
    by_founders = sorted(e.cancers, key=lambda r: -r.founder_share)
    explained = [r for r in by_founders if r.label in e.common][:EXPLAINED] or by_founders[:3]
    for row in explained:
        why = "; ".join(row.reasons) or "reached only by rare onward spread"
        lines.append(f"- **{row.label}** (starts in the {row.primary}): {why}.")
    lines += [
        "",
        "## How often, in simulated patients",
        "",
        f"Out of {e.patients} simulated patients of each cancer type, left untreated for "
        f"{e.years:g} years, how many had a metastasis here:",
        "",
        "| cancer type | patients with a metastasis here |",
        "|---|---|",
    ]
    for row in e.cancers:
        lines.append(
            f"| {row.label} | {figures.percent(row.simulated_share)} "
            f"({row.simulated_hits} of {row.simulated_patients}) |"
        )
    if e.symptoms:
        lines += ["", "## Symptoms it can cause", ""]
        lines += [f"- {symptom}" for symptom in e.symptoms]
    if e.consequences:
        lines += ["", f"**Why it matters:** {e.consequences}"]
    lines += [
        "",
        f"## {MECHANICS_TITLE}",
        "",
        f"Patients: {e.cohort_note()}. *Founder share*: of a cancer's {founders}, the share "
        "that land here. *First-bed share*: of its blood-borne cells that stop anywhere, the "
        "share that stop here (a capillary bed the blood reaches first catches most of them). "
        "*Affinity* (seed and soil): the share of cells that stop here which can go on to "
        "grow, relative to the most welcoming organ. Founder and first-bed shares are exact "
        "figures of the model; a cancer type 'often spreads here' when its founder share is "
        f"at least {figures.percent(COMMON_SHARE)}.",
        "",
        "| cancer type | founder share | first-bed share | affinity |",
        "|---|---|---|---|",
    ]
    for row in e.cancers:
        lines.append(
            f"| {row.label} | {figures.percent(row.founder_share)} | "
            f"{figures.percent(row.first_bed_share)} | {row.affinity:g} |"
        )
    lines += ["", "Where each affinity comes from:", ""]
    lines += [f"- {row.label}: {row.affinity:g} ({row.affinity_source})." for row in explained]
    lines += [
        "",
        f"Read more: `metastasis guide {e.guide.split('#')[0]}`. Symptoms have many causes; "
        "only a doctor can judge a real person's.",
    ]
    return "\n".join(lines) + "\n"
