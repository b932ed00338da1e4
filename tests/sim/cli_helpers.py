"""Helpers for the ``aicc simulate`` command-line tests."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from aicc.cli import app


def sim(*args: str):
    """``aicc simulate ARGS`` through the CLI app; returns the click result."""
    return CliRunner().invoke(app, ["simulate", *args])


def one_line_error(r, code: int = 2) -> str:
    """The single ``error: …`` line of a refused command (asserts the exit code and no
    traceback)."""
    assert r.exit_code == code, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.output
    assert "Traceback" not in r.output
    return lines[0]


PHILLY = Path(__file__).resolve().parents[1] / "data" / "traces" / "philly-first3000.csv"


def philly_slice(tmp_path: Path, rows: int = 400) -> Path:
    """The first ``rows`` jobs of the kept Philly slice, as a trace file under ``tmp_path``."""
    with PHILLY.open() as fh:
        lines = [next(fh) for _ in range(rows + 1)]
    p = tmp_path / "philly-slice.csv"
    p.write_text("".join(lines))
    return p
