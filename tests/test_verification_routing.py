"""Verification: where shed cells arrest, from the anatomy's flow fractions.

The engine solves the journey as an absorbing Markov chain, B = (I - Q)^-1 R
(``metastasis.model.routing``).  Here the same probabilities are derived by hand, by
following a cell along its paths through the default anatomy:

* a cell entering a vessel goes to its first capillary bed (portal vein -> liver,
  venae cavae -> lungs, arterial tree -> organ j with the share w_j of cardiac output),
  surviving the leg with probability s;
* in bed j it arrests with probability p_j; otherwise it leaves by the bed's drainage
  (a share pi_j of it through the vertebral plexus straight to bone, with one more leg);
* every path that does not arrest or die comes back to the arterial tree, so the arrest
  probabilities from the arterial tree are a geometric series over recirculation:
  A = a (1 + rho + rho^2 + ...) = a / (1 - rho), with a the arrest vector and rho the
  return probability of one pass.

These closed forms must equal ``model.arrest`` to 1e-12, with transit survival 1 and
below 1; then a seeded run's founders must land where they say (chi-square, alpha = 0.001).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from metastasis.engine.patient import simulate_patient
from metastasis.engine.seeds import patient_generator
from metastasis.knowledge.loader import from_dict
from metastasis.model.resolve import ResolvedModel, resolve
from metastasis.model.routing import Route

pytestmark = pytest.mark.verification  # statistical agreement: the slow tier

ALPHA = 1e-3
"""Significance level of the goodness-of-fit test."""

TOLERANCE = 1e-12
"""Agreement required between the hand-derived and the engine's arrest probabilities."""


@dataclass(frozen=True)
class Survival:
    """Transit survival: entry into blood and lymph, each leg, and the serous cavity."""

    blood_entry: float
    blood_leg: float
    lymph_entry: float
    lymph_leg: float
    cavity: float

    def apply(self, raw: dict[str, Any], cancer: str) -> None:
        travel = raw["cancers"][cancer].setdefault("travel", {})
        for field, value in (
            ("blood_entry_survival", self.blood_entry),
            ("blood_leg_survival", self.blood_leg),
            ("lymph_entry_survival", self.lymph_entry),
            ("lymph_leg_survival", self.lymph_leg),
            ("cavity_survival", self.cavity),
        ):
            travel[field] = {"value": value, "source": "assumption: verification test"}


SURVIVALS = {
    "lossless": Survival(1.0, 1.0, 1.0, 1.0, 1.0),
    "lossy": Survival(0.3, 0.7, 0.6, 0.8, 0.4),
    "harsh": Survival(2e-3, 0.5, 0.02, 0.5, 2e-3),
}


