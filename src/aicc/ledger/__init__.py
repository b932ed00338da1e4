"""Usage records, price books, statements."""

from aicc.ledger.usage import (
    KINDS,
    LOST,
    USAGE,
    TypeFacts,
    event_id,
    insert_ignore,
    job_entry,
    used_seconds_by_grant,
)

__all__ = [
    "KINDS",
    "LOST",
    "USAGE",
    "TypeFacts",
    "event_id",
    "insert_ignore",
    "job_entry",
    "used_seconds_by_grant",
]
