"""The accelerator catalog, loaded from ``accelerators.toml`` (vendor figures) and validated."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aicc.errors import ConfigError, UnknownAcceleratorType


class _TypeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,40}$")
    vendor: str
    model: str
    memory_gb: float = Field(gt=0)
    peak_tflops: float = Field(gt=0)
    tdp_w: float = Field(gt=0)
    idle_w: float = Field(ge=0)
    price_weight: float = Field(gt=0)


@dataclass(frozen=True, slots=True)
class AcceleratorType:
    name: str
    vendor: str
    model: str
    memory_gb: float
    peak_tflops: float
    tdp_w: float
    idle_w: float
    price_weight: float


class Catalog:
    """An ordered set of accelerator types; the order gives each type its array index."""

    def __init__(self, types: list[AcceleratorType]) -> None:
        self.types = tuple(types)
        self._index = {t.name: i for i, t in enumerate(self.types)}

    def __iter__(self):
        return iter(self.types)

    def __len__(self) -> int:
        return len(self.types)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise UnknownAcceleratorType(
                f"unknown accelerator type {name!r}; known: {', '.join(self._index)}",
                field="accelerator_type",
            ) from None

    def get(self, name: str) -> AcceleratorType:
        return self.types[self.index(name)]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.types]

    @classmethod
    def from_toml(cls, text: str) -> Catalog:
        raw = tomllib.loads(text)
        out = []
        for i, entry in enumerate(raw.get("type", [])):
            try:
                spec = _TypeSpec.model_validate(entry)
            except ValidationError as exc:
                err = exc.errors()[0]
                key = ".".join(str(p) for p in err["loc"])
                raise ConfigError(
                    f"type[{i}].{key}: {err['msg']}", field=f"type[{i}].{key}"
                ) from None
            if spec.idle_w >= spec.tdp_w:
                raise ConfigError(
                    f"type[{i}].idle_w must be below tdp_w", field=f"type[{i}].idle_w"
                )
            out.append(AcceleratorType(**spec.model_dump()))
        return cls(out)


@cache
def default_catalog() -> Catalog:
    text = resources.files("aicc.catalog").joinpath("accelerators.toml").read_text()
    return Catalog.from_toml(text)