class HandRouting:
    """Arrest probabilities of the default anatomy, by following paths (no linear algebra).

    A *flow* is a pair (arrest vector over sites, probability of coming back into the
    arterial tree); flows add and scale, and ``resolve`` closes the recirculation.
    """

    def __init__(self, raw: dict[str, Any], survival: Survival) -> None:
        self.sites: dict[str, dict[str, Any]] = raw["sites"]
        self.names = list(self.sites)
        self.s = survival
        self.p = {name: site["capillary_arrest"]["value"] for name, site in self.sites.items()}
        # the anatomical facts the formulas below are written for
        assert self.sites["liver"]["venous_drainage"] == "caval"
        assert self.sites["lungs"]["venous_drainage"] == "arterial"
        assert self.sites["bone"]["venous_drainage"] == "caval"
        assert "vertebral_plexus_share" not in self.sites["bone"]
        self.arterial = self._arterial_tree()

    def unit(self, name: str, weight: float = 1.0) -> NDArray[np.float64]:
        vector = np.zeros(len(self.names))
        vector[self.names.index(name)] = weight
        return vector

    def _plexus(self, name: str) -> float:
        share = self.sites[name].get("vertebral_plexus_share")
        return share["value"] if share else 0.0

    # -- the cell is in a vessel, before the leg to the first bed
    def caval(self) -> tuple[NDArray[np.float64], float]:
        """Venae cavae -> lungs (arrest p_L) -> pulmonary veins -> back to the arteries."""
        s, p_l = self.s.blood_leg, self.p["lungs"]
        return self.unit("lungs", s * p_l), s * (1.0 - p_l)

    def portal(self) -> tuple[NDArray[np.float64], float]:
        """Portal vein -> liver (arrest p_H) -> hepatic veins -> venae cavae."""
        s, p_h = self.s.blood_leg, self.p["liver"]
        arrest, back = self.caval()
        return self.unit("liver", s * p_h) + s * (1.0 - p_h) * arrest, s * (1.0 - p_h) * back

    def bone_bed(self) -> tuple[NDArray[np.float64], float]:
        """Arrived in bone (leg paid): arrest p_B, else venae cavae."""
        p_b = self.p["bone"]
        arrest, back = self.caval()
        return self.unit("bone", p_b) + (1.0 - p_b) * arrest, (1.0 - p_b) * back

    def vessel(self, drainage: str) -> tuple[NDArray[np.float64], float]:
        if drainage == "portal":
            return self.portal()
        if drainage == "caval":
            return self.caval()
        if drainage == "arterial":
            return np.zeros(len(self.names)), 1.0
        return np.zeros(len(self.names)), 0.0  # no blood drainage: lost

    def venous_exit(self, name: str) -> tuple[NDArray[np.float64], float]:
        """A cell leaving organ ``name`` by its veins (plexus share straight to bone)."""
        plexus = self._plexus(name)
        arrest, back = self.vessel(self.sites[name]["venous_drainage"])
        arrest, back = (1.0 - plexus) * arrest, (1.0 - plexus) * back
        if plexus > 0.0:
            bone_arrest, bone_back = self.bone_bed()
            arrest = arrest + plexus * self.s.blood_leg * bone_arrest
            back += plexus * self.s.blood_leg * bone_back
        return arrest, back

    def _arterial_tree(self) -> NDArray[np.float64]:
        """A = a / (1 - rho): arrest probabilities of a cell entering the arterial tree.

        One pass: the cell reaches organ j with probability w_j s, arrests there with p_j,
        else leaves by that organ's veins; what comes back to the arteries starts over.
        """
        s = self.s.blood_leg
        one_pass = np.zeros(len(self.names))
        back = 0.0
        for name, site in self.sites.items():
            w = site["arterial_share"]["value"]
            if w == 0.0:
                continue
            if site.get("kind", "organ") == "lymph_nodes":
                raise AssertionError("the formulas assume no arterial flow into lymph nodes")
            p = self.p[name]
            arrest, returned = self.venous_exit(name)
            one_pass += w * s * (self.unit(name, p) + (1.0 - p) * arrest)
            back += w * s * (1.0 - p) * returned
        return one_pass / (1.0 - back)

    def resolve(self, flow: tuple[NDArray[np.float64], float]) -> NDArray[np.float64]:
        arrest, back = flow
        return arrest + back * self.arterial

    # -- the cases
    def blood(self, source: str) -> NDArray[np.float64]:
        """Blood route from ``source``: entry survival, then its venous exit."""
        return self.s.blood_entry * self.resolve(self.venous_exit(source))

    def lymph(self, source: str) -> NDArray[np.float64]:
        """Lymph route: entry, then node to node (arrest p_N, else one more lymph leg),
        then through the thoracic duct into the venae cavae."""
        s_l = self.s.lymph_leg
        arrest = np.zeros(len(self.names))
        reach = self.s.lymph_entry  # probability of being alive and on the way
        target = self.sites[source]["lymph_drainage"]
        while target != "thoracic_duct":
            reach *= s_l
            p_n = self.p[target]
            arrest += self.unit(target, reach * p_n)
            reach *= 1.0 - p_n
            target = self.sites[target]["lymph_drainage"]
        reach *= s_l
        caval_arrest, caval_back = self.caval()
        return arrest + reach * self.resolve((caval_arrest, caval_back))

    def cavity(self, source: str) -> NDArray[np.float64]:
        """Cavity route: survive the cavity, then settle on its lining (arrest p_c) or be lost."""
        lining = self.sites[source]["cavity"]
        return self.unit(lining, self.s.cavity * self.p[lining])


def _model(default_raw: dict[str, Any], survival: Survival) -> ResolvedModel:
    raw = copy.deepcopy(default_raw)
    survival.apply(raw, "colorectal")
    return resolve(from_dict(raw), "colorectal")


CASES = [
    ("colon", Route.BLOOD, "portal-drained organ: liver first"),
    ("kidney", Route.BLOOD, "caval-drained organ: lungs first"),
    ("lungs", Route.BLOOD, "lungs: straight into the arterial tree"),
    ("prostate", Route.BLOOD, "caval-drained with a vertebral plexus share (Batson)"),
    ("colon", Route.LYMPH, "lymph: regional -> distant nodes -> thoracic duct -> venae cavae"),
    ("breast", Route.LYMPH, "lymph from a caval-drained organ"),
    ("colon", Route.CAVITY, "peritoneal cavity"),
]


