"""Trace reading: conflicting ``--columns`` keys, pairs separated by spaces, a column named by
``--columns`` that the file lacks, an empty start or end cell, an unterminated quote and an
empty file are each reported for what they are."""

from __future__ import annotations

import pytest

from aicc.errors import InvalidTrace
from aicc.workload.readers import parse_columns, read_trace


@pytest.mark.parametrize(("text", "message"), [
    ("submit=ts,duration=run,start=s,gpus=n", "duration= and start= both give the runtime"),
    ("submit=ts,duration=run,end=e,gpus=n", "duration= and end= both give the runtime"),
    ("submit=ts duration=run_s", "separate them with commas, not spaces"),
    ("submit=ts,gpus=n duration=run", "separate them with commas, not spaces"),
])
def test_conflicting_or_space_separated_columns_are_refused(text, message):
    with pytest.raises(InvalidTrace, match=message) as exc:
        parse_columns(text)
    assert exc.value.field == "columns" and str(exc.value).startswith("--columns")


def test_end_with_start_still_works():
    assert parse_columns("submit=ts,start=s,end=e,gpus=n")["start"] == "s"


def test_a_missing_column_names_the_columns_key(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("ts,run,n\n0,10,1\n")
    with pytest.raises(InvalidTrace) as exc:
        read_trace(p, columns="submit=ts,duration=nope,gpus=n")
    assert "missing column(s) nope (--columns duration=nope); found: " in str(exc.value)


def test_an_empty_start_or_end_is_missing_start_or_end(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("ts,s,e,n\n0,0,10,1\n1,,10,1\n2,2,,1\n,3,10,1\n")
    w = read_trace(p, columns="submit=ts,start=s,end=e,gpus=n")
    assert dict(w.account.invalid) == {"missing_start": 1, "missing_end": 1,
                                       "missing_submit": 1}
    assert w.account.examples == {"missing_start": [3], "missing_end": [4],
                                  "missing_submit": [5]}
    assert len(w) == 1


@pytest.mark.parametrize(("body", "line"), [
    ('ts,run,n,team\n0,10,1,vc0\n0,10,1,"vc1\n', 3),  # the last row: read to the end before
    ('ts,run,n,team\n0,10,1,"vc1\n5,10,1,vc2\n', 2),  # mid-file: swallowed the next row
    ('ts,run,n,team\n0,10,1,"a ""b"" \n', 2),  # escaped quotes, still open
])
def test_an_unterminated_quote_is_refused_with_its_line(tmp_path, body, line):
    p = tmp_path / "q.csv"
    p.write_text(body)
    with pytest.raises(InvalidTrace, match=f"line {line}: a quoted value is not closed") as exc:
        read_trace(p, columns="submit=ts,duration=run,gpus=n,tenant=team")
    assert exc.value.details["line"] == line


def test_closed_quotes_and_quotes_inside_values_are_read(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('ts,run,n,team\n0,10,1,"vc,1"\n1,10,1,"a ""b"""\n2,10,1,x"y\n')
    w = read_trace(p, columns="submit=ts,duration=run,gpus=n,tenant=team")
    assert sorted(w.tenants) == ['a "b"', "vc,1", 'x"y']


@pytest.mark.parametrize("body", ["", "\n\n", "  \r\n"])
def test_an_empty_file_says_so(tmp_path, body):
    p = tmp_path / "e.csv"
    p.write_text(body)
    for kw in ({}, {"columns": "submit=a,duration=b,gpus=c"}, {"fmt": "philly"}):
        with pytest.raises(InvalidTrace, match=r"e\.csv: the file is empty$"):
            read_trace(p, **kw)
