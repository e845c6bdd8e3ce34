"""Sizes of a lesion through its life, from the lesion table's own columns."""

from __future__ import annotations

import numpy as np

from metastasis.results.patient import LesionTable


def _one_metastasis(scale: float) -> LesionTable:
    micro, birth_minus_death = 1e6, 0.05
    awakening = 100.0
    return LesionTable(
        id=np.array([0, 1]),
        site=np.array([0, 1]),
        parent=np.array([-1, 0]),
        route=np.array([-1, 0]),
        arrival=np.array([0.0, 50.0]),
        awakening=np.array([0.0, awakening]),
        colony_scale=np.array([1.0, scale]),
        micrometastasis=np.array([0.0, awakening + np.log(micro / scale) / birth_minus_death]),
        outgrowth=np.array([0.0, 900.0]),
        x0=np.array([1.0, micro]),
        rate=np.array([1e-3, 2e-3]),
        capacity=np.array([1e12, 1e12]),
    )


def test_colony_grows_exponentially_from_its_scale_to_the_micrometastasis_size() -> None:
    """Between awakening and the micrometastasis time the colony is W exp((b - d) age)."""
    table = _one_metastasis(scale=15.0)
    awake, micro = table.awakening[1], table.micrometastasis[1]
    assert np.isclose(table.size_at(awake)[1], 15.0)
    at = awake + 0.8 * (micro - awake)
    expected = 15.0 * (1e6 / 15.0) ** 0.8
    assert np.isclose(table.size_at(at)[1], expected, rtol=1e-9)
    assert np.isclose(table.size_at(micro)[1], 1e6)


def test_dormant_founder_is_one_cell_and_unfounded_is_none() -> None:
    table = _one_metastasis(scale=2.0)
    assert table.size_at(10.0)[1] == 0.0
    assert table.size_at(60.0)[1] == 1.0
    assert list(table.state_at(60.0)) == ["growing", "dormant"]
    assert table.state_at(950.0)[1] == "growing"
    assert table.size_at(950.0)[1] > 1e6
