"""Treatment: protocols from data turned into exact interventions on the disease process.

Treatment is the clinical layer's only way back into the hidden disease process
(docs/clinical.md).  A protocol's steps are expanded into dated actions (each cycle of a
course, each operation, each radiotherapy course, each end-of-course evaluation), merged in
time order, and the changes of all actions on one day go to the process in one call of
:meth:`DiseaseProcess.intervene`, which cuts the sampled future, changes the lesions and
samples the future again, exactly.  (One call per day, because a cut drops every row that
begins on the day of the cut, which would lose a clone made earlier that day.)  Every action leaves
a :class:`TreatmentEvent` saying what was done, to which lesions, and what came of it, so
the story can tell why a drug did nothing ("no EGFR mutation") as well as when it worked.

Randomness: what the clinic draws (biomarkers, responder status, resistant cells, local
control, pain relief) comes from the generator passed in, the patient's clinical
generator, never from the disease's.  Biomarkers and responder status are drawn once per
patient (:func:`draw_traits`), with a fixed number of draws, so two arms with different
protocols share the patient's traits: common random numbers.  So is the patient's own
chemosensitivity where a chemotherapy has a between-patient spread, but from a stream
derived from the clinical generator's seed, so that it draws nothing from the clinical
stream itself and every later draw of the course (work-up delay, scans, biopsies) is what it
was without the spread.

Lesion ids: a ``LesionTable`` numbers lesions in order of appearance among the rows it
keeps, so the same lesion can have different ids in tables read through different days.
``found_lesions`` and the ids in every event therefore refer to one named table, the
*frame*: ``found_in`` if given (the table the clinic found the lesions in), else
``process.lesion_table(through=start_day)``.  Lesions are matched between the frame and the
process by the process's own lesion id (``LesionTable.lesion``), which a lesion keeps for
its whole life and in every table.  Lesions that arose after the frame
(resistant clones, new metastases) have no id in it and are counted in
``TreatmentEvent.other_lesions``.

Educational and research software: not medical advice.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from itertools import groupby
from typing import cast

import numpy as np

from metastasis.clinical.detection import diameter_mm
from metastasis.clinical.treatment_schema import (
    STAGE_GROUPS,
    ChemotherapyTherapy,
    CourseStep,
    ImmunotherapyTherapy,
    Protocol,
    RadiationStep,
    RadiationTherapy,
    SurgeryStep,
    SurgeryTherapy,
    TargetedTherapy,
    TreatmentKnowledge,
    check_protocol,
    load_treatments,
)
from metastasis.engine.process import MUTATION_ROUTE, PRIMARY, Changes, DiseaseProcess
from metastasis.engine.seeds import keyed_uniform, name_key, side_stream
from metastasis.errors import ModelError
from metastasis.results.patient import LesionTable
from metastasis.units import DAYS_PER_YEAR

__all__ = [
    "PatientTraits",
    "TreatmentEvent",
    "apply_protocol",
    "default_protocol",
    "draw_traits",
    "given_before",
    "load_treatments",
]

EVALUATION, LOCAL, SYSTEMIC = 0, 1, 2
"""Order of actions on one day: a course is evaluated before anything is done that day;
local treatment (surgery, radiotherapy) acts before drugs, so that a tumour removed that day
does not also gain a resistant clone that day."""


# ---------------------------------------------------------------------------- patient traits
IMMUNE_MEMORY = "immune memory"
"""The outcome of an interval of an immunotherapy's immune memory, after its last dose."""

SENSITIVITY_STREAM = 2**32 - 1
"""Appended to the clinical generator's spawn key, it keys the stream of chemosensitivity
draws: far above any child index ``SeedSequence.spawn`` would hand out, so that stream meets
no other."""
SUPPORTIVE_CARE_STREAM = 2**32 - 2
"""Keys the stream of the one draw that decides supportive care only, beside the
chemosensitivity stream and as far from any spawned child."""
OPERATIVE_STREAM = 2**32 - 3
"""Keys the stream of the draws that decide whether an operation kills, so that operative
deaths move no other draw of the course."""
MARKER_STREAM = 2**32 - 5
"""Keys the draws of the patient's biomarkers (one per biomarker, keyed by its name)."""
RESPONSE_STREAM = 2**32 - 6
"""Keys the draws of whether the patient responds to each targeted or immune therapy."""

OPERATIVE_WINDOW_DAYS = 30.0
"""assumption: an operative death falls within 30 days of the operation, as the audits'
30-day postoperative mortality counts it, its day uniform over them."""
POSTOPERATIVE_DEATH = "complications of surgery"
"""The cause of death (and end of the history) of an operative death."""
COMPLICATIONS = ": complications"
"""Ends the description of the event of an operation that kills."""


@dataclass(frozen=True)
class PatientTraits:
    """What a patient's tumour carries and how it answers drugs, drawn once per patient.

    ``mutations``: the biomarkers the tumour carries (actionable mutations such as EGFR, and
    expression markers such as PD-L1 >= 50 %).  ``responder``: for each targeted therapy and
    immunotherapy indicated for the cancer, whether this patient responds when the drug can
    act at all (a targeted drug still needs its biomarker).  ``chemo_surviving_fraction``:
    for each chemotherapy with a between-patient spread (``log_kill_sd``), the share of this
    patient's sensitive cells that survive each cycle; a chemotherapy not listed leaves its
    median ``surviving_fraction`` (the median patient).
    """

    mutations: frozenset[str] = frozenset()
    responder: dict[str, bool] = field(default_factory=dict, hash=False)
    chemo_surviving_fraction: dict[str, float] = field(default_factory=dict, hash=False)
    supportive_care_lot: float = 1.0
    """A uniform drawn once: the patient is given no anti-tumour treatment (too frail, or
    declining it) where it falls below the registries' share of such patients for the stage
    found (:meth:`given_supportive_care`); 1 (never) for a type without such shares."""

    def responds(self, therapy: str) -> bool:
        return self.responder.get(therapy, False)

    def given_supportive_care(self, share: float) -> bool:
        """Whether this patient is among the ``share`` given supportive care only."""
        return self.supportive_care_lot < share

    def surviving_fraction(self, name: str, therapy: ChemotherapyTherapy) -> float:
        """The share of this patient's sensitive cells that survive a cycle of ``therapy``."""
        return self.chemo_surviving_fraction.get(name, therapy.surviving_fraction.value)


