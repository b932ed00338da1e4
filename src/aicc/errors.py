"""The one exception tree of aicc.

Domain code raises these; only the edges (``api/errors.py`` and ``cli.py``) map them to HTTP
statuses and exit codes, by walking the class hierarchy (the first class with a mapping wins)::

    AiccError
    ├── InvalidInput                 422   bad value in a request, file or config
    │   ├── InvalidJobShape          422   a gang no node can hold, zero or negative counts
    │   ├── InvalidPeriod            422   an end before a start
    │   ├── InvalidTrace             422   a malformed trace file (carries the line number)
    │   └── ConfigError              —     a bad aicc.toml or environment override
    ├── NotFound                     404   unknown id, or one the caller may not see
    │   ├── UnknownSector
    │   ├── UnknownOrganization
    │   ├── UnknownProject
    │   ├── UnknownUser
    │   ├── UnknownGrant
    │   ├── UnknownJob
    │   ├── UnknownNode
    │   └── UnknownAcceleratorType
    ├── AuthenticationFailed         401   missing, malformed or unknown token
    ├── PermissionDenied             403   known caller, action outside its role
    ├── Conflict                     409   duplicate name, illegal state transition
    │   └── InvalidTransition        409   a job state change the life cycle forbids
    ├── QuotaExceeded                409   grant exhausted or over its limit
    ├── PayloadTooLarge              413
    └── EngineError                  502   the execution engine failed or refused
        └── EngineUnreachable        502   the engine cannot be reached with its configuration
                                           (exit 2 on the command line: a setting to check)
"""

from __future__ import annotations

from typing import Any


class AiccError(Exception):
    """Base of every error aicc raises on purpose.

    ``field`` names the input at fault (a dotted path such as ``body.gang.nodes``) so that every
    edge can tell the caller exactly what to fix.
    """

    code: str = "error"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        if self.details:
            out["details"] = self.details
        return out


class InvalidInput(AiccError):
    code = "invalid_input"


class InvalidJobShape(InvalidInput):
    code = "invalid_job_shape"


class InvalidPeriod(InvalidInput):
    code = "invalid_period"


class InvalidTrace(InvalidInput):
    code = "invalid_trace"


class ConfigError(InvalidInput):
    code = "config_error"


class NotFound(AiccError):
    code = "not_found"


class UnknownSector(NotFound):
    code = "unknown_sector"


class UnknownOrganization(NotFound):
    code = "unknown_organization"


class UnknownProject(NotFound):
    code = "unknown_project"


class UnknownUser(NotFound):
    code = "unknown_user"


class UnknownGrant(NotFound):
    code = "unknown_grant"


class UnknownJob(NotFound):
    code = "unknown_job"


class UnknownNode(NotFound):
    code = "unknown_node"


class UnknownAcceleratorType(InvalidInput):
    """An accelerator type name outside the catalog: an unknown value of an enumeration, so
    invalid input (422, exit 2) wherever it is given, like an unknown job class or state."""

    code = "unknown_accelerator_type"


class AuthenticationFailed(AiccError):
    code = "authentication_failed"


class PermissionDenied(AiccError):
    code = "permission_denied"


class Conflict(AiccError):
    code = "conflict"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class QuotaExceeded(AiccError):
    code = "quota_exceeded"


class PayloadTooLarge(AiccError):
    code = "payload_too_large"


class EngineError(AiccError):
    code = "engine_error"


class EngineUnreachable(EngineError):
    """The engine's services cannot be reached (no slurm.conf, slurmctld or slurmdbd not
    answering): like an unreachable database, the configuration is the thing to check, so the
    command line exits 2 naming the setting; the control loop retries it like any engine error."""

    code = "engine_unreachable"


HTTP_STATUS: dict[type[AiccError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    AuthenticationFailed: 401,
    PermissionDenied: 403,
    Conflict: 409,
    QuotaExceeded: 409,
    PayloadTooLarge: 413,
    EngineError: 502,
    AiccError: 400,
}

EXIT_CODE: dict[type[AiccError], int] = {
    InvalidInput: 2,
    NotFound: 3,
    AuthenticationFailed: 4,
    PermissionDenied: 4,
    Conflict: 5,
    QuotaExceeded: 5,
    PayloadTooLarge: 2,
    EngineUnreachable: 2,
    EngineError: 6,
    AiccError: 1,
}


def lookup(table: dict[type[AiccError], int], exc: AiccError) -> int:
    """The mapping of the nearest class in ``exc``'s hierarchy."""
    for cls in type(exc).__mro__:
        if cls in table:
            return table[cls]
    return table[AiccError]
