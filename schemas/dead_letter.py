"""DeadLetter: a record a stage could not process, kept with its reason and raw bytes."""

from __future__ import annotations

from schemas.types import Record, Timestamp


class DeadLetter(Record):
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None = None
    value: bytes | None = None
    stage: str
    error_type: str
    error_message: str
    failed_at: Timestamp
