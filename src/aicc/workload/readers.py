"""Trace readers: Philly, Alibaba GPU 2023, Helios, and any CSV/Parquet with a column mapping.

Two kinds of trouble are kept apart. A *malformed file* (not CSV/Parquet, a row with the wrong
number of fields, a required column missing) raises :class:`~aicc.errors.InvalidTrace` naming
the file and line. An *invalid row* in a well-formed file (an unparseable or missing value,
zero GPUs, a negative runtime) is counted by reason in :class:`~aicc.workload.trace.RowAccount`
and reported; nothing is dropped silently. See ``docs/simulation.md`` for each reader's rules.
"""

from __future__ import annotations

import io
import os
import re
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from aicc.errors import InvalidTrace
from aicc.scheduler.snapshot import JobClass
from aicc.workload.trace import RowAccount, Workload, build

FORMATS = ("auto", "philly", "alibaba", "helios", "columns")
MAPPABLE = ("submit", "duration", "start", "end", "gpus", "tenant", "model")

PHILLY_COLUMNS = ("timestamp", "duration", "num_gpus", "cluster")
ALIBABA_COLUMNS = ("creation_time", "deletion_time", "scheduled_time", "num_gpu", "gpu_milli",
                   "qos", "pod_phase")
HELIOS_COLUMNS = ("job_id", "user", "vc", "gpu_num", "cpu_num", "node_num", "state",
                  "submit_time", "start_time", "end_time", "duration", "queue")


def repo_root() -> Path | None:
    """The checkout holding this package (the folder with ``pyproject.toml``), if any."""
    for base in (Path.cwd(), Path(__file__).resolve()):
        for p in (base, *base.parents):
            if (p / "pyproject.toml").exists() and (p / "src" / "aicc").is_dir():
                return p
    return None


TRACE_DIR_ENV = "AICC_TRACE_DIR"


def default_trace_dir() -> Path:
    """Where the public traces live: ``AICC_TRACE_DIR``, else ``../shared/traces`` relative to
    the repository root."""
    given = os.environ.get(TRACE_DIR_ENV)
    if given:
        return Path(given)
    root = repo_root()
    return (root.parent if root else Path.cwd()) / "shared" / "traces"


def resolve_trace(spec: str | Path) -> Path:
    """A trace path, or a short name: ``philly`` or ``alibaba`` (found under the shared traces).
    Every error starts with ``spec`` as given (the command line puts ``--trace`` before it)."""
    s = str(spec)
    named = {"philly": "philly/philly.csv",
             "alibaba": "alibaba-gpu-2023/openb_pod_list_default.csv"}
    if s in named:
        p = default_trace_dir() / named[s]
        if not p.exists():
            raise InvalidTrace(f"{s}: not found at {p}; set {TRACE_DIR_ENV} or pass --trace PATH",
                               field="trace")
        return p
    if not s.strip():
        raise InvalidTrace("no trace given: give a trace file, philly or alibaba", field="trace")
    p = Path(s)
    if p.is_dir():
        pods = p / "openb_pod_list_default.csv"
        if pods.exists():
            return pods
        raise InvalidTrace(f"{s}: is a folder; give a trace file (a folder is read only when "
                           "it holds the Alibaba trace's openb_pod_list_default.csv)",
                           field="trace")
    if not p.exists():
        raise InvalidTrace(f"{s}: trace file does not exist", field="trace")
    return p


