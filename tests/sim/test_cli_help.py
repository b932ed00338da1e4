"""``aicc simulate --help`` names where the public traces are found and how to choose a phase
of a phases file."""

from __future__ import annotations

from .cli_helpers import sim


def test_help_names_the_trace_folder_variable_and_the_phase_syntax():
    r = sim("--help")
    assert r.exit_code == 0
    text = " ".join(r.output.replace("│", " ").split())
    assert "$AICC_TRACE_DIR" in text
    assert "../shared/traces" not in text
    assert "FILE.toml:PHASE" in text
