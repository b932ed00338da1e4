"""Accelerator types: memory, peak throughput, power and price facts."""

from aicc.catalog.types import AcceleratorType, Catalog, default_catalog

__all__ = ["AcceleratorType", "Catalog", "default_catalog"]