def parse_columns(text: str) -> dict[str, str]:
    """``submit=ts,duration=run,gpus=n,tenant=vc`` → a mapping, validated: an empty mapping,
    an empty item (``a=b,,c=d``, a trailing comma), an empty key or column, an unknown key and
    a key given twice are each refused, naming ``--columns``."""
    if not text.strip():
        raise InvalidTrace("--columns: empty; give KEY=COLUMN pairs: at least submit=, gpus= "
                           "and duration= or end=", field="columns")
    out: dict[str, str] = {}
    for part in (x.strip() for x in text.split(",")):
        if not part:
            raise InvalidTrace(f"--columns: empty item in {excerpt(text)}; separate the "
                               "KEY=COLUMN pairs with single commas", field="columns")
        key, sep, col = part.partition("=")
        key, col = key.strip(), col.strip()
        if re.search(r"\s\w+=", col) or re.search(r"\s", key):
            raise InvalidTrace(f"--columns: {excerpt(part)} holds several KEY=COLUMN pairs; "
                               "separate them with commas, not spaces (submit=ts,gpus=n)",
                               field="columns")
        if not sep or not key or not col:
            raise InvalidTrace(f"--columns: expected KEY=COLUMN, got {excerpt(part)}",
                               field="columns")
        if key not in MAPPABLE:
            raise InvalidTrace(f"--columns: unknown key {excerpt(key)}; known: "
                               f"{', '.join(MAPPABLE)}", field="columns")
        if key in out:
            raise InvalidTrace(f"--columns: {key} is given twice ({key}={out[key]} and "
                               f"{key}={col}); give each key once", field="columns")
        out[key] = col
    lacking = [k for k in ("submit", "gpus") if k not in out]
    if lacking:
        given = ", ".join(f"{k}=" for k in out)
        raise InvalidTrace(f"--columns needs {' and '.join(f'{k}=' for k in lacking)} (given: "
                           f"{given}); submit= and gpus= are required", field="columns")
    if "duration" not in out and "end" not in out:
        raise InvalidTrace("--columns needs duration= or end= (with start= or submit)",
                           field="columns")
    if "duration" in out and ("end" in out or "start" in out):
        other = "end" if "end" in out else "start"
        raise InvalidTrace(f"--columns: duration= and {other}= both give the runtime; give "
                           "duration=, or end= (with start=, else from submit)",
                           field="columns")
    return out


# --- file access -------------------------------------------------------------------------------


def excerpt(text: str, limit: int = 60) -> str:
    """A short, escaped quotation of file content for an error message: a binary file's bytes
    must never reach the terminal raw."""
    n = min(len(text), limit)
    while len(repr(text[:n])) > limit + 2:  # escapes (\x00) count against the limit too
        n //= 2
    return repr(text[:n]) + ("…" if n < len(text) else "")


def _arrow_detail(msg: str) -> str:
    """Arrow's CSV error without its echo of the raw row: the row is quoted by ``excerpt``."""
    detail = _ROW_RE.sub("", msg.replace("CSV parse error: ", "")).strip(": ")
    head, sep, rest = detail.partition(": ")
    if sep and ("got" in head or "column" in head.lower()):
        return f"{head}: {excerpt(rest)}"
    return excerpt(detail, 200)[1:-1] if not detail.isprintable() else detail[:200]

_ROW_RE = re.compile(r"Row #(\d+)")

# Text that means "no value" in a numeric column (Arrow's defaults without its NaN spellings):
# ``nan`` / ``NaN`` is read as the number NaN and counted as ``nonfinite_<column>``, not taken
# for a missing value.
CSV_NULLS = ["", "#N/A", "#N/A N/A", "#NA", "N/A", "NA", "NULL", "n/a", "null"]


class TableRead(NamedTuple):
    """A file's table, the file line of each data row, and the line of the header."""

    table: pa.Table
    lines: np.ndarray  # int64, one per row
    header_line: int


BOM = b"\xef\xbb\xbf"  # UTF-8 byte-order mark


