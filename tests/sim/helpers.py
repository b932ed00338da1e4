"""Small builders for simulator tests: a workload from lists, a one-type fleet."""

from __future__ import annotations

import numpy as np

from aicc.sim.jobs import SimJobs, prepare
from aicc.sim.scenario import custom_fleet
from aicc.workload.tenants import TenantMapping, map_tenants
from aicc.workload.trace import RowAccount, Workload, build


def workload(submit, runtime, gpus, tenants=None, name="test") -> Workload:
    n = len(submit)
    return build(name, submit=np.asarray(submit, dtype=float),
                 runtime=np.asarray(runtime, dtype=float), gpus=np.asarray(gpus, dtype=float),
                 tenant_labels=np.asarray(tenants or ["t0"] * n, dtype=object),
                 lines=np.arange(n) + 2, account=RowAccount())


def setup(w: Workload, nodes: int = 1, type_name: str = "h100-sxm-80g"
          ) -> tuple[SimJobs, object, TenantMapping]:
    fleet = custom_fleet(nodes, type_name)
    tm = map_tenants(w.tenants, len(fleet.catalog))
    jobs = prepare(w, fleet, tm.tenant_project)
    return jobs, fleet, tm