def _draw_chemosensitivity(
    treatments: TreatmentKnowledge, rng: np.random.Generator
) -> dict[str, float]:
    """Each chemotherapy's surviving fraction for this patient, where it has a spread.

    Nothing is drawn unless some chemotherapy has a positive ``log_kill_sd``; then one
    standard normal per chemotherapy, in name order, spread or not, so that giving one drug
    a spread does not change another's draw.  Independent between drugs: cross-resistance
    between regimens is not modelled.
    """
    chemo = {
        name: therapy
        for name, therapy in sorted(treatments.therapies.items())
        if isinstance(therapy, ChemotherapyTherapy)
    }
    if not any(therapy.spread() > 0.0 for therapy in chemo.values()):
        return {}
    stream = side_stream(rng, SENSITIVITY_STREAM)
    fractions: dict[str, float] = {}
    for name, therapy in chemo.items():
        z = float(stream.standard_normal())
        sd = therapy.spread()
        if sd > 0.0:
            fractions[name] = min(1.0, therapy.surviving_fraction.value * 10.0 ** (sd * z))
    return fractions


def draw_traits(
    treatments: TreatmentKnowledge, cancer: str, rng: np.random.Generator
) -> PatientTraits:
    """Draw a patient's biomarkers, responder status, chemosensitivity and supportive-care
    lot for ``cancer``.

    Nothing is drawn from ``rng`` itself: each biomarker and each response to a targeted or
    immune therapy is one uniform keyed by its name
    (:func:`~metastasis.engine.seeds.keyed_uniform`), and the chemosensitivity and the
    supportive-care lot come from streams of their own
    (:func:`~metastasis.engine.seeds.side_stream`).  So the traits are the same in every arm,
    and adding a biomarker or a drug (hormone receptors and endocrine therapy for breast
    cancer) moves no draw of another cancer type's patients: before, one uniform per
    biomarker and therapy of the whole knowledge base was taken from the clinical stream in
    name order, and a new one shifted every later draw of every type.
    """
    markers = set()
    for name in sorted(treatments.biomarkers):
        prevalence = treatments.biomarkers[name].prevalence.get(cancer)
        if prevalence is not None and keyed_uniform(rng, MARKER_STREAM,
                                                    name_key(name)) < prevalence.value:
            markers.add(name)
    responder: dict[str, bool] = {}
    for name in sorted(treatments.therapies):
        therapy = treatments.therapies[name]
        if not isinstance(therapy, TargetedTherapy | ImmunotherapyTherapy):
            continue
        response = therapy.response.get(cancer)
        if response is not None:
            u = keyed_uniform(rng, RESPONSE_STREAM, name_key(name))
            responder[name] = bool(u < response.value)
    return PatientTraits(
        mutations=frozenset(markers),
        responder=responder,
        chemo_surviving_fraction=_draw_chemosensitivity(treatments, rng),
        supportive_care_lot=_draw_supportive_care_lot(treatments, cancer, rng),
    )


def _draw_supportive_care_lot(
    treatments: TreatmentKnowledge, cancer: str, rng: np.random.Generator
) -> float:
    """The patient's supportive-care lot (:attr:`PatientTraits.supportive_care_lot`).

    From a stream of its own (nothing drawn for a type without shares), so that adding or
    changing a cancer type's shares moves no other draw of the course, in any arm.
    """
    if cancer not in treatments.supportive_care:
        return 1.0
    return float(side_stream(rng, SUPPORTIVE_CARE_STREAM).random())


def default_protocol(treatments: TreatmentKnowledge, cancer: str, stage_group: str) -> Protocol:
    """The default (simplified, educational) plan for ``cancer`` at stage ``stage_group``."""
    plan = treatments.plans.get(cancer)
    if plan is None:
        raise ModelError("cancer", cancer, ", ".join(sorted(treatments.plans)))
    if stage_group not in plan:
        allowed = [s for s in STAGE_GROUPS if s in plan]
        raise ModelError("stage_group", stage_group, ", ".join(allowed))
    return treatments.protocols[plan[stage_group]]


# ---------------------------------------------------------------------------- events
@dataclass(frozen=True)
class TreatmentEvent:
    """One thing treatment did (or could not do), for the story and for analysis.

    ``lesions``: ids (in the frame of ``found_lesions``) of the lesions acted on;
    ``other_lesions``: lesions acted on that arose after treatment began (resistant clones,
    new metastases).  ``outcome`` is a short phrase: "resected", "responded", "no effect: no
    EGFR mutation", "local control", "pain relief", "partial response", ...
    """

    day: float
    modality: str
    therapy: str
    step: int
    description: str
    outcome: str
    lesions: tuple[int, ...] = ()
    other_lesions: int = 0