def physical_lines(data: bytes) -> np.ndarray | None:
    """The (1-based) file line of each non-empty line of ``data``, or None when no line is
    empty (the k-th non-empty line is then line k). Arrow's CSV reader skips empty lines, so
    its row k is the k-th non-empty line; line ends are LF, CRLF or CR, as for Arrow. A UTF-8
    byte-order mark at the start is no content (Arrow drops it): a line holding only it is empty."""
    data = data.removeprefix(BOM)
    if not (data[:1] in (b"\n", b"\r") or b"\n\n" in data or b"\r\r" in data
            or b"\n\r" in data):
        return None  # the fast path: no empty line anywhere
    b = np.frombuffer(data, dtype=np.uint8)
    cr = b == 13
    lf = b == 10
    crlf = np.zeros(len(b), dtype=bool)
    crlf[:-1] = cr[:-1] & lf[1:]  # a CR followed by LF: one line end of two bytes
    lf_in_crlf = np.zeros(len(b), dtype=bool)
    lf_in_crlf[1:] = crlf[:-1]
    ends = np.flatnonzero(cr | (lf & ~lf_in_crlf))
    starts = np.concatenate(([0], ends + 1 + crlf[ends]))
    stops = np.concatenate((ends, [len(b)]))
    return np.flatnonzero(stops > starts) + 1


def _csv_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed as Arrow would (``.gz``, ``.bz2``, … by the suffix)."""
    with pa.input_stream(str(path), compression="detect") as fh:
        return fh.read()


def read_table(path: Path) -> TableRead:
    """Read a CSV or Parquet file. Line numbers are the file's own: a CSV's blank lines (which
    Arrow skips) are counted; a Parquet row's "line" is its row number from 1."""
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidTrace(f"{path}: not a readable Parquet file ({exc})", field="trace",
                               line=None) from None
        return TableRead(table, np.arange(table.num_rows, dtype=np.int64) + 1, 1)
    try:
        data = _csv_bytes(path)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidTrace(f"{path}: cannot read ({exc})", field="trace", line=None) from None
    if not data.strip():
        raise InvalidTrace(f"{path}: the file is empty", field="trace", line=None)
    _check_quotes(path, data)
    phys = physical_lines(data)

    def file_line(row: int) -> int:  # Arrow's row (1-based, the header is row 1)
        return int(phys[row - 1]) if phys is not None and 0 < row <= len(phys) else row

    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(null_values=CSV_NULLS),
        )
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        m = _ROW_RE.search(msg)
        line = file_line(int(m.group(1))) if m else (1 if "Empty CSV" in msg else None)
        detail = _arrow_detail(msg)
        where = f", line {line}" if line else ""
        raise InvalidTrace(f"{path}{where}: {detail}", field="trace", line=line) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidTrace(f"{path}: cannot read ({exc})", field="trace", line=None) from None
    n = table.num_rows
    if phys is None:
        return TableRead(table, np.arange(n, dtype=np.int64) + 2, 1)
    return TableRead(table, phys[1:n + 1].astype(np.int64), int(phys[0]) if len(phys) else 1)


def _unclosed_quote(line: str) -> bool:
    """Whether a field of ``line`` opens a quote (a ``"`` at its start) that the line does not
    close (``""`` inside it is an escaped quote). A quote inside an unquoted field is text."""
    i, n = 0, len(line)
    while True:
        if line.startswith('"', i):
            j = i + 1
            while True:
                j = line.find('"', j)
                if j < 0:
                    return True
                if line.startswith('""', j):
                    j += 2
                    continue
                break
            i = j + 1
        i = line.find(",", i)
        if i < 0:
            return False
        i += 1
        if i > n:
            return False


def _check_quotes(path: Path, data: bytes) -> None:
    """Refuse a quoted value left open at the end of its line: values may not hold line breaks
    here, and Arrow would otherwise read on to the next closing quote, or to the end of the file
    (a tenant ``'vc1\n'``, or several rows taken for one value)."""
    if b'"' not in data:
        return
    for no, raw in enumerate(data.splitlines(), 1):
        if b'"' in raw:
            line = raw.decode("utf-8", "replace")
            if _unclosed_quote(line):
                raise InvalidTrace(f"{path}, line {no}: a quoted value is not closed on its "
                                   f"line (unterminated quote): {excerpt(line)}",
                                   field="trace", line=no)


