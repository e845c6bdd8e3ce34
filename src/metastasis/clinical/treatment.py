"""Treatment: protocols from data turned into exact interventions on the disease process.

Treatment is the clinical layer's only way back into the hidden disease process
(docs/clinical.md).  A protocol's steps are expanded into dated actions (each cycle of a
course, each operation, each radiotherapy course, each end-of-course evaluation), merged in
time order and applied one by one through :meth:`DiseaseProcess.intervene`, which cuts the
sampled future, changes the lesions and resamples the future exactly.  Every action leaves
a :class:`TreatmentEvent` saying what was done, to which lesions, and what came of it, so
the story can tell why a drug did nothing ("no EGFR mutation") as well as when it worked.

Randomness: what the clinic draws (biomarkers, responder status, resistant cells, local
control, pain relief) comes from the generator passed in, the patient's clinical
generator, never from the disease's.  Biomarkers and responder status are drawn once per
patient (:func:`draw_traits`), with a fixed number of draws, so two arms with different
protocols share the patient's traits: common random numbers.

Lesion ids: ``found_lesions`` and the ids in every event are those of the lesion table the
process gave when :func:`apply_protocol` was called (the frame in which lesions were
found).  Lesions that arose later (resistant clones, new metastases) have no id in that
frame and are counted in ``TreatmentEvent.other_lesions``.

Educational and research software: not medical advice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

import numpy as np

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
from metastasis.engine.process import MUTATION_ROUTE, PRIMARY, Change, DiseaseProcess
from metastasis.errors import ModelError
from metastasis.results.patient import LesionTable

__all__ = [
    "PatientTraits",
    "TreatmentEvent",
    "apply_protocol",
    "default_protocol",
    "draw_traits",
    "lesion_diameter_mm",
    "load_treatments",
]

MM_PER_CM = 10.0
EVALUATION = 0
"""Sort rank of an end-of-course evaluation: it is measured before any action that day."""
ACTION = 1


# ---------------------------------------------------------------------------- patient traits
@dataclass(frozen=True)
class PatientTraits:
    """What a patient's tumour carries and how it answers drugs, drawn once per patient.

    ``mutations``: the biomarkers the tumour carries (actionable mutations such as EGFR, and
    expression markers such as PD-L1 >= 50 %).  ``responder``: for each targeted therapy and
    immunotherapy indicated for the cancer, whether this patient responds when the drug can
    act at all (a targeted drug still needs its biomarker).
    """

    mutations: frozenset[str] = frozenset()
    responder: dict[str, bool] = field(default_factory=dict, hash=False)

    def responds(self, therapy: str) -> bool:
        return self.responder.get(therapy, False)


def draw_traits(
    treatments: TreatmentKnowledge, cancer: str, rng: np.random.Generator
) -> PatientTraits:
    """Draw a patient's biomarkers and responder status for ``cancer``.

    One uniform per biomarker and one per targeted or immune therapy, in name order, whether
    or not the cancer has a figure for it: the number of draws does not depend on the
    cancer or the outcome, so the clinical stream stays aligned across arms.
    """
    markers = set()
    for name in sorted(treatments.biomarkers):
        u = rng.random()
        prevalence = treatments.biomarkers[name].prevalence.get(cancer)
        if prevalence is not None and u < prevalence.value:
            markers.add(name)
    responder: dict[str, bool] = {}
    for name in sorted(treatments.therapies):
        therapy = treatments.therapies[name]
        if not isinstance(therapy, TargetedTherapy | ImmunotherapyTherapy):
            continue
        u = rng.random()
        response = therapy.response.get(cancer)
        if response is not None:
            responder[name] = bool(u < response.value)
    return PatientTraits(mutations=frozenset(markers), responder=responder)


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


def lesion_diameter_mm(cells: np.ndarray | float, cells_per_cm3: float) -> np.ndarray:
    """Diameter of a spherical lesion, d = (6 V / pi)^(1/3), V = cells / cells_per_cm3."""
    volume = np.asarray(cells, dtype=float) / cells_per_cm3
    return MM_PER_CM * np.cbrt(6.0 * volume / math.pi)


# ---------------------------------------------------------------------------- the process
class _Lesions:
    """The process's lesions on one day, with the ids the engine and the story need.

    ``LesionTable`` renumbers lesions in order of appearance, while ``Change`` addresses the
    engine's own lesion ids; the rows of ``process.lesion_table()`` are the process's rows
    founded before the end, so the two line up row by row.
    """

    def __init__(self, process: DiseaseProcess, day: float) -> None:
        self.table: LesionTable = process.lesion_table()
        rows = process.rows.view()
        keep = rows.arrival < process.end
        keep[PRIMARY] = True
        self.pid = np.asarray(rows.lesion[keep], dtype=np.int64)
        if self.pid.size != len(self.table):
            raise RuntimeError("lesion table and process rows do not line up")
        table = self.table
        self.present = table.valid_at(day) & (table.arrival <= day)
        self.size = table.size_at(day)
        self.dormant = self.present & (day < table.awakening)
        self.root = self._roots()

    def _roots(self) -> np.ndarray:
        """Process id of the tumour each row belongs to: a clone belongs to its parent's."""
        table = self.table
        first = table.first_segments()
        route = dict(zip(table.id[first].tolist(), table.route[first].tolist(), strict=True))
        parent = dict(zip(table.id[first].tolist(), table.parent[first].tolist(), strict=True))
        pid_of = dict(zip(table.id.tolist(), self.pid.tolist(), strict=False))
        roots = np.empty(len(table), dtype=np.int64)
        for row, lesion in enumerate(table.id.tolist()):
            while route[lesion] == MUTATION_ROUTE and parent[lesion] >= 0:
                lesion = parent[lesion]
            roots[row] = pid_of[lesion]
        return roots

    def rows(self, mask: np.ndarray | None = None) -> np.ndarray:
        chosen = self.present if mask is None else self.present & mask
        return np.flatnonzero(chosen)


