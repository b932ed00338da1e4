"""Power model, site cap, renewable supply, carbon intensity."""

from aicc.energy.power import (
    DEFAULT_GRID_INTENSITY_KG_PER_KWH,
    carbon_kg,
    fleet_power_w,
    job_energy_kwh,
)

__all__ = ["DEFAULT_GRID_INTENSITY_KG_PER_KWH", "carbon_kg", "fleet_power_w", "job_energy_kwh"]
