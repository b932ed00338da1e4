"""The one way aicc talks to Slurm: its command-line clients, run with a timeout and SLURM_CONF.

Every failure (missing binary, non-zero exit, timeout, unparsable JSON) becomes an
:class:`~aicc.errors.EngineError` carrying the command and Slurm's own stderr, so an operator
reads what Slurm said rather than a Python traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aicc.errors import ConfigError, EngineError, EngineUnreachable


@dataclass
class CallStats:
    """How many client calls were made, and the time they took (for benchmarks and logs)."""

    calls: int = 0
    seconds: float = 0.0
    by_command: dict[str, int] = field(default_factory=dict)


NOTHING_FOUND = 9003
CONF_KEY = "engine.slurm_conf"
# What the clients print when slurm.conf cannot be found, or slurmctld / slurmdbd do not answer.
_UNREACHABLE = re.compile(
    r"Unable to contact slurm controller|Could not establish a configuration source"
    r"|Problem talking to the database|persistent connection to host|Connection refused",
    re.IGNORECASE)


class SlurmRunner:
    """Runs the Slurm clients (sbatch, squeue, sacct, sinfo, scontrol, scancel, sacctmgr)."""

    def __init__(self, slurm_conf: str | Path | None = None, *, bin_dir: str | Path | None = None,
                 timeout_s: float = 30.0) -> None:
        self.slurm_conf = str(slurm_conf) if slurm_conf else None
        self.bin_dir = Path(bin_dir) if bin_dir else None
        self.timeout_s = timeout_s
        self.stats = CallStats()
        self._lock = threading.Lock()
        env = dict(os.environ)
        if self.slurm_conf:
            env["SLURM_CONF"] = self.slurm_conf
        # Slurm clients read these and would change their output or defaults behind our back.
        for var in ("SQUEUE_FORMAT", "SQUEUE_FORMAT2", "SACCT_FORMAT", "SINFO_FORMAT",
                    "SBATCH_ACCOUNT", "SBATCH_PARTITION", "SLURM_TIME_FORMAT"):
            env.pop(var, None)
        self.env = env
        conf = env.get("SLURM_CONF")
        if conf and not Path(conf).is_file():
            # The clients would retry for a minute before saying so.
            given = conf if self.slurm_conf else f"not set, and SLURM_CONF={conf}"
            raise ConfigError(f"{CONF_KEY}: {given} is not a file; give the cluster's "
                              "slurm.conf", field=CONF_KEY)

    def _where(self) -> str:
        conf = self.env.get("SLURM_CONF")
        return f"with {conf}" if conf else "with the clients' default configuration"

    def _argv(self, args: Sequence[str]) -> list[str]:
        argv = [str(a) for a in args]
        if self.bin_dir is not None:
            argv[0] = str(self.bin_dir / argv[0])
        return argv

    def run(self, args: Sequence[str], *, stdin: str | None = None,
            timeout_s: float | None = None) -> str:
        """Run one client command; its stdout, or :class:`EngineError` with its stderr."""
        argv = self._argv(args)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                  env=self.env, timeout=timeout_s or self.timeout_s, check=False)
        except FileNotFoundError:
            raise EngineError(f"Slurm client {argv[0]!r} not found; is Slurm installed?",
                              command=argv[0]) from None
        except subprocess.TimeoutExpired:
            raise EngineError(
                f"{' '.join(argv[:3])} did not answer within {timeout_s or self.timeout_s:g} s",
                command=" ".join(argv)) from None
        finally:
            with self._lock:
                self.stats.calls += 1
                self.stats.seconds += time.perf_counter() - t0
                self.stats.by_command[args[0]] = self.stats.by_command.get(args[0], 0) + 1
        if proc.returncode != 0:
            err = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
            said = [ln.strip() for ln in err.splitlines() if _UNREACHABLE.search(ln)]
            if said:
                raise EngineUnreachable(
                    f"{CONF_KEY}: {args[0]} cannot reach Slurm {self._where()}: {said[-1]}",
                    field=CONF_KEY, command=" ".join(argv), stderr=proc.stderr.strip(),
                    returncode=proc.returncode)
            raise EngineError(f"{args[0]} failed: {err}", command=" ".join(argv),
                              stderr=proc.stderr.strip(), returncode=proc.returncode)
        return proc.stdout

    def json(self, args: Sequence[str], *, timeout_s: float | None = None) -> dict[str, Any]:
        """Run a client with ``--json`` and return the parsed document (errors it lists raise)."""
        out = self.run([*args, "--json"], timeout_s=timeout_s)
        try:
            doc = json.loads(out)
        except json.JSONDecodeError as exc:
            raise EngineError(f"{args[0]} --json printed something that is not JSON: {exc}",
                              command=" ".join(args)) from None
        if not isinstance(doc, dict):
            raise EngineError(f"{args[0]} --json printed {type(doc).__name__}, not an object",
                              command=" ".join(args))
        # sacct reports an empty result as an error (9003 "Nothing found"): it is not one.
        errors = [e for e in doc.get("errors") or []
                  if e and not (isinstance(e, dict) and e.get("error_number") == NOTHING_FOUND)]
        if errors and not any(doc.get(k) for k in ("jobs", "nodes")) and all(
                isinstance(e, dict) and e.get("errno") == -1 for e in errors):
            # What sinfo/squeue --json of Slurm 22.05 print when slurmctld does not answer.
            raise EngineUnreachable(
                f"{CONF_KEY}: {args[0]} cannot reach Slurm {self._where()}: slurmctld did not "
                f"answer ({args[0]} --json reported {errors})", field=CONF_KEY,
                command=" ".join(args))
        if errors:
            raise EngineError(f"{args[0]} reported: {errors}", command=" ".join(args))
        return doc


# --- hostlists -----------------------------------------------------------------------------

_RANGE = re.compile(r"\[([^\]]*)\]")


def expand_hostlist(expr: str) -> list[str]:
    """``n[1-3,7],gpu[01-02]`` -> ``[n1, n2, n3, n7, gpu01, gpu02]`` (Slurm's hostlist syntax)."""
    out: list[str] = []
    for part in _split_top(expr.strip()):
        if not part or part in {"(null)", "None"}:
            continue
        m = _RANGE.search(part)
        if m is None:
            out.append(part)
            continue
        head, tail = part[: m.start()], part[m.end():]
        for item in m.group(1).split(","):
            if "-" in item:
                lo, hi = item.split("-", 1)
                width = len(lo)
                out.extend(
                    f"{head}{i:0{width}d}{t}" for i in range(int(lo), int(hi) + 1)
                    for t in expand_hostlist(tail) or [""]
                )
            else:
                out.extend(f"{head}{item}{t}" for t in expand_hostlist(tail) or [""])
    return out


def _split_top(expr: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    parts, depth, cur = [], 0, []
    for ch in expr:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_kv_line(line: str) -> dict[str, str]:
    """One ``scontrol show … -o`` record (``Key=Value Key=Value``) as a dict.

    Values may contain spaces (``OS=Linux 6.1 #1 SMP``): a token without ``=`` belongs to the
    previous value.
    """
    out: dict[str, str] = {}
    last: str | None = None
    for tok in line.split():
        key, sep, value = tok.partition("=")
        if sep and key and re.fullmatch(r"[A-Za-z_:/]+", key):
            out[key] = value
            last = key
        elif last is not None:
            out[last] += " " + tok
    return out
