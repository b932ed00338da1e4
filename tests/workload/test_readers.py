"""Trace readers on real slices and on malformed files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aicc.errors import InvalidTrace
from aicc.workload.readers import parse_columns, read_trace

TRACES = Path(__file__).resolve().parents[1] / "data" / "traces"
PHILLY = TRACES / "philly-first3000.csv"
ALIBABA = TRACES / "alibaba-pods-first400.csv"


def _slice(src: Path, dst: Path, rows: int) -> list[list[str]]:
    with src.open() as fh:
        lines = [next(fh) for _ in range(rows + 1)]
    dst.write_text("".join(lines))
    return list(csv.reader(lines))[1:]


def test_philly_slice(tmp_path):
    rows = _slice(PHILLY, tmp_path / "p.csv", 300)
    w = read_trace(tmp_path / "p.csv")
    assert w.name == "philly" and len(w) == 300
    assert w.account.n_invalid == 0
    assert sorted(w.tenants) == sorted({r[4] for r in rows})
    # the job with the largest runtime keeps its duration and GPU count
    big = max(rows, key=lambda r: float(r[1]))
    k = int(np.argmax(w.runtime_s))
    assert w.runtime_s[k] == float(big[1]) and w.gpus[k] == int(big[2])
    assert (np.diff(w.submit_s) >= 0).all() and w.submit_s[0] == 0.0


def test_alibaba_slice_counts_invalid_rows_by_reason(tmp_path):
    rows = _slice(ALIBABA, tmp_path / "pods.csv", 400)
    w = read_trace(tmp_path / "pods.csv")
    pending = sum(r[7] == "Pending" for r in rows)
    zero = sum(r[7] != "Pending" and int(r[3]) == 0 for r in rows)
    shares = sum(r[7] != "Pending" and int(r[3]) == 1 and int(r[4]) < 1000 for r in rows)
    assert w.account.invalid["never_scheduled"] == pending
    assert w.account.invalid["zero_gpus"] == zero
    assert w.account.adjusted["gpu_share_rounded_up_to_1"] == shares
    assert len(w) + pending + zero == 400
    assert set(w.tenants) <= {"LS", "BE", "Burstable", "Guaranteed"}
    assert w.preemptible is not None
    assert w.preemptible.sum() == sum(r[6] == "BE" and r[7] != "Pending" and int(r[3]) > 0
                                      for r in rows)


HELIOS_HEADER = ("job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,start_time,"
                 "end_time,duration,queue\n")


def test_helios_format_with_invalid_rows(tmp_path):
    p = tmp_path / "helios.csv"
    p.write_text(HELIOS_HEADER + "\n".join([
        "1,u1,vcA,8,16,1,COMPLETED,2020-04-01 00:00:00,2020-04-01 00:00:10,"
        "2020-04-01 01:00:10,3600,0",
        "2,u2,vcB,0,4,1,COMPLETED,2020-04-01 00:01:00,2020-04-01 00:01:00,2020-04-01 00:02:00,60,0",
        "3,u2,vcB,2,4,1,FAILED,2020-04-01 00:02:00,,,0.4,0",
        "4,u3,vcA,1,4,1,COMPLETED,not-a-time,,,50,0",
        "5,u3,vcA,1,4,1,COMPLETED,2020-04-01 00:03:00,,,-5,0",
        "6,u3,vcA,4,4,1,COMPLETED,2020-04-01 00:04:00,,,,0",
    ]) + "\n")
    w = read_trace(p)
    assert w.name == "helios"
    assert len(w) == 2
    assert w.account.invalid == {"zero_gpus": 1, "unparseable_submit": 1,
                                 "negative_runtime": 1, "missing_runtime": 1}
    assert w.account.examples["zero_gpus"] == [3]
    assert w.account.examples["unparseable_submit"] == [5]
    assert w.account.adjusted["subsecond_runtime_raised_to_1s"] == 1
    assert w.runtime_s.tolist() == [3600.0, 1.0]
    assert w.submit_s.tolist() == [0.0, 120.0]
    assert w.tenants == ["vcA", "vcB"]


def test_malformed_row_reports_line_number(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("timestamp,duration,num_gpus,gpu_time,cluster\n"
                 "2017-10-09 07:01:55,66.0,1,66.0,a\n"
                 "2017-10-09 07:02:55,66.0,1\n")
    with pytest.raises(InvalidTrace) as exc:
        read_trace(p)
    assert "line 3" in str(exc.value)
    assert exc.value.details["line"] == 3


def test_missing_column_and_unknown_header(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidTrace, match="line 1: unrecognised columns"):
        read_trace(p)
    with pytest.raises(InvalidTrace, match="missing column"):
        read_trace(p, columns="submit=a,duration=b,gpus=nope")
    with pytest.raises(InvalidTrace, match="does not exist"):
        read_trace(tmp_path / "absent.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    for columns in ("submit=a,duration=b,gpus=c", None):
        with pytest.raises(InvalidTrace, match=r": the file is empty$"):
            read_trace(empty, columns=columns)


def test_column_mapping_csv_with_timestamps_and_parquet_with_seconds(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("when,secs,n,team\n2024-01-01T00:00:10,30,2,red\n2024-01-01T00:00:00,20,1,blue\n")
    w = read_trace(p, columns="submit=when,duration=secs,gpus=n,tenant=team")
    assert w.submit_s.tolist() == [0.0, 10.0] and w.gpus.tolist() == [1, 2]
    assert w.tenants == ["blue", "red"] and w.tenant.tolist() == [0, 1]
    q = tmp_path / "mine.parquet"
    pq.write_table(pa.table({"t": [100.0, 50.0, 75.0], "stop": [160.0, 90.0, 70.0],
                             "g": [4, 0, 1]}), q)
    w = read_trace(q, columns="submit=t,end=stop,gpus=g")
    # runtime = end − submit; a zero-GPU row and an end before submit are counted, not dropped
    assert w.account.invalid == {"zero_gpus": 1, "negative_runtime": 1}
    assert w.runtime_s.tolist() == [60.0] and w.tenants == ["default"]


def test_parse_columns_validation():
    assert parse_columns("submit=a, duration=b ,gpus=c") == {"submit": "a", "duration": "b",
                                                             "gpus": "c"}
    for bad in ("submit=a,gpus", "submit=a,duration=b", "submit=a,gpus=b",
                "submit=a,gpus=b,duration=c,colour=d"):
        with pytest.raises(InvalidTrace):
            parse_columns(bad)


def test_named_traces_are_found_under_aicc_trace_dir(tmp_path, monkeypatch):
    (tmp_path / "philly").mkdir()
    (tmp_path / "philly" / "philly.csv").write_text(PHILLY.read_text())
    monkeypatch.setenv("AICC_TRACE_DIR", str(tmp_path))
    assert len(read_trace("philly")) == 3000
    monkeypatch.setenv("AICC_TRACE_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(InvalidTrace, match=r"not found at .*elsewhere"):
        read_trace("philly")
