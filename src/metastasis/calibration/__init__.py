"""Calibration: the model's clinical statistics set beside published figures, and a search
that moves one named parameter until a chosen statistic meets its target.

Targets are data with sources (``knowledge/data/calibration.toml``); parameters have flat
names (``shedding_rate``, ``outgrowth``...) mapped onto the knowledge base, so calibrating
never means editing engine code.  Educational and research software: not medical advice.
"""

from metastasis.calibration.parameters import PARAMETERS, Parameter, with_value
from metastasis.calibration.search import Calibration, calibrate
from metastasis.calibration.statistics import Estimate, measure
from metastasis.calibration.targets import Target, load_targets

__all__ = [
    "PARAMETERS",
    "Calibration",
    "Estimate",
    "Parameter",
    "Target",
    "calibrate",
    "load_targets",
    "measure",
    "with_value",
]
