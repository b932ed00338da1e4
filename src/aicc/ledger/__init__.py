"""Usage records: one ledger entry per job attempt (accelerator-seconds, energy, carbon, and a
charge in H100-hour equivalents; price books and statements are to come)."""

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
