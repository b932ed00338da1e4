"""``parse_columns`` / ``read_trace(columns=…)``: a key given twice, an empty mapping and an
empty item are refused naming ``--columns``, never resolved by the last one winning or by
reading the file as if no mapping had been given."""

from __future__ import annotations

import pytest

from aicc.errors import InvalidTrace
from aicc.workload.readers import parse_columns, read_trace


@pytest.mark.parametrize("text, words", [
    ("submit=a,duration=b,gpus=c,gpus=d", "gpus is given twice"),
    ("submit=a,submit=a,duration=b,gpus=c", "submit is given twice"),
    ("", "empty"),
    ("submit=a,,duration=b,gpus=c", "empty item"),
    (",submit=a,duration=b,gpus=c", "empty item"),
    ("submit=a,duration=b,gpus=c,", "empty item"),
    ("submit=a,duration=b,=c", "expected KEY=COLUMN")])
def test_parse_columns_refuses(text, words):
    with pytest.raises(InvalidTrace) as exc:
        parse_columns(text)
    assert exc.value.field == "columns"
    assert exc.value.message.startswith("--columns") and words in exc.value.message


def test_empty_columns_text_is_refused_not_read_as_no_mapping(tmp_path):
    p = tmp_path / "philly-like.csv"
    p.write_text("timestamp,duration,num_gpus,gpu_time,cluster\n2017-10-09 07:01:55,66,1,66,a\n")
    assert len(read_trace(p)) == 1
    assert len(read_trace(p, columns={})) == 1  # an empty dict is still no mapping
    with pytest.raises(InvalidTrace, match="--columns: empty"):
        read_trace(p, columns="")
    with pytest.raises(InvalidTrace, match="--format philly reads its own columns"):
        read_trace(p, fmt="philly", columns="")
