"""Row accounts: bounds on values, the file's own line numbers, and reasons for every drop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aicc.errors import InvalidInput, InvalidTrace
from aicc.sim.jobs import prepare
from aicc.sim.loop import SimConfig
from aicc.sim.scenario import Scenario, apply_knobs, custom_fleet
from aicc.workload.readers import physical_lines, read_trace
from aicc.workload.tenants import map_tenants
from aicc.workload.trace import MAX_RUNTIME_S

COLS = "submit=ts,duration=run,gpus=n"


def _csv(tmp_path: Path, text: str, name: str = "w.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode())
    return p


def test_absurd_runtimes_submits_and_gpu_counts_are_invalid(tmp_path):
    p = _csv(tmp_path, "ts,run,n\n"
             "0,100,8\n"                 # line 2: kept
             "10,1e300,1\n"              # line 3: runtime far beyond ten years
             f"20,{MAX_RUNTIME_S},1\n"   # line 4: exactly ten years: kept
             f"30,{MAX_RUNTIME_S + 1},1\n"  # line 5
             "1e300,100,1\n"             # line 6: a submission no calendar holds
             "40,100,1e12\n")            # line 7: more GPUs than a count can hold
    w = read_trace(p, columns=COLS)
    assert w.account.invalid == {"runtime_over_10_years": 2, "submit_out_of_range": 1,
                                 "too_many_gpus": 1}
    assert w.account.examples["runtime_over_10_years"] == [3, 5]
    assert w.account.examples["submit_out_of_range"] == [6]
    assert w.account.examples["too_many_gpus"] == [7]
    assert w.runtime_s.tolist() == [100.0, MAX_RUNTIME_S]
    assert (w.gpus >= 1).all()


def test_physical_lines_counts_blank_lines_with_every_line_end():
    assert physical_lines(b"a,b\n1,2\n3,4\n") is None  # the fast path
    assert physical_lines(b"a,b\r\n1,2\r\n") is None
    assert physical_lines(b"a,b\n1,2\n\n\n3,4\n").tolist() == [1, 2, 5]
    assert physical_lines(b"\n\na,b\r\n1,2\r\n\r\n3,4").tolist() == [3, 4, 6]
    assert physical_lines(b"a,b\r1,2\r\r3,4\r").tolist() == [1, 2, 4]


@pytest.mark.parametrize("nl", ["\n", "\r\n"])
def test_malformed_row_after_blank_lines_names_its_file_line(tmp_path, nl):
    rows = ["ts,run,n", "0,10,1", "", "", "5,10,1", "6,10"]  # the bad row is on line 6
    p = _csv(tmp_path, nl.join(rows) + nl)
    with pytest.raises(InvalidTrace) as exc:
        read_trace(p, columns=COLS)
    assert ", line 6:" in str(exc.value)
    assert exc.value.details["line"] == 6


def test_row_account_lines_after_blank_lines(tmp_path):
    p = _csv(tmp_path, "\n"  # line 1 blank: the header is line 2
             "timestamp,duration,num_gpus,gpu_time,cluster\n"
             "2017-10-09 07:01:55,66,1,66,a\n"  # 3
             "\n"
             "2017-10-09 07:02:55,66,0,0,a\n"   # 5: zero GPUs
             "\n\n"
             "2017-10-09 07:03:55,-5,1,0,b\n"   # 8: negative runtime
             "2017-10-09 07:04:55,66,2,0,b\n")  # 9
    w = read_trace(p)  # detected as Philly past the blank first line
    assert w.name == "philly" and len(w) == 2
    assert w.account.examples == {"zero_gpus": [5], "negative_runtime": [8]}
    assert w.lines is not None and w.lines.tolist() == [3, 9]
    with pytest.raises(InvalidTrace, match="line 2: missing column"):
        read_trace(p, columns="submit=timestamp,duration=duration,gpus=absent")


def test_larger_than_fleet_rows_have_example_lines(tmp_path):
    # submitted out of file order: the examples are still the first lines in the file
    p = _csv(tmp_path, "ts,run,n\n0,10,8\n\n9,10,16\n2,10,4\n3,10,64\n")
    w = read_trace(p, columns=COLS)
    fleet = custom_fleet(1, "h100-sxm-80g")  # one 8-accelerator node
    tm = map_tenants(w.tenants, len(fleet.catalog))
    jobs = prepare(w, fleet, tm.tenant_project)
    assert len(jobs) == 2
    assert jobs.account.invalid["larger_than_fleet"] == 2
    assert jobs.account.examples["larger_than_fleet"] == [4, 6]
    assert jobs.account.to_dict()["example_lines"]["larger_than_fleet"] == [4, 6]
    # a subset (--max-jobs, a load factor) keeps each job's line: the first three submitted
    head = w.head(3).compressed(2.0)
    jobs = prepare(head, fleet, tm.tenant_project)
    assert jobs.account.examples["larger_than_fleet"] == [6]


def test_nan_text_is_a_nonfinite_number_not_a_missing_value(tmp_path):
    p = _csv(tmp_path, "ts,run,n\n0,nan,1\n1,NaN,1\n2,inf,1\n3,NA,1\n4,,1\n5,abc,1\n6,10,1\n")
    w = read_trace(p, columns=COLS)
    assert w.account.invalid == {"nonfinite_duration": 3, "missing_runtime": 2,
                                 "unparseable_duration": 1}
    assert w.account.examples["nonfinite_duration"] == [2, 3, 4]
    assert w.account.examples["missing_runtime"] == [5, 6]
    assert w.account.examples["unparseable_duration"] == [7]
    # the same in Parquet: a NaN float is non-finite, a null is missing
    q = tmp_path / "w.parquet"
    pq.write_table(pa.table({"ts": [0.0, 1.0, 2.0], "run": [float("nan"), None, 5.0],
                             "n": [1, 1, 1]}), q)
    w = read_trace(q, columns=COLS)
    assert w.account.invalid == {"nonfinite_duration": 1, "missing_runtime": 1}
    assert w.account.examples == {"nonfinite_duration": [1], "missing_runtime": [2]}


def test_parquet_duration_and_subsecond_timestamp_columns_are_seconds(tmp_path):
    q = tmp_path / "d.parquet"
    ts = pa.array([1_500, 2_250, 4_000], pa.timestamp("ms"))
    pq.write_table(pa.table({"ts": ts, "run": pa.array([90_000, 7_200_000, 500], pa.duration("ms")),
                             "n": [1, 2, 1]}), q)
    w = read_trace(q, columns=COLS)
    assert w.account.n_invalid == 0
    assert w.submit_s.tolist() == [0.0, 0.75, 2.5]
    assert w.runtime_s.tolist() == [90.0, 7200.0, 1.0]


def _no_jobs_error(path: Path, columns: str = COLS) -> str:
    w = read_trace(path, columns=columns)
    sc = Scenario(fleet=custom_fleet(1, "h100-sxm-80g"), config=SimConfig())
    with pytest.raises(InvalidInput) as exc:
        apply_knobs(w, sc)
    return str(exc.value)


def test_no_valid_jobs_names_the_file_and_the_reasons(tmp_path):
    q = tmp_path / "text.parquet"
    pq.write_table(pa.table({"ts": np.arange(5.0), "run": ["1h"] * 5, "n": [1] * 5}), q)
    msg = _no_jobs_error(q)
    assert str(q) in msg and "no valid jobs" in msg
    assert "rows read 5" in msg and "unparseable duration 5" in msg
    header_only = _csv(tmp_path, "ts,run,n\n", "header.csv")
    msg = _no_jobs_error(header_only)
    assert str(header_only) in msg and "rows read 0" in msg
