"""Nodes and topology as arrays; node health (up, drain, down); fleet phases as data."""

from aicc.fleet.arrays import NODE_DOWN, NODE_DRAIN, NODE_UP, FleetArrays, NodeInfo
from aicc.fleet.phases import FleetPhase, NodeGroup, build_fleet, load_phases, phase

__all__ = [
    "NODE_DOWN",
    "NODE_DRAIN",
    "NODE_UP",
    "FleetArrays",
    "FleetPhase",
    "NodeGroup",
    "NodeInfo",
    "build_fleet",
    "load_phases",
    "phase",
]
