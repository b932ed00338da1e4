"""The error tree maps to HTTP statuses and exit codes by walking the class hierarchy."""

from __future__ import annotations

import pytest

from aicc import errors as e


@pytest.mark.parametrize(("exc", "status", "exit_code"), [
    (e.InvalidJobShape("x"), 422, 2),
    (e.InvalidPeriod("x"), 422, 2),
    (e.UnknownProject("x"), 404, 3),
    (e.UnknownAcceleratorType("x"), 422, 2),
    (e.AuthenticationFailed("x"), 401, 4),
    (e.PermissionDenied("x"), 403, 4),
    (e.InvalidTransition("x"), 409, 5),
    (e.QuotaExceeded("x"), 409, 5),
    (e.PayloadTooLarge("x"), 413, 2),
    (e.EngineError("x"), 502, 6),
    (e.AiccError("x"), 400, 1),
])
def test_nearest_mapping_wins(exc: e.AiccError, status: int, exit_code: int) -> None:
    assert e.lookup(e.HTTP_STATUS, exc) == status
    assert e.lookup(e.EXIT_CODE, exc) == exit_code


def test_error_carries_field_and_details() -> None:
    exc = e.InvalidJobShape("too big", field="gang.per_node", largest=8)
    assert exc.to_dict() == {"code": "invalid_job_shape", "message": "too big",
                             "field": "gang.per_node", "details": {"largest": 8}}
    assert e.UnknownJob("gone").to_dict() == {"code": "unknown_job", "message": "gone"}
