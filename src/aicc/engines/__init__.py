"""Engines apply the scheduler's decisions and report job events: ``twin`` (the built-in
digital-twin fleet) and, where installed, ``slurm``. :func:`make_engine` picks one by name."""

from __future__ import annotations

from importlib import import_module

from aicc.engines.base import Engine, EventKind, JobEvent, LaunchSpec, RunningJob, StartOrder
from aicc.errors import ConfigError
from aicc.fleet.arrays import FleetArrays

__all__ = [
    "Engine",
    "EventKind",
    "JobEvent",
    "LaunchSpec",
    "RunningJob",
    "StartOrder",
    "make_engine",
]

# name -> "module:factory"; a factory takes (fleet, settings) and returns an Engine.
ENGINES: dict[str, str] = {
    "twin": "aicc.engines.twin:from_settings",
    "slurm": "aicc.engines.slurm:from_settings",
}


def make_engine(name: str, fleet: FleetArrays, settings: object | None = None) -> Engine:
    """Build the engine called ``name`` for ``fleet`` (the store's nodes)."""
    target = ENGINES.get(name)
    if target is None:
        raise ConfigError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}",
                          field="engine.kind")
    module, attr = target.split(":")
    try:
        factory = getattr(import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"engine {name!r} is not available: {exc}",
                          field="engine.kind") from None
    return factory(fleet, settings)
