"""Fixtures shared by the simulator tests."""

from __future__ import annotations

import pytest

import aicc.sim.cli as sim_cli


@pytest.fixture
def runs(monkeypatch):
    """Count the simulations started (through the CLI's ``run_scenario``)."""
    calls: list[str] = []
    real = sim_cli.run_scenario

    def counting(w, sc, **kw):
        calls.append(sc.config.policy)
        return real(w, sc, **kw)

    monkeypatch.setattr(sim_cli, "run_scenario", counting)
    return calls