@dataclass
class _Frame:
    """The lesion ids of the moment treatment began, in which lesions were found."""

    to_frame: dict[int, int]

    def describe(self, pids: Iterable[int]) -> tuple[tuple[int, ...], int]:
        known, other = [], 0
        for pid in dict.fromkeys(pids):
            if pid in self.to_frame:
                known.append(self.to_frame[pid])
            else:
                other += 1
        return tuple(sorted(known)), other


@dataclass(frozen=True)
class _Action:
    day: float
    rank: int
    step: int
    cycle: int
    run: Callable[[], None] = field(compare=False)


class _Course:
    """Book-keeping of one course: its baseline burden and whether it acts at all."""

    def __init__(self) -> None:
        self.baseline: dict[int, float] | None = None
        self.active = True


class _Treatment:
    """Applies one protocol to one process; each method is one kind of action."""

    def __init__(
        self,
        process: DiseaseProcess,
        protocol: Protocol,
        start_day: float,
        found: set[int],
        frame: _Frame,
        traits: PatientTraits,
        treatments: TreatmentKnowledge,
        rng: np.random.Generator,
    ) -> None:
        self.process = process
        self.protocol = protocol
        self.start = start_day
        self.found = found
        self.frame = frame
        self.traits = traits
        self.treatments = treatments
        self.rng = rng
        self.events: list[TreatmentEvent] = []
        self.model = process.model

    # -------------------------------------------------------------- helpers
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

    def _site_names(self, names: Iterable[str], field_name: str) -> set[int]:
        sites = set()
        for name in names:
            if name not in self.model.site_names:
                raise ModelError(field_name, name, ", ".join(self.model.site_names))
            sites.add(self.model.site_index(name))
        return sites

    def _intervene(self, day: float, changes: list[Change]) -> None:
        if changes:
            self.process.intervene(day, changes)

    # -------------------------------------------------------------- surgery
    def surgery(self, index: int, step: SurgeryStep, day: float) -> None:
        therapy: SurgeryTherapy = self.treatments.therapies[step.therapy]
        lesions = _Lesions(self.process, day)
        site = lesions.table.site
        node_sites = self._site_names(
            therapy.lymphadenectomy_sites, f"therapies.{step.therapy}.lymphadenectomy_sites"
        )
        eligible_sites = self._site_names(
            therapy.metastasectomy_sites, f"therapies.{step.therapy}.metastasectomy_sites"
        )
        in_nodes = np.isin(site, list(node_sites))
        is_primary = lesions.root == PRIMARY
        found = np.isin(lesions.root, list(self.found))
        metastases = lesions.rows(found & ~is_primary & ~in_nodes)
        met_roots = sorted(set(lesions.root[metastases].tolist()))
        outside = sorted(
            {self.model.site_names[s] for s in site[metastases] if s not in eligible_sites}
        )
        resectable = (not outside) and len(met_roots) <= therapy.max_metastases.n
        if step.curative_only and not resectable:
            reason = (
                f"metastases in {', '.join(outside)}"
                if outside
                else f"{len(met_roots)} metastases found (at most {therapy.max_metastases.n})"
            )
            self._event(
                day, index, f"{therapy.label}: not done", f"not resectable: {reason}", met_roots
            )
            return
        removed: list[int] = []
        if step.primary:
            primary_site = self.model.primary_site
            rows = lesions.rows(is_primary)
            if rows.size:
                removed += lesions.pid[rows].tolist()
                self._event(
                    day,
                    index,
                    f"{therapy.label} of the primary ({self.model.site_labels[primary_site]})",
                    "resected",
                    [PRIMARY],
                )
            else:
                self._event(day, index, f"{therapy.label} of the primary", "not done: no primary")
        if step.regional_nodes:
            rows = lesions.rows(in_nodes)
            removed += lesions.pid[rows].tolist()
            self._event(
                day,
                index,
                f"lymph-node dissection: {len(set(lesions.root[rows].tolist()))} node lesions "
                "removed, found or not",
                "resected" if rows.size else "no cancer in the nodes",
                lesions.root[rows].tolist(),
            )
        if step.metastasectomy:
            if not met_roots:
                outcome = "not done: no metastasis found"
            elif not resectable:
                reason = (
                    f"metastases in {', '.join(outside)}"
                    if outside
                    else f"{len(met_roots)} metastases (at most {therapy.max_metastases.n})"
                )
                outcome = f"not resectable: {reason}"
            else:
                removed += lesions.pid[lesions.rows(np.isin(lesions.root, met_roots))].tolist()
                outcome = "resected"
            self._event(
                day,
                index,
                f"{therapy.label} of metastases ({len(met_roots)} found)",
                outcome,
                met_roots,
            )
        self._intervene(
            day, [Change(pid, surviving_fraction=0.0) for pid in dict.fromkeys(removed)]
        )

    # -------------------------------------------------------------- courses
    def course_gate(self, index: int, step: CourseStep, course: _Course, day: float) -> bool:
        """Decide once, before the first cycle, whether the course can act; say why not."""
        therapy = self.treatments.therapies[step.therapy]
        if isinstance(therapy, TargetedTherapy | ImmunotherapyTherapy):
            marker = therapy.biomarker
            if marker is not None and marker not in self.traits.mutations:
                label = self.treatments.biomarkers[marker].label
                course.active = False
                self._event(day, index, f"{therapy.label}", f"no effect: no {marker} ({label})")
                return False
            if not self.traits.responds(step.therapy):
                course.active = False
                self._event(day, index, f"{therapy.label}", "no effect: non-responder")
                return False
        return True

    def cycle(self, index: int, step: CourseStep, course: _Course, k: int, day: float) -> None:
        """One cycle (or interval) of a drug course: kill every dividing lesion present.

        Dormant cells do not divide and are spared (the engine does the same); lesions that
        already carry this drug's resistance bit are spared; at the first cycle of
        chemotherapy and at every interval of targeted therapy, a lesion of N sensitive cells
        gains Poisson(mu N) resistant cells as a clone, and its sensitive cells are N minus
        those.
        """
        if k == 0 and not self.course_gate(index, step, course, day):
            return
        if not course.active:
            return
        therapy = self.treatments.therapies[step.therapy]
        lesions = _Lesions(self.process, day)
        if k == 0:
            course.baseline = self._measurable(lesions)
        bit = self.treatments.resistance_bit(step.therapy)
        f = therapy.surviving_fraction.value
        mu = getattr(therapy, "resistance_per_cell", None)
        draws_resistance = mu is not None and (isinstance(therapy, TargetedTherapy) or k == 0)
        changes, treated, spared, carriers = [], [], [], []
        dormant = 0
        for row in lesions.rows():
            root = int(lesions.root[row])
            if lesions.dormant[row]:
                dormant += 1
                continue
            if bit and int(lesions.table.resistance[row]) & bit:
                spared.append(root)
                continue
            treated.append(root)
            size = float(lesions.size[row])
            resistant = 0
            if draws_resistance:
                resistant = min(int(self.rng.poisson(mu.value * size)), math.floor(size))
            if resistant:
                carriers.append(root)
            changes.append(
                Change(
                    int(lesions.pid[row]),
                    surviving_fraction=f * (size - resistant) / size,
                    spare_resistance=bit,
                    clone_cells=float(resistant),
                    clone_resistance=bit if resistant else 0,
                )
            )
        self._intervene(day, changes)
        killed = f"{(1.0 - f) * 100:.4g} %"
        what = (
            "of cells killed by the immune response"
            if isinstance(therapy, ImmunotherapyTherapy)
            else "of sensitive cells killed"
        )
        notes = []
        if spared:
            notes.append(f"{len(spared)} resistant clones spared")
        if dormant:
            notes.append(f"{dormant} dormant cells spared (they do not divide)")
        description = (
            f"{therapy.label}, cycle {k + 1} of {step.cycles.n}: {killed} {what} in "
            f"{len(treated)} lesions" + "".join(f"; {note}" for note in notes)
        )
        if draws_resistance and carriers:
            outcome = f"resistant cells in {len(set(carriers))} lesions"
        elif k == 0 and isinstance(therapy, TargetedTherapy | ImmunotherapyTherapy):
            outcome = "responded"
        elif draws_resistance and isinstance(therapy, ChemotherapyTherapy):
            outcome = "no resistant cells"
        else:
            outcome = "given"
        self._event(day, index, description, outcome, treated + spared)

    def _tumour_diameters(self, lesions: _Lesions) -> dict[int, float]:
        """Diameter of every tumour present (a lesion with its resistant clones), in mm."""
        cells: dict[int, float] = {}
        for row in lesions.rows():
            root = int(lesions.root[row])
            cells[root] = cells.get(root, 0.0) + float(lesions.size[row])
        roots = list(cells)
        diameters = lesion_diameter_mm(
            np.array([cells[r] for r in roots]), self.model.cells_per_cm3
        )
        return dict(zip(roots, diameters.tolist(), strict=True))

    def _measurable(self, lesions: _Lesions) -> dict[int, float]:
        """Tumours large enough to measure (RECIST target lesions) and their diameters."""
        limit = self.treatments.response_criteria.measurable_diameter_mm.value
        return {r: d for r, d in self._tumour_diameters(lesions).items() if d >= limit}

    def evaluate(self, index: int, step: CourseStep, course: _Course, day: float) -> None:
        """Name the course's effect on the true tumours with RECIST 1.1's thresholds.

        Target lesions are the tumours measurable when the course began; a tumour that has
        become measurable since is a new lesion, which is progression whatever the targets
        did.
        """
        if not course.active or course.baseline is None:
            return
        criteria = self.treatments.response_criteria
        lesions = _Lesions(self.process, day)
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
        self._event(
            day,
            index,
            f"after {therapy.label}: sum of diameters of {len(targets)} measurable lesions "
            f"{before:.3g} mm -> {after:.3g} mm; {len(new)} new measurable lesions",
            outcome,
            [*targets, *new],
        )

    # -------------------------------------------------------------- radiation
    def radiation(self, index: int, step: RadiationStep, day: float) -> None:
        therapy: RadiationTherapy = self.treatments.therapies[step.therapy]
        sites = self._site_names(step.sites, f"protocol.steps.{index}.sites")
        lesions = _Lesions(self.process, day)
        found = np.isin(lesions.root, list(self.found))
        in_sites = np.isin(lesions.table.site, list(sites))
        rows = lesions.rows(found & in_sites)
        where = " or ".join(step.sites)
        course = f"{therapy.label}, {step.dose_gy.value:g} Gy in {step.fractions.n} fraction(s)"
        if rows.size == 0:
            self._event(day, index, course, f"not needed: no lesion found in {where}")
            return
        tumour_size: dict[int, float] = {}
        for row in rows:
            root = int(lesions.root[row])
            tumour_size[root] = tumour_size.get(root, 0.0) + float(lesions.size[row])
        targets = sorted(tumour_size, key=lambda r: (-tumour_size[r], r))
        targets = targets[: therapy.max_lesions.n]
        changes = []
        for root in targets:
            controlled = self.rng.random() < therapy.local_control.value
            fraction = (
                therapy.controlled_surviving_fraction.value
                if controlled
                else therapy.uncontrolled_surviving_fraction.value
            )
            for row in lesions.rows(lesions.root == root):
                changes.append(Change(int(lesions.pid[row]), surviving_fraction=fraction))
            site = self.model.site_labels[
                int(lesions.table.site[lesions.rows(lesions.root == root)][0])
            ]
            self._event(
                day,
                index,
                f"{course}: {site} lesion",
                "local control" if controlled else "no local control",
                [root],
            )
        if therapy.pain_relief is not None:
            relieved = self.rng.random() < therapy.pain_relief.value
            self._event(
                day, index, course, "pain relief" if relieved else "no pain relief", targets
            )
        self._intervene(day, changes)

    # -------------------------------------------------------------- schedule
    def actions(self) -> list[_Action]:
        actions: list[_Action] = []
        for index, step in enumerate(self.protocol.steps):
            first = self.start + step.start_day.value
            if isinstance(step, SurgeryStep):
                actions.append(
                    _Action(first, ACTION, index, 0, _bind(self.surgery, index, step, first))
                )
            elif isinstance(step, RadiationStep):
                actions.append(
                    _Action(first, ACTION, index, 0, _bind(self.radiation, index, step, first))
                )
            else:
                course = _Course()
                for k, day in enumerate(step.cycle_days(self.start)):
                    actions.append(
                        _Action(
                            day, ACTION, index, k, _bind(self.cycle, index, step, course, k, day)
                        )
                    )
                end = self.start + step.end_offset()
                actions.append(
                    _Action(
                        end,
                        EVALUATION,
                        index,
                        step.cycles.n,
                        _bind(self.evaluate, index, step, course, end),
                    )
                )
        return sorted(actions, key=lambda a: (a.day, a.rank, a.step, a.cycle))

    def run(self) -> list[TreatmentEvent]:
        for action in self.actions():
            if action.day >= self.process.end:
                if action.rank == ACTION:
                    self._event(
                        self.process.end,
                        action.step,
                        f"treatment stopped: the natural history ended on day "
                        f"{self.process.end:.0f} ({self.process.end_reason})",
                        "not given",
                    )
                break
            action.run()
        return self.events


