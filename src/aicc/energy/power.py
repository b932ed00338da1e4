"""The minimal power model the ledger and the dashboard use.

A busy accelerator draws its TDP, an idle one its idle watts (both from the catalog). A job's
energy is ``accelerators × TDP × hours``: the accelerators' own draw, without host, network or
cooling overhead (the facility PUE is applied to the site, not charged to a job). Carbon is that
energy times a grid intensity in kg CO2e per kWh.

The default intensity, 0.5810 kg/kWh, is the national grid average emission factor set by
China's Ministry of Ecology and Environment in its 2022 notice on enterprise greenhouse-gas
reporting; a center with its own renewable supply passes a lower figure.
"""

from __future__ import annotations

import numpy as np

from aicc.fleet.arrays import FleetArrays

DEFAULT_GRID_INTENSITY_KG_PER_KWH = 0.5810
JOULES_PER_KWH = 3.6e6


def job_energy_kwh(accelerators: int, tdp_w: float, seconds: float) -> float:
    """Energy of ``accelerators`` parts running flat out for ``seconds``."""
    return accelerators * tdp_w * max(0.0, seconds) / JOULES_PER_KWH


def carbon_kg(energy_kwh: float, intensity_kg_per_kwh: float = DEFAULT_GRID_INTENSITY_KG_PER_KWH
              ) -> float:
    return energy_kwh * intensity_kg_per_kwh


def fleet_power_w(fleet: FleetArrays, busy: np.ndarray) -> float:
    """Instantaneous draw of the accelerators, ``busy[i]`` of node ``i``'s being in use."""
    busy = np.minimum(busy, fleet.capacity)
    idle = fleet.capacity - busy
    return float((busy * fleet.tdp_w()).sum() + (idle * fleet.idle_w()).sum())