# ---------------------------------------------------------------------------- the process
def _count(n: int, noun: str) -> str:
    """``1 node lesion``, ``3 node lesions``: counts in the story read as English."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _measured_words(targets: int, before: float, after: float, new: int) -> str:
    """What the scan after a drug course measured, in words (RECIST 1.1 adds up the longest
    diameters of the tumours measurable when the course began)."""
    if not targets and not new:
        return "no tumour big enough to measure on a scan, before or after"
    parts = []
    if targets:
        which = "the tumour" if targets == 1 else f"the {targets} tumours"
        verb = "measures" if targets == 1 else "add up to"
        parts.append(f"{which} measured at the start {verb} {after:.3g} mm across, against "
                     f"{before:.3g} mm then")
    if new:
        parts.append(f"{_count(new, 'new tumour')} now big enough to measure")
    return "; ".join(parts) + " (RECIST 1.1)"


ALMOST_NONE = 1e-4
"""Below this share of cells a kill is told as almost none: a learner reads "7.5e-06 %" as
noise, and so it is, beside the doubling of the cells the drug does not reach."""

LIKE_MOST = (0.8, 1.25)
"""A patient whose cycle kills between these multiples of the median patient's share is told
to respond about as most patients do; outside them, less or more (a wording setting)."""


def share_words(share: float) -> str:
    """A share of cells as a learner reads it: ``14 %``, ``2.5 %``, ``99.99 %`` (never a
    rounded 100 % that is not all), ``almost none`` below :data:`ALMOST_NONE`."""
    if share <= 0.0:
        return "none"
    if share >= 1.0:
        return "all"
    if share < ALMOST_NONE:
        return "almost none"
    percent = share * 100.0
    if percent >= 99.0:
        digits = f"{percent:.6g}"
        return f"{digits} %" if float(digits) < 100.0 else "almost all"
    if percent >= 10.0:
        return f"{percent:.0f} %"
    if percent >= 1.0:
        return f"{percent:.1f} %"
    return f"{percent:.2g} %"


def response_words(killed: float, typical: float) -> str:
    """How one patient's kill per cycle compares with the median patient's, in words."""
    low, high = LIKE_MOST
    if typical <= 0.0 or low * typical <= killed <= high * typical:
        return f"about as much as most patients' ({share_words(typical)})"
    if killed < low * typical:
        return f"less than most patients' cancers ({share_words(typical)} is typical)"
    return f"more than most patients' cancers ({share_words(typical)} is typical)"


class _Lesions:
    """The process's lesions on one day, with the ids the engine and the story need.

    ``Change`` addresses the process's own lesion ids (``pid``: the table's ``lesion``
    column, read through the table, never from the engine's rows).  ``root``: the process id
    of the tumour a row belongs to (a resistant clone belongs to the lesion it arose in).
    """

    def __init__(self, process: DiseaseProcess, day: float) -> None:
        self.table: LesionTable = process.lesion_table(through=day)
        table = self.table
        self.pid = np.asarray(table.lesion, dtype=np.int64)
        self.present = table.valid_at(day) & (table.arrival <= day)
        self.size = table.size_at(day)
        self.dormant = self.present & (day < table.awakening)
        self.root = self._roots()

    def _roots(self) -> np.ndarray:
        """Each row's tumour: its lesion, or for a clone the lesion it arose in (followed
        up through clones of clones), as process ids."""
        table = self.table
        if not np.any(table.route == MUTATION_ROUTE):
            return self.pid.copy()
        # table ids number the lesions 0..k-1 in order of appearance: index arrays by them
        pid_of = np.empty(int(table.id.max()) + 1, dtype=np.int64)
        pid_of[table.id] = self.pid
        first = table.first_segments()
        up = np.arange(pid_of.size)
        is_clone = (table.route[first] == MUTATION_ROUTE) & (table.parent[first] >= 0)
        up[table.id[first][is_clone]] = table.parent[first][is_clone]
        while True:  # pointer jumping: each pass at least halves every clone chain
            jumped = up[up]
            if np.array_equal(jumped, up):
                break
            up = jumped
        return pid_of[up[table.id]]

    def rows(self, mask: np.ndarray | None = None) -> np.ndarray:
        chosen = self.present if mask is None else self.present & mask
        return np.flatnonzero(chosen)


@dataclass
class _Frame:
    """The ids of the frame table, matched to process lesions by the process's lesion id."""

    to_frame: dict[int, int]
    from_frame: dict[int, list[int]]

    @classmethod
    def match(cls, frame: LesionTable, now: _Lesions) -> _Frame:
        present = set(now.pid.tolist())
        to_frame: dict[int, int] = {}
        from_frame: dict[int, list[int]] = {}
        for lesion, pid in zip(frame.id.tolist(), frame.lesion.tolist(), strict=True):
            from_frame[lesion] = [pid] if pid in present else []
            if pid in present:
                to_frame[pid] = lesion
        return cls(to_frame, from_frame)

    def describe(self, pids: Iterable[int]) -> tuple[tuple[int, ...], int]:
        known, other = set(), 0
        for pid in dict.fromkeys(pids):
            if pid in self.to_frame:
                known.add(self.to_frame[pid])
            else:
                other += 1
        return tuple(sorted(known)), other


@dataclass(frozen=True)
class _Action:
    """One dated action.  ``reads_lesions`` False: it only tells (a drug that cannot act),
    so its day needs no look at the process, which is then left exactly as it was."""

    day: float
    rank: int
    step: int
    cycle: int
    run: Callable[[_Lesions | None, float], None] = field(compare=False)
    reads_lesions: bool = True
    engine: Callable[[float], bool] | None = field(default=None, compare=False)
    """The same action done by the engine without a lesion table, where it can be (a day
    with no other action): False when the history has ended by the day."""


