"""Field types shared by the pydantic mirrors."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict


def _to_millis(value: dt.datetime) -> dt.datetime:
    """Avro ``timestamp-millis`` keeps milliseconds in UTC; so do the models, or round trips would differ."""
    value = value.astimezone(dt.timezone.utc)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


Timestamp = Annotated[AwareDatetime, AfterValidator(_to_millis)]

INT_MAX = 2**31 - 1  # Avro int
LONG_MAX = 2**63 - 1  # Avro long


class Record(BaseModel):
    """Base of every model mirrored by an ``.avsc`` file."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=True)


class Channel(StrEnum):
    SMS = "sms"
    WHATSAPP = "whatsapp"
    EMAIL = "email"


class Purpose(StrEnum):
    TRANSACTIONAL = "transactional"
    MARKETING = "marketing"