def _bind(method: Callable[..., None], *args: object) -> Callable[[], None]:
    return lambda: method(*args)


def _check_sites(
    protocol: Protocol, treatments: TreatmentKnowledge, site_names: Collection[str]
) -> None:
    """Every site a step or its therapy names must exist in the patient's anatomy.

    Checked before the first intervention, so that bad input never leaves a process half
    treated.
    """
    for index, step in enumerate(protocol.steps):
        therapy = treatments.therapies[step.therapy]
        named = {f"protocol.steps.{index}.sites": getattr(step, "sites", [])}
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
) -> list[TreatmentEvent]:
    """Apply ``protocol`` from ``start_day`` to ``process``; return what happened, in order.

    ``found_lesions``: ids, in ``process.lesion_table()`` as it is now, of the lesions the
    clinic has found (surgery removes found metastases, radiotherapy treats found lesions;
    drugs reach every lesion).  Steps stop once the natural history has ended.
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
    _check_sites(protocol, treatments, process.model.site_names)
    table_now = _Lesions(process, float(start_day))
    to_frame = dict(zip(table_now.pid.tolist(), table_now.table.id.tolist(), strict=True))
    from_frame = dict(zip(table_now.table.id.tolist(), table_now.pid.tolist(), strict=True))
    root_of = dict(zip(table_now.pid.tolist(), table_now.root.tolist(), strict=True))
    found = set()
    for lesion in found_lesions:
        if lesion not in from_frame:
            raise ModelError("found_lesions", lesion, f"lesion ids 0 to {len(from_frame) - 1}")
        found.add(root_of[from_frame[lesion]])  # a clone is found with its tumour
    treatment = _Treatment(
        process, protocol, float(start_day), found, _Frame(to_frame), traits, treatments, rng
    )
    return treatment.run()