@dataclass(frozen=True)
class _Drug:
    """One cycle of a drug course: the therapy, the surviving fraction of the sensitive
    cells, the words comparing the patient's kill with the median patient's, the resistant
    cells per sensitive cell drawn this cycle (None: no draw) and the drug's resistance
    bit; ``avascular_f``: the surviving fraction in a deposit without vessels of its own
    (NaN: the same as ``f``, and tolerant cells are drawn in every lesion)."""

    therapy: ChemotherapyTherapy | TargetedTherapy | ImmunotherapyTherapy
    f: float
    median: str
    mu: float | None
    bit: int
    avascular_f: float = math.nan


class _Course:
    """Book-keeping of one course: its measurable tumours when it began."""

    def __init__(self) -> None:
        self.baseline: dict[int, float] | None = None


class _Treatment:
    """Applies one protocol to one process; each method is one kind of action.

    Actions of one day read the same snapshot of the lesions and queue their changes; the
    queue goes to the process in one intervention at the end of the day.  ``removed`` and
    ``scale`` carry what earlier actions that day did, so that later ones neither treat a
    tumour already removed nor count cells already killed.
    """

    def __init__(
        self,
        process: DiseaseProcess,
        protocol: Protocol,
        start_day: float,
        found_lesions: set[int],
        found_in: LesionTable | None,
        traits: PatientTraits,
        treatments: TreatmentKnowledge,
        rng: np.random.Generator,
    ) -> None:
        self.process = process
        self.protocol = protocol
        self.start = start_day
        self.found_lesions = found_lesions
        self.found_in = found_in
        self.found: set[int] = set()
        self.frame = _Frame({}, {})
        self.framed = False
        self.traits = traits
        self.treatments = treatments
        self.rng = rng
        self.events: list[TreatmentEvent] = []
        self.operative = side_stream(rng, OPERATIVE_STREAM)
        self.death: float | None = None
        """The day of an operative death, once an operation has killed."""
        self.model = process.model
        self.queue: list[Changes] = []
        self.removed = np.zeros(0, dtype=bool)
        self.scale = np.ones(0)
        self.progressed_on: str | None = None
        """The drug course, if any, whose evaluation found progressive disease."""

    # -------------------------------------------------------------- helpers
    def _set_frame(self, lesions: _Lesions) -> None:
        """Match the frame's lesions to the process's, at the first look at the lesions.

        Not earlier: reading the process samples its future, so a protocol that never acts
        (a targeted drug without its mutation) must leave the process exactly as it was.
        """
        frame = self.found_in
        if frame is None:
            frame = self.process.lesion_table(through=self.start)  # sampled already
        self.frame = _Frame.match(frame, lesions)
        root_of = dict(zip(lesions.pid.tolist(), lesions.root.tolist(), strict=True))
        for lesion in self.found_lesions:  # a clone is found with its tumour
            self.found.update(root_of[pid] for pid in self.frame.from_frame.get(lesion, []))
        self.framed = True

    def _event(
        self,
        day: float,
        step_index: int,
        description: str,
        outcome: str,
        pids: Iterable[int] = (),
    ) -> None:
        step = self.protocol.steps[step_index]
        lesions, other = self.frame.describe(pids)
        self.events.append(
            TreatmentEvent(
                day=day,
                modality=step.modality.value,
                therapy=step.therapy,
                step=step_index,
                description=description,
                outcome=outcome,
                lesions=lesions,
                other_lesions=other,
            )
        )

    def _sites(self, names: Iterable[str]) -> list[int]:
        return [self.model.site_index(name) for name in names]

    def _queue(self, rows: np.ndarray, changes: Changes) -> None:
        """Queue ``changes`` to the lesions of the present ``rows``, and note what they do
        for the day's later actions: a lesion brought to no cell is removed, any other keeps
        a share of its cells."""
        self.queue.append(changes)
        fraction = changes.surviving_fraction
        gone = fraction <= 0.0
        self.removed[rows[gone]] = True
        np.multiply.at(self.scale, rows[~gone], fraction[~gone])

    def _alive(self, lesions: _Lesions) -> np.ndarray:
        """Rows present today and not removed by an earlier action today."""
        return lesions.present & ~self.removed

    def _sizes(self, lesions: _Lesions, rows: np.ndarray) -> np.ndarray:
        """Cells of the lesions of ``rows`` now, after what earlier actions today did."""
        return lesions.size[rows] * self.scale[rows]

    def _tumour_diameters(self, lesions: _Lesions) -> dict[int, float]:
        """Diameter of every tumour present (a lesion with its resistant clones), in mm, in
        order of the tumours' first rows."""
        rows = np.flatnonzero(self._alive(lesions))
        if rows.size == 0:
            return {}
        roots, first, inverse = np.unique(lesions.root[rows], return_index=True,
                                          return_inverse=True)
        cells = np.bincount(inverse, weights=self._sizes(lesions, rows), minlength=roots.size)
        order = np.argsort(first, kind="stable")
        diameters = diameter_mm(cells[order], self.model.cells_per_cm3)
        return dict(zip(roots[order].tolist(), diameters.tolist(), strict=True))

    def _measurable(self, lesions: _Lesions) -> dict[int, float]:
        """Tumours large enough to measure (RECIST target lesions) and their diameters."""
        limit = self.treatments.response_criteria.measurable_diameter_mm.value
        return {r: d for r, d in self._tumour_diameters(lesions).items() if d >= limit}

    # -------------------------------------------------------------- surgery
    def surgery(self, index: int, step: SurgeryStep, lesions: _Lesions, day: float) -> None:
        """Remove the primary (with its regional nodes) and found metastases if eligible.

        Lymph-node dissection takes every lesion in the therapy's node sites, found or not
        (the nodes go to pathology whole).  Metastases are removed only if every found
        distant metastasis lies in an eligible site and there are few enough of them.  A
        curative-only step is not done after a drug course that ended in progressive
        disease (see :class:`~metastasis.clinical.treatment_schema.SurgeryStep`).
        """
        # the schema ties a step's modality to its therapy's kind
        therapy = cast(SurgeryTherapy, self.treatments.therapies[step.therapy])
        site = lesions.table.site
        alive = self._alive(lesions)
        in_nodes = np.isin(site, self._sites(therapy.lymphadenectomy_sites))
        is_primary = lesions.root == PRIMARY
        found = np.isin(lesions.root, list(self.found))
        metastases = np.flatnonzero(alive & found & ~is_primary & ~in_nodes)
        met_roots = sorted(set(lesions.root[metastases].tolist()))
        eligible = set(self._sites(therapy.metastasectomy_sites))
        outside = sorted({self.model.site_names[s] for s in site[metastases] if s not in eligible})
        limit = therapy.max_metastases.n
        resectable = not outside and len(met_roots) <= limit
        reason = (
            f"metastases in {', '.join(outside)}"
            if outside
            else f"{len(met_roots)} metastases found (at most {limit})"
        )
        if step.curative_only and not resectable:
            self._event(
                day, index, f"{therapy.label}: not done", f"not resectable: {reason}", met_roots
            )
            return
        if step.curative_only and self.progressed_on is not None:
            self._event(day, index, f"{therapy.label}: not done",
                        f"not curable: the disease progressed on {self.progressed_on}", met_roots)
            return
        removed: list[int] = []
        if step.primary:
            rows = np.flatnonzero(alive & is_primary)
            label = self.model.site_labels[self.model.primary_site]
            description = f"{therapy.label} of the primary ({label})"
            if rows.size:
                removed += lesions.pid[rows].tolist()
                self._event(day, index, description, "resected", [PRIMARY])
            else:
                self._event(day, index, description, "not done: no primary left")
        if step.regional_nodes:
            rows = np.flatnonzero(alive & in_nodes)
            roots = lesions.root[rows].tolist()
            removed += lesions.pid[rows].tolist()
            self._event(
                day,
                index,
                f"lymph-node dissection: {_count(len(set(roots)), 'node lesion')} removed, "
                "found or not",
                "resected" if rows.size else "no cancer in the nodes",
                roots,
            )
        if step.metastasectomy:
            if not met_roots:
                outcome = "not done: no metastasis found"
            elif not resectable:
                outcome = f"not resectable: {reason}"
            else:
                rows = np.flatnonzero(alive & np.isin(lesions.root, met_roots))
                removed += lesions.pid[rows].tolist()
                outcome = "resected"
            description = f"{therapy.label} of metastases ({len(met_roots)} found)"
            self._event(day, index, description, outcome, met_roots)
        unique = np.array(list(dict.fromkeys(removed)), dtype=np.int64)
        rows = np.flatnonzero(self._alive(lesions))
        rows = rows[np.argsort(lesions.pid[rows], kind="stable")]
        removed_rows = rows[np.searchsorted(lesions.pid[rows], unique)]
        self._queue(removed_rows, Changes.build(unique, surviving_fraction=0.0))
        if unique.size:
            self._operative_risk(index, therapy, day)

    def _operative_risk(self, index: int, therapy: SurgeryTherapy, day: float) -> None:
        """Draw whether the operation of ``day`` kills the patient within 30 days (two
        draws of the operative stream when the cancer type has a mortality, none else)."""
        mortality = therapy.operative_mortality.get(self.model.cancer)
        if mortality is None or mortality.value <= 0.0 or self.death is not None:
            return
        dies = self.operative.random() < mortality.value
        after = OPERATIVE_WINDOW_DAYS * self.operative.random()
        if dies:
            self.death = day + after
            self._event(day, index, f"{therapy.label}{COMPLICATIONS}",
                        f"died {after:.0f} days after the operation")

    # -------------------------------------------------------------- courses
    def why_inactive(self, step: CourseStep) -> str | None:
        """Why a course cannot act on this patient (None if it can): known before it starts,
        from the patient's traits."""
        therapy = self.treatments.therapies[step.therapy]
        if isinstance(therapy, TargetedTherapy | ImmunotherapyTherapy):
            marker = therapy.biomarker
            if marker is not None and marker not in self.traits.mutations:
                label = self.treatments.biomarkers[marker].label
                return f"no effect: no {marker} ({label})"
            if not self.traits.responds(step.therapy):
                return "no effect: non-responder"
        return None

    def no_effect(self, index: int, step: CourseStep, why: str, _: None, day: float) -> None:
        self._event(day, index, self.treatments.therapies[step.therapy].label, why)

    def _drug(self, step: CourseStep, k: int) -> _Drug:
        """What cycle ``k`` of a drug course does (see :meth:`cycle`)."""
        therapy = cast(ChemotherapyTherapy | TargetedTherapy | ImmunotherapyTherapy,
                       self.treatments.therapies[step.therapy])  # a drug, by the schema
        f = therapy.surviving_fraction.value
        median = ""
        if isinstance(therapy, ChemotherapyTherapy):
            f = self.traits.surviving_fraction(step.therapy, therapy)
            if step.therapy in self.traits.chemo_surviving_fraction:
                median = "; this cancer responds " + response_words(
                    1.0 - f, 1.0 - therapy.surviving_fraction.value)
        avascular_f = math.nan
        ratio = getattr(therapy, "avascular_log_kill_ratio", None)  # chemotherapy only
        if ratio is not None:
            avascular_f = f ** ratio.value
        mu = getattr(therapy, "resistance_per_cell", None)
        draws = mu is not None and (isinstance(therapy, TargetedTherapy) or k == 0)
        return _Drug(therapy, f, median, mu.value if draws and mu is not None else None,
                     self.treatments.resistance_bit(step.therapy), avascular_f)

    def engine_cycle(self, drug: _Drug, k: int) -> bool:
        """Whether cycle ``k`` of ``drug`` can be left to the engine
        (:meth:`cycle_in_engine`): a later cycle that draws nothing and needs no
        measurement, on a compiled process (a reference process keeps the readable path)."""
        return k > 0 and drug.mu is None and not self.process.reference

    def cycle(
        self, index: int, step: CourseStep, course: _Course, k: int, lesions: _Lesions, day: float
    ) -> None:
        """One cycle (or interval) of a drug course: kill every dividing lesion present.

        Dormant cells do not divide and are spared (the engine does the same); lesions that
        already carry this drug's resistance bit are spared; at the first cycle of
        chemotherapy and at every interval of targeted therapy, a lesion of N sensitive cells
        gains Poisson(mu N) resistant cells as a clone, and its sensitive cells are N minus
        those.  Chemotherapy kills with the patient's own surviving fraction (the same in
        every cycle: drawn once, with the traits).  This is the readable path, over a lesion
        table; :meth:`cycle_in_engine` does the cycles that draw nothing without one.
        """
        drug = self._drug(step, k)
        if k == 0:
            course.baseline = self._measurable(lesions)
        bit = drug.bit
        alive = np.flatnonzero(self._alive(lesions))
        asleep = lesions.dormant[alive]
        dormant = int(asleep.sum())
        awake = alive[~asleep]
        carries_bit = (lesions.table.resistance[awake] & bit) != 0 if bit else \
            np.zeros(awake.size, dtype=bool)
        spared = lesions.root[awake[carries_bit]].tolist()
        rows = awake[~carries_bit]
        treated = lesions.root[rows].tolist()
        size = self._sizes(lesions, rows)
        # one Poisson draw per treated lesion, in row order: numpy draws an array of means
        # element by element, so the stream is the same as one call per lesion
        resistant = np.zeros(rows.size)
        if drug.mu is not None:
            mean = drug.mu * size
            if not math.isnan(drug.avascular_f):
                # tolerant cells sit in tumours with vessels: none in a colony or a
                # micrometastasis (a mean of 0 draws nothing from the stream)
                mean = np.where(lesions.table.growth_start[rows] <= day, mean, 0.0)
            resistant = np.minimum(self.rng.poisson(mean), np.floor(size))
        carriers = lesions.root[rows[resistant > 0]].tolist()
        self._queue(rows, Changes.build(
            lesions.pid[rows],
            # exactly f where no resistant cells were drawn (f * size / size may round)
            surviving_fraction=np.where(resistant > 0, drug.f * (size - resistant) / size,
                                        drug.f),
            spare_resistance=bit,
            clone_cells=resistant.astype(float),
            clone_resistance=np.where(resistant > 0, bit, 0),
            avascular_fraction=drug.avascular_f,
        ))
        self._cycle_event(index, step, k, drug, day, treated, spared, dormant, carriers)

    def cycle_in_engine(self, index: int, step: CourseStep, k: int, drug: _Drug,
                        day: float) -> bool:
        """:meth:`cycle` for a cycle that draws nothing, done by the engine
        (:meth:`~metastasis.engine.process.DiseaseProcess.kill_dividing`) without a lesion
        table: the same changes, the same story.  False, with nothing done, when the history
        has ended by ``day``."""
        kill = self.process.kill_dividing(day, drug.f, drug.bit, drug.avascular_f)
        if kill is None:
            return False
        self._cycle_event(index, step, k, drug, day, kill.treated_tumours.tolist(),
                          kill.spared_tumours.tolist(), kill.dormant, [])
        return True

    def _cycle_event(self, index: int, step: CourseStep, k: int, drug: _Drug, day: float,
                     treated: list[int], spared: list[int], dormant: int,
                     carriers: list[int]) -> None:
        """Tell one cycle: ``treated`` and ``spared`` hold the tumour of each row reached or
        spared, ``carriers`` the tumours that gained resistant cells."""
        therapy = drug.therapy
        killed = share_words(1.0 - drug.f)
        lesions = _count(len(treated), "lesion")
        if isinstance(therapy, ImmunotherapyTherapy):
            what = f"the immune response kills {killed} of the cancer cells in {lesions}"
        else:
            what = (f"kills {killed} of the dividing cancer cells that do not resist it, "
                    f"in {lesions}")
            if not math.isnan(drug.avascular_f):
                what += (f" ({share_words(1.0 - drug.avascular_f)} in deposits too small to "
                         "have blood vessels of their own, which the drug reaches better)")
        notes = []
        if spared:
            notes.append(f"{_count(len(spared), 'resistant clone')} untouched (they resist it)")
        if dormant:
            notes.append(f"{_count(dormant, 'dormant cell')} spared (a cell that does not "
                         "divide is not killed)")
        doses = step.cycles.n
        when = (f"cycle {k + 1} of {doses}" if k < doses else
                f"immune memory, interval {k + 1 - doses} of {self._memory_intervals(step)} "
                "after the last dose")
        description = (
            f"{therapy.label}, {when}: {what}{drug.median}"
            + "".join(f"; {note}" for note in notes)
        )
        draws_resistance = drug.mu is not None
        if k >= doses:
            outcome = IMMUNE_MEMORY
        elif draws_resistance and carriers:
            outcome = f"resistant cells in {len(set(carriers))} lesions"
        elif k == 0 and isinstance(therapy, TargetedTherapy | ImmunotherapyTherapy):
            outcome = "responded"
        elif draws_resistance and isinstance(therapy, ChemotherapyTherapy):
            outcome = "no resistant cells"
        else:
            outcome = "given"
        self._event(day, index, description, outcome, treated + spared)

    def evaluate(
        self, index: int, step: CourseStep, course: _Course, lesions: _Lesions, day: float
    ) -> None:
        """Name the course's effect on the true tumours with RECIST 1.1's thresholds.

        Target lesions are the tumours measurable when the course began; a tumour that has
        become measurable since is a new lesion, which is progression whatever the targets
        did.
        """
        if course.baseline is None:
            return
        criteria = self.treatments.response_criteria
        now = self._tumour_diameters(lesions)
        targets = course.baseline
        new = sorted(set(self._measurable(lesions)) - set(targets))
        before = sum(targets.values())
        after = sum(now.get(r, 0.0) for r in targets)
        if new:
            outcome = "progressive disease: new lesion"
        elif not targets:
            outcome = "no measurable disease"
        elif after == 0.0:
            outcome = "complete response"
        elif after <= (1.0 - criteria.partial_response_shrinkage.value) * before:
            outcome = "partial response"
        elif after >= (1.0 + criteria.progression_growth.value) * before:
            outcome = "progressive disease"
        else:
            outcome = "stable disease"
        therapy = self.treatments.therapies[step.therapy]
        if outcome.startswith("progressive disease") and self.progressed_on is None:
            self.progressed_on = therapy.label
        self._event(
            day,
            index,
            f"after {therapy.label}: " + _measured_words(len(targets), before, after,
                                                          len(new)),
            outcome,
            [*targets, *new],
        )

    # -------------------------------------------------------------- radiation
    def radiation(self, index: int, step: RadiationStep, lesions: _Lesions, day: float) -> None:
        """Treat the largest found tumours in the step's sites; draw control and relief."""
        therapy = cast(RadiationTherapy, self.treatments.therapies[step.therapy])
        found = np.isin(lesions.root, list(self.found))
        in_sites = np.isin(lesions.table.site, self._sites(step.sites))
        rows = np.flatnonzero(self._alive(lesions) & found & in_sites)
        course = (
            f"{therapy.label}, {step.dose_gy.value:g} Gy in {_count(step.fractions.n, 'fraction')}"
        )
        if rows.size == 0:
            where = " or ".join(step.sites)
            self._event(day, index, course, f"not needed: no lesion found in {where}")
            return
        cells: dict[int, float] = {}
        for root, size in zip(lesions.root[rows].tolist(), self._sizes(lesions, rows).tolist(),
                              strict=True):
            cells[root] = cells.get(root, 0.0) + size
        targets = sorted(cells, key=lambda r: (-cells[r], r))[: therapy.max_lesions.n]
        for root in targets:
            controlled = self.rng.random() < therapy.local_control.value
            fraction = (
                therapy.controlled_surviving_fraction.value
                if controlled
                else therapy.uncontrolled_surviving_fraction.value
            )
            tumour = rows[lesions.root[rows] == root]
            self._queue(tumour,
                        Changes.build(lesions.pid[tumour], surviving_fraction=fraction))
            site = self.model.site_labels[int(lesions.table.site[tumour[0]])]
            outcome = "local control" if controlled else "no local control"
            self._event(day, index, f"{course}: {site} lesion", outcome, [root])
        if therapy.pain_relief is not None:
            relieved = self.rng.random() < therapy.pain_relief.value
            outcome = "pain relief" if relieved else "no pain relief"
            self._event(day, index, course, outcome, targets)

    # -------------------------------------------------------------- schedule
    def actions(self) -> list[_Action]:
        actions: list[_Action] = []
        for index, step in enumerate(self.protocol.steps):
            first = self.start + step.start_day.value
            if isinstance(step, SurgeryStep | RadiationStep):
                method = self.surgery if isinstance(step, SurgeryStep) else self.radiation
                actions.append(_Action(first, LOCAL, index, 0, _bind(method, index, step)))
                continue
            why = self.why_inactive(step)
            if why is not None:
                run = _bind(self.no_effect, index, step, why)
                actions.append(_Action(first, SYSTEMIC, index, 0, run, reads_lesions=False))
                continue
            course = _Course()
            for k, day in enumerate(self._course_days(step)):
                run = _bind(self.cycle, index, step, course, k)
                drug = self._drug(step, k)
                engine = (functools.partial(self.cycle_in_engine, index, step, k, drug)
                          if self.engine_cycle(drug, k) else None)
                actions.append(_Action(day, SYSTEMIC, index, k, run, engine=engine))
            end = self.start + step.end_offset()
            run = _bind(self.evaluate, index, step, course)
            actions.append(_Action(end, EVALUATION, index, step.cycles.n, run))
        return sorted(actions, key=lambda a: (a.day, a.rank, a.step, a.cycle))

    def _memory_intervals(self, step: CourseStep) -> int:
        """Intervals of immune memory after a course's last dose: for an immunotherapy with
        ``memory_years`` (whoever reaches this responds; see :meth:`why_inactive`), as many
        of the course's intervals as fit in the memory; none for every other course."""
        therapy = self.treatments.therapies[step.therapy]
        if not isinstance(therapy, ImmunotherapyTherapy) or therapy.memory_years is None \
                or step.cycles.n == 0:
            return 0
        return int(therapy.memory_years.value * DAYS_PER_YEAR // step.interval_days.value)

    def _course_days(self, step: CourseStep) -> list[float]:
        """The days a course acts: its doses, then its intervals of immune memory."""
        days = step.cycle_days(self.start)
        interval = step.interval_days.value
        return days + [days[-1] + j * interval
                       for j in range(1, self._memory_intervals(step) + 1)]

    def run(self) -> list[TreatmentEvent]:
        for day, group in groupby(self.actions(), key=lambda a: a.day):
            todo = list(group)
            engine = todo[0].engine if len(todo) == 1 and self.framed else None
            if engine is not None:
                if not engine(day):  # samples the future through this day
                    self._stopped(todo)
                    break
                self._operative_death()
                continue
            reads = any(action.reads_lesions for action in todo)
            # reading the lesions samples the future through this day
            lesions = _Lesions(self.process, day) if reads else None
            if lesions is not None and not self.framed:
                self._set_frame(lesions)
            if day >= self.process.known_end:
                self._stopped(todo)
                break
            rows = len(lesions.pid) if lesions is not None else 0
            self.queue, self.removed, self.scale = [], np.zeros(rows, dtype=bool), np.ones(rows)
            for action in todo:
                action.run(lesions, day)  # None only for actions that do not read it
            changes = Changes.concat(self.queue)
            if len(changes):
                self.process.intervene(day, changes)
            self._operative_death()
        return self.events

    def _stopped(self, todo: list[_Action]) -> None:
        """Tell that the day's actions were not given: the history ended before."""
        first = next((a for a in todo if a.rank != EVALUATION), todo[0])
        end = self.process.end
        self._event(
            end,
            first.step,
            f"treatment stopped: the natural history ended on day {end:.0f} "
            f"({self.process.end_reason})",
            "not given",
        )

    def _operative_death(self) -> None:
        """End the history at an operation's death, once the days before it are done."""
        if self.death is not None and self.death < self.process.known_end:
            self.process.stop_at(self.death, POSTOPERATIVE_DEATH)


def _bind(method: Callable[..., None], *args: object) -> Callable[[_Lesions | None, float], None]:
    return lambda lesions, day: method(*args, lesions, day)


def check_protocol_sites(
    protocol: Protocol, treatments: TreatmentKnowledge, site_names: Collection[str],
    field: str = "protocol",
) -> None:
    """Every site a step or its therapy names must exist in the patient's anatomy.

    Checked before the first intervention, so that bad input never leaves a process half
    treated (and by the command line before any patient is simulated).
    """
    for index, step in enumerate(protocol.steps):
        therapy = treatments.therapies[step.therapy]
        named = {f"{field}.steps.{index}.sites": getattr(step, "sites", [])}
        for key in ("metastasectomy_sites", "lymphadenectomy_sites"):
            named[f"therapies.{step.therapy}.{key}"] = getattr(therapy, key, [])
        for field_name, sites in named.items():
            for site in sites:
                if site not in site_names:
                    raise ModelError(field_name, site, ", ".join(site_names))


def apply_protocol(
    process: DiseaseProcess,
    protocol: Protocol,
    start_day: float,
    found_lesions: Collection[int],
    traits: PatientTraits,
    treatments: TreatmentKnowledge,
    rng: np.random.Generator,
    found_in: LesionTable | None = None,
) -> list[TreatmentEvent]:
    """Apply ``protocol`` from ``start_day`` to ``process``; return what happened, in order.

    ``found_lesions``: ids of the lesions the clinic has found, in ``found_in`` (the table
    they were found in) or else in ``process.lesion_table(through=start_day)``.  Reading a
    process samples its future, which changes the realisation drawn; pass ``found_in`` and
    this function reads the process only on days when treatment acts.  Surgery
    removes found metastases, radiotherapy treats found lesions; drugs reach every lesion.
    Steps stop once the natural history has ended; bad input is refused before anything is
    done to the process.
    """
    check_protocol(treatments, protocol, cancer=process.model.cancer)
    if not (isinstance(start_day, int | float) and math.isfinite(start_day) and start_day >= 0):
        raise ModelError("start_day", start_day, "a finite day >= 0")
    if process.interventions and start_day < process.interventions[-1]:
        raise ModelError(
            "start_day",
            start_day,
            f"a day on or after the last intervention ({process.interventions[-1]:g})",
        )
    check_protocol_sites(protocol, treatments, process.model.site_names)
    if found_in is None and found_lesions:
        found_in = process.lesion_table(through=float(start_day))  # the clinic's look
    known = set(found_in.id.tolist()) if found_in is not None else set()
    for lesion in found_lesions:
        if lesion not in known:
            raise ModelError("found_lesions", lesion, "ids of lesions in the frame table")
    treatment = _Treatment(
        process, protocol, float(start_day), set(found_lesions), found_in, traits, treatments, rng
    )
    return treatment.run()


def given_before(events: list[TreatmentEvent], death_day: float | None) -> list[TreatmentEvent]:
    """The treatment events, less an operative death of an operation planned after the
    patient's death from another cause: the course decides that death once the treatment is
    laid out, and the other steps planned after it stay in the story as never given; a
    complication of an operation never done has nothing to tell."""
    if death_day is None:
        return list(events)
    return [e for e in events
            if not (e.modality == "surgery" and e.description.endswith(COMPLICATIONS)
                    and e.day > death_day)]