def _require(read: TableRead, path: Path, cols: tuple[str, ...] | list[str],
             mapping: dict[str, str] | None = None) -> None:
    """Every column of ``cols`` is in the file, else :class:`InvalidTrace` naming the missing
    ones (with the ``--columns`` key that named each, when they came from ``mapping``)."""
    table, line = read.table, read.header_line
    dup = [c for c in dict.fromkeys(cols) if table.column_names.count(c) > 1]
    if dup:  # which of them to take is a guess: refused (duplicates the reader ignores are not)
        raise InvalidTrace(f"{path}, line {line}: column(s) {excerpt(', '.join(dup))} appear "
                           "more than once in the header; rename them", field="trace",
                           line=line)
    missing = [c for c in cols if c not in table.column_names]
    if missing:
        keys = {col: key for key, col in (mapping or {}).items()}
        named = [f"{c} (--columns {keys[c]}={c})" if c in keys else c for c in missing]
        raise InvalidTrace(
            f"{path}, line {line}: missing column(s) {', '.join(named)}; "
            f"found: {excerpt(', '.join(table.column_names), 200)}", field="trace", line=line)


def _is_bytes(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def _plain(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """A dictionary-encoded column (a pandas ``category``) as its values, and bytes (what a
    CSV column holding text that is not UTF-8 reads as) as text, each value decoded on its own
    so that one bad byte spoils its row only (the replacement character makes it unparseable)."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if _is_bytes(col.type):
        col = pa.chunked_array([pa.array(
            [None if v is None else v.decode("utf-8", "replace") for v in col.to_pylist()],
            pa.string())])
    return col


def _as_str(read: TableRead, path: Path, name: str) -> np.ndarray:
    """Column ``name`` as text (labels: tenants, models, phases). Text that is not UTF-8 is
    refused at its line (decoding it one way or another could merge distinct labels), and so
    is a column of lists or structs."""
    col = read.table[name]
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    t = col.type
    if _is_bytes(t):
        for i, v in enumerate(col.to_pylist()):
            try:
                if v is not None:
                    v.decode("utf-8")
            except UnicodeDecodeError:
                line = int(read.lines[i])
                raise InvalidTrace(f"{path}, line {line}: column {name}: the text is not UTF-8 "
                                   "(save the file as UTF-8)", field="trace", line=line) from None
    try:
        return np.asarray(_plain(col).cast(pa.string()).to_pylist(), dtype=object)
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowInvalid):
        raise InvalidTrace(f"{path}: column {name} holds {t}, not text", field="trace",
                           line=None) from None


def _numbers(account: RowAccount, name: str, col: pa.ChunkedArray, lines: np.ndarray,
             counted: np.ndarray, parse) -> np.ndarray:
    """Column ``col`` read by ``parse`` (:func:`to_float` or :func:`to_seconds`), its bad
    cells counted (:func:`_reject_unparseable`) on the same decoded text, so that a null
    spelling is a missing value in a column of bytes or categories too."""
    col = _plain(col)
    if pa.types.is_boolean(col.type):  # true/false would pass for 1/0: a wrong column
        raise InvalidTrace(f"the {name} column holds true/false values, not numbers; map "
                           f"{name} to a numeric column", field="trace")
    values = parse(col)
    _reject_unparseable(account, name, col, values, lines, counted)
    return values


def _float_fallback(values: list[object], parse) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None or v == "":
            continue
        try:
            out[i] = parse(v)
        except (TypeError, ValueError):
            out[i] = np.nan
    return out


_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}


def _in_seconds(col: pa.ChunkedArray) -> np.ndarray:
    """An Arrow duration or timestamp column in seconds (float64; nulls become NaN): the
    integer count of its unit over the unit, so sub-second values are kept."""
    ticks = pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False).astype(np.float64)
    return ticks / _PER_SECOND[col.type.unit]


def to_float(col: pa.ChunkedArray) -> np.ndarray:
    """Numbers as float64; nulls and unparseable text become NaN (counted by the caller). An
    Arrow duration (a Parquet ``INTERVAL``/duration column, e.g. from pandas' timedelta) is
    converted to seconds."""
    col = _plain(col)
    t = col.type
    if pa.types.is_duration(t):
        return _in_seconds(col)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
    if pa.types.is_null(t):
        return np.full(len(col), np.nan)
    try:
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _float_fallback(col.to_pylist(), float)


def _iso_seconds(v: object) -> float:
    if isinstance(v, datetime):
        return v.timestamp() if v.tzinfo else (v - datetime(1970, 1, 1)).total_seconds()
    s = str(v).strip()
    try:
        return float(s)
    except ValueError:
        dt = datetime.fromisoformat(s)
        return dt.timestamp() if dt.tzinfo else (dt - datetime(1970, 1, 1)).total_seconds()


def to_seconds(col: pa.ChunkedArray) -> np.ndarray:
    """Seconds (float64) from numbers (already seconds) or timestamps (naive = UTC)."""
    col = _plain(col)
    t = col.type
    if pa.types.is_timestamp(t):
        return _in_seconds(col)
    if pa.types.is_date(t):
        return _in_seconds(pc.cast(col, pa.timestamp("s")))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            secs = pc.cast(pc.cast(col, pa.timestamp("s")), pa.int64())
            return secs.to_numpy(zero_copy_only=False).astype(np.float64)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return _float_fallback(col.to_pylist(), _iso_seconds)
    return to_float(col)


def _is_number(v: object) -> bool:
    """Whether a raw value is a number (``nan`` and ``inf`` included), as opposed to text that
    is no number at all."""
    if isinstance(v, (int, float)):
        return True
    try:
        float(str(v).strip())
    except ValueError:
        return False
    return True


def _reject_unparseable(account: RowAccount, name: str, col: pa.ChunkedArray, values: np.ndarray,
                        lines: np.ndarray, counted: np.ndarray) -> None:
    """Tell apart a missing value (null/empty, left to build() as ``missing_<field>``) from one
    that is present but no finite number: ``nonfinite_<name>`` (NaN or ±infinity, written
    ``nan``, ``inf``, …) or ``unparseable_<name>`` (anything else). Those are counted here
    (once per row, in ``counted``) and left to build() as excluded."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    present = ~np.asarray(pc.is_null(col).to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        # a text column keeps its null spellings (NA, null, …): they are missing values too
        blank = pc.is_in(col, value_set=pa.array(CSV_NULLS, col.type)).fill_null(True)
        present &= ~np.asarray(blank.to_numpy(zero_copy_only=False), dtype=bool)
    new = bad & present & ~counted
    rows = np.flatnonzero(new)
    if len(rows):  # only the bad rows' raw values are looked at
        raw = col.take(pa.array(rows)).to_pylist()
        number = np.zeros(len(values), dtype=bool)
        number[rows] = [_is_number(v) for v in raw]
        account.reject(f"nonfinite_{name}", new & number, lines)
        account.reject(f"unparseable_{name}", new & ~number, lines)
    counted |= new


# --- readers -------------------------------------------------------------------------------------


def read_philly(path: Path) -> Workload:
    """Philly (ATC'19 derivative): submit timestamp text, duration s, num_gpus, cluster = tenant."""
    read = read_table(path)
    _require(read, path, PHILLY_COLUMNS)
    return _assemble("philly", path, read, submit="timestamp", duration="duration",
                     gpus="num_gpus", tenant="cluster")


def read_helios(path: Path) -> Workload:
    """Helios (SenseTime, SC'21) format; the virtual cluster ``vc`` is the tenant."""
    read = read_table(path)
    _require(read, path, ("vc", "gpu_num", "submit_time", "duration"))
    return _assemble("helios", path, read, submit="submit_time", duration="duration",
                     gpus="gpu_num", tenant="vc")


def read_alibaba(path: Path) -> Workload:
    """Alibaba PAI GPU-sharing pods (ATC'23). A pod asks ``num_gpu`` GPUs, or a share
    ``gpu_milli``/1000 of one; a share is rounded up to one whole accelerator (counted). The
    runtime is deletion − scheduled time; pods still ``Pending`` never ran and are counted invalid.
    The QoS class is the tenant; best-effort (BE) pods are flexible and preemptible."""
    read = read_table(path)
    has_spec = "gpu_spec" in read.table.column_names
    _require(read, path, (*ALIBABA_COLUMNS, *(("gpu_spec",) if has_spec else ())))
    table, lines = read.table, read.lines
    n = table.num_rows
    account = RowAccount()
    counted = np.zeros(n, dtype=bool)
    cols = {k: _numbers(account, k, table[k], lines, counted, to_float)
            for k in ("creation_time", "deletion_time", "scheduled_time", "num_gpu", "gpu_milli")}
    phase = _as_str(read, path, "pod_phase")
    qos = _as_str(read, path, "qos")
    never = phase == "Pending"
    submit = (cols["creation_time"])
    runtime = (cols["deletion_time"]) - (cols["scheduled_time"])
    account.reject("never_scheduled", never & ~counted, lines)
    num = (cols["num_gpu"])
    milli = (cols["gpu_milli"])
    gpus = np.where((num == 1) & (milli < 1000), milli / 1000.0, num)
    gpus = np.where((num == 1) & (milli == 0), 0.0, gpus)  # (a negative share: negative_gpus)
    model = _as_str(read, path, "gpu_spec") if has_spec else None
    if model is not None:
        model = np.array([(m or "").split("|")[0] for m in model], dtype=object)
    be = qos == "BE"
    job_class = np.where(be, int(JobClass.FLEXIBLE), int(JobClass.BATCH))
    return build("alibaba-gpu-2023", submit=submit, runtime=runtime, gpus=gpus,
                 tenant_labels=qos, lines=lines, account=account, model_labels=model,
                 job_class=job_class, preemptible=be, excluded=never | counted,
                 source=str(path), model_column="gpu_spec")


def read_columns(path: Path, mapping: dict[str, str]) -> Workload:
    """Any CSV or Parquet with ``mapping`` (see :func:`parse_columns`) naming its columns."""
    read = read_table(path)
    _require(read, path, list(dict.fromkeys(mapping.values())), mapping)
    return _assemble(path.stem, path, read, **mapping)


def _assemble(name: str, path: Path, read: TableRead, *, submit: str, gpus: str,
              duration: str | None = None, start: str | None = None, end: str | None = None,
              tenant: str | None = None, model: str | None = None) -> Workload:
    table, lines = read.table, read.lines
    n = table.num_rows
    account = RowAccount()
    counted = np.zeros(n, dtype=bool)
    sub = _numbers(account, "submit", table[submit], lines, counted, to_seconds)
    if duration is not None:
        run = _numbers(account, "duration", table[duration], lines, counted, to_float)
    else:
        assert end is not None
        e = _numbers(account, "end", table[end], lines, counted, to_seconds)
        if start is not None:
            s = _numbers(account, "start", table[start], lines, counted, to_seconds)
        else:
            s = sub
        # an empty end or start is missing_end / missing_start, not a missing runtime (after
        # a missing submit, which build() counts first)
        has_submit = np.isfinite(sub)
        for name, v in (("end", e), ("start", s if start is not None else None)):
            if v is not None:
                gone = ~np.isfinite(v) & ~counted & has_submit
                account.reject(f"missing_{name}", gone, lines)
                counted |= gone
        run = (e) - (s)
    g = _numbers(account, "gpus", table[gpus], lines, counted, to_float)
    labels = _as_str(read, path, tenant) if tenant else np.full(n, "default", dtype=object)
    models = _as_str(read, path, model) if model else None
    return build(name, submit=(sub), runtime=(run), gpus=(g),
                 tenant_labels=labels, lines=lines, account=account, model_labels=models,
                 excluded=counted, source=str(path),
                 model_column=f"{model} (--columns model={model})" if model else "model")


def detect_format(table_columns: list[str]) -> str:
    cols = set(table_columns)
    if set(PHILLY_COLUMNS) <= cols:
        return "philly"
    if set(ALIBABA_COLUMNS) <= cols:
        return "alibaba"
    if {"vc", "gpu_num", "submit_time", "duration"} <= cols:
        return "helios"
    return "unknown"


# The longest header line looked at to tell a file's format (a binary file may have no line end)
HEADER_LIMIT = 1 << 20


def _csv_header(path: Path) -> tuple[str, int]:
    """A CSV file's header line and its line number, found as the reader finds it (Arrow's):
    decompressed by the suffix, without a UTF-8 byte-order mark, after any number of empty lines,
    whatever the line ends (LF, CRLF or CR). ``("", 0)`` when the file holds no line but empty
    ones. Only the start of the file is read."""
    try:
        with io.TextIOWrapper(pa.input_stream(str(path), compression="detect"),
                              encoding="utf-8-sig", errors="replace", newline=None) as text:
            line = 0
            while raw := text.readline(HEADER_LIMIT):
                line += 1
                if raw != "\n":
                    return raw.removesuffix("\n"), line
    except (pa.ArrowException, OSError) as exc:
        raise InvalidTrace(f"{path}: cannot read ({exc})", field="trace", line=None) from None
    return "", 0


def read_trace(spec: str | Path, fmt: str = "auto", columns: str | dict[str, str] | None = None
               ) -> Workload:
    """Read any supported trace. ``columns`` (a mapping or ``k=v,…`` text) is the ``columns``
    format: ``fmt`` must then be ``auto`` or ``columns`` (a named format has its own columns, so
    asking for both is refused rather than one silently ignored)."""
    if fmt not in FORMATS:
        raise InvalidTrace(f"--format: unknown trace format {excerpt(fmt)}; known: "
                           f"{', '.join(FORMATS)}", field="format")
    if isinstance(columns, dict) and not columns:
        columns = None  # an empty dict is no mapping; empty text is refused by parse_columns
    if columns is not None and fmt not in ("auto", "columns"):
        raise InvalidTrace(f"--format {fmt} reads its own columns; give --format {fmt} or "
                           "--columns, not both", field="format")
    path = resolve_trace(spec)
    if columns is not None:  # an empty mapping is refused, not taken for no mapping
        mapping = parse_columns(columns) if isinstance(columns, str) else columns
        return read_columns(path, mapping)
    if fmt == "auto":
        if path.suffix.lower() in (".parquet", ".pq"):
            line = 1
            try:
                names = pq.read_schema(path).names
            except (pa.ArrowException, OSError) as exc:
                raise InvalidTrace(f"{path}: not a readable Parquet file ({exc})",
                                   field="trace") from None
        else:
            header, line = _csv_header(path)
            if not header.strip():  # no header at all: the reader says why (empty, …)
                line = read_table(path).header_line
            names = [c.strip().strip('"') for c in header.split(",")]
        fmt = detect_format(names)
        if fmt == "unknown":
            raise InvalidTrace(
                f"{path}, line {line}: unrecognised columns {excerpt(', '.join(names))}; "
                "give --format or --columns submit=…,duration=…,gpus=…,tenant=…",
                field="trace", line=line)
    if fmt == "columns":
        raise InvalidTrace("--format columns needs --columns", field="columns")
    reader = {"philly": read_philly, "alibaba": read_alibaba, "helios": read_helios}[fmt]
    return reader(path)
