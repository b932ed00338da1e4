"""Trace reading: conflicting ``--columns`` keys, pairs separated by spaces, a column named by
``--columns`` that the file lacks, an empty start or end cell, an unterminated quote, an
empty file and a model column with too many values are each reported for what they are; the
format is found in any file the reader reads; a Parquet null is no model."""

from __future__ import annotations

import gzip

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aicc.errors import InvalidTrace
from aicc.workload.readers import parse_columns, read_table, read_trace
from aicc.workload.trace import MAX_MODELS


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


PHILLY_HEADER = b"timestamp,duration,num_gpus,gpu_time,cluster"


def test_a_column_named_twice_is_refused_at_the_header(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_bytes(b"\n" + PHILLY_HEADER + b",cluster\n2017-09-04 10:30:41,100,1,100,a,b\n")
    with pytest.raises(InvalidTrace, match=r"line 2: column\(s\) 'cluster' appear more than once"):
        read_trace(p)
    # duplicates the reader does not take (trailing commas, a repeated note) are left alone
    q = tmp_path / "extra.csv"
    q.write_bytes(b"ts,run,n,vc,note,note,,\n0,10,1,a,x,y,,\n")
    w = read_trace(q, columns="submit=ts,duration=run,gpus=n,tenant=vc")
    assert len(w) == 1 and w.tenants == ["a"]


def test_a_label_that_is_not_utf8_is_refused_at_its_line(tmp_path):
    p = tmp_path / "latin1.csv"
    p.write_bytes(PHILLY_HEADER + b"\n2017-09-04 10:30:41,100,1,100,a\n"
                  b"2017-09-04 10:30:42,100,1,100,\xe9t\xe9\n")
    with pytest.raises(InvalidTrace, match=r"line 3: column cluster: the text is not UTF-8"):
        read_trace(p)


def test_a_bad_byte_leaves_the_missing_cells_of_its_column_missing(tmp_path):
    p = tmp_path / "na.csv"
    p.write_bytes(b"ts,run,n\n0,10,1\nNA,10,1\n1\xff0,10,1\n20,10,1\n")
    w = read_trace(p, columns="submit=ts,duration=run,gpus=n")
    assert w.account.invalid == {"missing_submit": 1, "unparseable_submit": 1}
    assert w.account.examples == {"missing_submit": [3], "unparseable_submit": [4]}


def test_one_bad_byte_in_a_time_spoils_its_row_only(tmp_path):
    p = tmp_path / "ts.csv"
    p.write_bytes(PHILLY_HEADER + b"\n2017-09-04 10:30:41,100,1,100,a\n"
                  b"2017-09-04 10:30:4\xff,100,1,100,a\n2017-09-04 10:31:00,50,2,100,a\n")
    w = read_trace(p)
    assert len(w) == 2 and w.account.invalid == {"unparseable_submit": 1}
    assert w.account.examples["unparseable_submit"] == [3]


def test_parquet_columns_of_categories_are_read_and_of_lists_refused(tmp_path):
    ts = ["2017-09-04 10:30:41", "2017-09-04 10:30:41", "2017-09-04 11:00:00"]
    base = {"duration": [100, 200, 300], "num_gpus": [1, 2, 4], "gpu_time": [1, 1, 1]}
    cat = tmp_path / "cat.parquet"
    pq.write_table(pa.table({"timestamp": pa.array(ts).dictionary_encode(), **base,
                             "cluster": pa.array(["a", "b", "a"]).dictionary_encode()}), cat)
    w = read_trace(cat)
    assert len(w) == 3 and sorted(w.tenants) == ["a", "b"]
    assert w.submit_s.tolist() == [0.0, 0.0, 1759.0]  # 29 min 19 s later
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"timestamp": ts, **base, "cluster": [[1], [2], [3]]}), nested)
    with pytest.raises(InvalidTrace, match=r"column cluster holds list<element: int64>, not text"):
        read_trace(nested)


PHILLY_ROWS = b"2017-09-04 10:30:41,100,1,100,a\n2017-09-04 10:31:00,50,2,100,b\n"


@pytest.mark.parametrize(("name", "body", "header"), [
    ("bom.csv", b"\xef\xbb\xbf" + PHILLY_HEADER + b"\n" + PHILLY_ROWS, 1),
    ("bom_blank.csv", b"\xef\xbb\xbf\n\n" + PHILLY_HEADER + b"\n" + PHILLY_ROWS, 3),
    ("p.csv.gz", gzip.compress(PHILLY_HEADER + b"\n" + PHILLY_ROWS), 1),
    ("cr.csv", (PHILLY_HEADER + b"\n" + PHILLY_ROWS).replace(b"\n", b"\r"), 1),
    ("crlf.csv", (PHILLY_HEADER + b"\n" + PHILLY_ROWS).replace(b"\n", b"\r\n"), 1),
    ("blanks.csv", b"\n" * 1001 + b"\r\n" * 500 + PHILLY_HEADER + b"\n" + PHILLY_ROWS, 1502),
])
def test_the_format_is_found_in_any_file_the_reader_reads(tmp_path, name, body, header):
    """Auto-detection reads the header as the reader does: decompressed, without a byte-order
    mark, after any number of empty lines, whatever the line ends."""
    p = tmp_path / name
    p.write_bytes(body)
    for fmt in ("auto", "philly"):
        w = read_trace(p, fmt)
        assert w.name == "philly" and len(w) == 2 and w.tenants == ["a", "b"]
        assert w.lines.tolist() == [header + 1, header + 2]
    assert read_table(p).table.column_names[0] == "timestamp"  # no \ufeff kept
    assert read_table(p).header_line == header


def test_an_unrecognised_header_is_named_at_its_line(tmp_path):
    p = tmp_path / "x.csv.gz"
    p.write_bytes(gzip.compress(b"\xef\xbb\xbf\r\r\ra,b\r1,2\r"))
    with pytest.raises(InvalidTrace, match=r"x\.csv\.gz, line 4: unrecognised columns 'a, b'"):
        read_trace(p)


def test_more_models_than_an_index_holds_are_refused_naming_the_column(tmp_path):
    n = MAX_MODELS + 1
    p = tmp_path / "m.csv"
    p.write_text("ts,run,n,host\n" + "".join(f"{i},10,1,h{i:05d}\n" for i in range(n)))
    with pytest.raises(InvalidTrace, match=rf"m\.csv: column host \(--columns model=host\) has "
                                           rf"{n:,} distinct values, at most {MAX_MODELS:,}"):
        read_trace(p, columns="submit=ts,duration=run,gpus=n,model=host")
    # one model fewer (and empty cells, no model) is read, each job with its own model
    p.write_text("ts,run,n,host\n0,10,1,\n" + "".join(f"{i},10,1,h{i:05d}\n"
                                                     for i in range(1, n)))
    w = read_trace(p, columns="submit=ts,duration=run,gpus=n,model=host")
    assert len(w.models) == MAX_MODELS and w.model[0] == -1
    assert [w.models[k] for k in w.model[1:]] == [f"h{i:05d}" for i in range(1, n)]


def test_a_null_model_in_parquet_is_no_model(tmp_path):
    p = tmp_path / "m.parquet"
    pq.write_table(pa.table({"ts": [1, 2, 3], "run": [10.0, 10.0, 10.0], "n": [1, 1, 1],
                             "gpu": pa.array(["V100", None, "V100"], pa.string())}), p)
    w = read_trace(p, columns="submit=ts,duration=run,gpus=n,model=gpu")
    assert w.models == ["V100"] and w.model.tolist() == [0, -1, 0]
