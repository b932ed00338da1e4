"""The ``aicc`` command as a process: what no single command can check (arguments and variables
that are not text, an output that cannot be written) is one error line, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

AICC = [sys.executable, "-m", "aicc"]  # (the installed `aicc` runs aicc.__main__:main)


def _run(args: list[str | bytes], env: dict[str, str | bytes] | None = None,
         stdout: int | object = subprocess.PIPE) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AICC_")}
    environb = {k.encode(): v.encode() for k, v in environ.items()}
    for k, v in (env or {}).items():
        environb[k.encode()] = v if isinstance(v, bytes) else v.encode()
    return subprocess.run([*AICC, *args], env=environb, stdout=stdout,  # type: ignore[arg-type]
                          stderr=subprocess.PIPE, timeout=120, check=False)


def _one_error_line(r: subprocess.CompletedProcess) -> str:
    text = r.stderr.decode()
    assert "Traceback" not in text, text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    return lines[0]


@pytest.mark.parametrize(("args", "names"), [
    (["jobs", "submit", "-p", "x", "-t", "h100-sxm-80g", "-g", "1", "--time-limit", "5",
      "--name", b"\xff"], "--name"),
    (["jobs", "list", b"--state=\xff"], "--state"),
    (["usage", "--start", b"2030\xff"], "--start"),
])
def test_an_argument_that_is_not_utf8_is_named(args: list[str | bytes], names: str) -> None:
    r = _run(args)
    assert r.returncode == 2
    assert _one_error_line(r) == f"error: {names}: not valid UTF-8 text"


def test_a_variable_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    r = _run(["db", "upgrade"], env={"AICC_DATABASE_URL": b"sqlite:///" +
                                     str(tmp_path).encode() + b"/x\xff.db"})
    assert r.returncode == 2
    assert _one_error_line(r) == "error: AICC_DATABASE_URL: not valid UTF-8 text"
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_cannot_be_written_is_one_error() -> None:
    with open("/dev/full", "w") as full:
        r = _run(["fleet", "show"], stdout=full.fileno())
    assert r.returncode == 1
    assert _one_error_line(r) == "error: cannot write the output (No space left on device)"


@pytest.mark.parametrize(("args", "says"), [
    (["jobs", "show", "-1"], "error: No such option: -1 (see aicc jobs show --help)"),
    (["jobs", "submit"], "error: Missing option '--project' / '-p'. (see aicc jobs submit "
                         "--help)"),
    (["usage", "--by", "foo"], "error: Invalid value for '--by': 'foo' is not one of "
                               "'project', 'organization', 'sector'. (see aicc usage --help)"),
    (["jobs", "list", "extra"], "error: Got unexpected extra argument(s) (extra) (see aicc "
                                "jobs list --help)"),
])
def test_the_option_parsers_refusals_are_one_line(args: list[str | bytes], says: str) -> None:
    r = _run(args)
    assert r.returncode == 2
    assert _one_error_line(r) == says


def test_a_group_alone_shows_its_help() -> None:
    r = _run(["jobs"])
    assert r.returncode == 2 and b"submit" in r.stdout + r.stderr and b"Traceback" not in \
        r.stderr


class _Interrupt:
    """An import finder that stands for Ctrl-C pressed while ``aicc.cli`` is imported."""

    def find_spec(self, name: str, *_: object) -> None:
        if name == "aicc.cli":
            raise KeyboardInterrupt


def test_an_interrupt_during_start_up_ends_quietly_with_130(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from aicc.__main__ import main

    monkeypatch.delitem(sys.modules, "aicc.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_Interrupt(), *sys.meta_path])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 130
    assert capsys.readouterr().err == ""


def test_ctrl_c_right_after_start_is_quiet() -> None:
    # the real process, interrupted while its modules load (they take most of a second)
    p = subprocess.Popen([*AICC, "jobs", "list"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env={k: v for k, v in os.environ.items()
                                                      if not k.startswith("AICC_")})
    time.sleep(0.2)
    p.send_signal(signal.SIGINT)
    _, errs = p.communicate(timeout=60)
    assert p.returncode == 130 and b"Traceback" not in errs, errs.decode()