@pytest.mark.parametrize("survival_name", list(SURVIVALS))
@pytest.mark.parametrize(("source", "route", "why"), CASES)
def test_arrest_probabilities_match_hand_derivation(
    source: str, route: Route, why: str, survival_name: str, default_raw: dict[str, Any]
) -> None:
    """Claim: model.arrest[source, route] equals the path-by-path closed form (to 1e-12),
    and died_in_transit is its complement; with lossless transit every blood-borne cell
    arrests somewhere (the arrest probabilities sum to 1)."""
    survival = SURVIVALS[survival_name]
    model = _model(default_raw, survival)
    hand = HandRouting(default_raw, survival)
    expected = {Route.BLOOD: hand.blood, Route.LYMPH: hand.lymph, Route.CAVITY: hand.cavity}[
        route
    ](source)
    o = model.site_index(source)
    np.testing.assert_allclose(model.arrest[o, route], expected, rtol=0.0, atol=TOLERANCE)
    assert model.died_in_transit[o, route] == pytest.approx(1.0 - expected.sum(), abs=TOLERANCE)
    if survival_name == "lossless" and route is not Route.CAVITY:
        assert expected.sum() == pytest.approx(1.0, abs=TOLERANCE)


def test_plexus_case_is_not_vacuous(default_raw: dict[str, Any]) -> None:
    """The prostate case above exercises the vertebral plexus: the shipped anatomy gives
    the prostate a plexus share, and it sends more cells to bone than a caval site without
    one (the skin) gets; the kidney's larger share sends more still."""
    survival = SURVIVALS["lossy"]
    hand = HandRouting(default_raw, survival)
    assert hand._plexus("prostate") > 0.0 and hand._plexus("skin") == 0.0
    bone = hand.names.index("bone")
    assert hand.blood("prostate")[bone] > hand.blood("skin")[bone]
    assert hand._plexus("kidney") > hand._plexus("prostate")
    assert hand.blood("kidney")[bone] > hand.blood("prostate")[bone]


def _founder_raw(iwata_raw: dict[str, Any], survival: Survival) -> dict[str, Any]:
    """Iwata's configuration (every arrested cell founds a colony) with a colon primary,
    three routes and lossy transit; founders never grow out (1e9-day delay), so they do
    not seed, and the primary's founders show the journey's arrest probabilities."""
    raw = copy.deepcopy(iwata_raw)
    cancer = raw["cancers"]["hcc_iwata"]
    cancer["primary_site"] = "colon"
    cancer["shedding"]["rate"]["value"] = 500 * cancer["shedding"]["rate"]["value"]
    cancer["shedding"]["lymph_fraction"]["value"] = 0.3
    cancer["shedding"]["cavity_fraction"]["value"] = 0.05
    cancer["colonisation"]["mean_outgrowth_delay_days"]["value"] = 1e9
    survival.apply(raw, "hcc_iwata")
    return raw


def test_engine_founders_land_where_the_closed_form_says(iwata_raw: dict[str, Any]) -> None:
    """Claim: in a seeded run, the (route, site) of the cells the colon primary sends out
    follows w_r * arrest[colon, r, j] / sum, with arrest from the hand derivation and route
    shares 0.65 / 0.30 / 0.05.

    Statistic: Pearson chi-square goodness of fit over (route, site) cells (cells expected
    below 5 pooled), alpha = 0.001; 6 seeded patients, about 4,300 founders."""
    survival = SURVIVALS["lossy"]
    raw = _founder_raw(iwata_raw, survival)
    model = resolve(from_dict(raw), "hcc_iwata")
    hand = HandRouting(raw, survival)
    shares = {Route.BLOOD: 0.65, Route.LYMPH: 0.30, Route.CAVITY: 0.05}
    paths = {Route.BLOOD: hand.blood, Route.LYMPH: hand.lymph, Route.CAVITY: hand.cavity}
    joint = np.array([shares[r] * paths[r]("colon") for r in (Route.BLOOD, Route.LYMPH,
                                                               Route.CAVITY)])
    joint /= joint.sum()
    np.testing.assert_allclose(model.route_weights[model.primary_site], [0.65, 0.30, 0.05])

    observed = np.zeros_like(joint)
    for i in range(6):
        lesions = simulate_patient(model, patient_generator(61, i), 616.0).lesions
        from_primary = lesions.parent == 0
        np.add.at(observed, (lesions.route[from_primary], lesions.site[from_primary]), 1)
    total = observed.sum()
    assert total > 3_000, "too few founders for the test to bite"
    expected = joint * total
    big = expected >= 5.0
    assert observed[expected == 0.0].sum() == 0, "a founder landed where no cell can arrive"
    f_obs = np.append(observed[big], observed[~big].sum())
    f_exp = np.append(expected[big], expected[~big].sum())
    chi2, p = stats.chisquare(f_obs, f_exp)
    assert p > ALPHA, f"chi2 = {chi2:.2f} on {f_obs.size - 1} df, p = {p:.3g}, N = {total:g}"
