"""Avro codec: pydantic model <-> bytes, with fastavro on the hot path.

Default framing is Avro *single-object encoding* (Avro spec, "Single object encoding"):
``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form
+ the binary record. A consumer holding only the ``.avsc`` files can therefore decode every topic.

:class:`ConfluentFraming` (``00`` + 4-byte big-endian schema id) is the other framing, for clusters
with a schema registry: whoever registers the schema passes its id in. There is no registry client
here yet.

A schema only ever gains optional fields (with a default). The earlier version of a changed schema is
kept in ``avro/previous/`` and listed in :data:`PREVIOUS_SCHEMA_FILES`: a record that an earlier version
wrote (its fingerprint names that version) is read with Avro schema resolution, the new field taking
its default, so a compacted topic's old records still decode.
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
from pydantic import ValidationError

from schemas.contacts import ContactSuppression
from schemas.customers import ConsentChange, ConsentSnapshot, CustomerProfile, ErasureRequest
from schemas.dead_letter import DeadLetter
from schemas.errors import DecodeError, EncodeError
from schemas.events import StorefrontEvent
from schemas.messages import (
    CampaignLaunch,
    Handoff,
    InboundMessage,
    MessageIntent,
    MessageOutcome,
    SendCommand,
    SendLedgerEntry,
    TimerFired,
)
from schemas.products import CoPurchase
from schemas.types import Record

AVRO_DIR = Path(__file__).parent / "avro"

SCHEMA_FILES: dict[type[Record], str] = {
    StorefrontEvent: "storefront_event.avsc",
    CustomerProfile: "customer_profile.avsc",
    ConsentChange: "consent_change.avsc",
    ConsentSnapshot: "consent_snapshot.avsc",
    MessageIntent: "message_intent.avsc",
    SendCommand: "send_command.avsc",
    MessageOutcome: "message_outcome.avsc",
    InboundMessage: "inbound_message.avsc",
    DeadLetter: "dead_letter.avsc",
    SendLedgerEntry: "send_ledger_entry.avsc",
    TimerFired: "timer_fired.avsc",
    ErasureRequest: "erasure_request.avsc",
    Handoff: "handoff.avsc",
    CampaignLaunch: "campaign_launch.avsc",
    CoPurchase: "co_purchase.avsc",
    ContactSuppression: "contact_suppression.avsc",
}

# Earlier versions still found on topics (compacted ones keep records for ever), read by resolution.
PREVIOUS_SCHEMA_FILES: dict[type[Record], tuple[str, ...]] = {
    CustomerProfile: ("previous/customer_profile.1.avsc",),  # version 2 added ``city``
    MessageOutcome: ("previous/message_outcome.1.avsc",),  # version 2 added the reason ``no_recommendation``
    SendCommand: ("previous/send_command.1.avsc",),  # version 2 added ``buttons``
    # version 2 added journey, variant, coupon_code; version 3 customer_id, store_id
    SendLedgerEntry: ("previous/send_ledger_entry.1.avsc", "previous/send_ledger_entry.2.avsc"),
}

M = TypeVar("M", bound=Record)


class Framing(Protocol):
    def frame(self, body: bytes) -> bytes: ...

    def unframe(self, data: bytes) -> bytes: ...


class SingleObjectFraming:
    MAGIC = b"\xc3\x01"

    def __init__(self, canonical_form: str) -> None:
        self.header = self.MAGIC + bytes.fromhex(fingerprint(canonical_form, "CRC-64-AVRO"))

    def frame(self, body: bytes) -> bytes:
        return self.header + body

    def unframe(self, data: bytes) -> bytes:
        if not data.startswith(self.MAGIC):
            raise DecodeError("not Avro single-object encoded (bad magic)")
        if data[: len(self.header)] != self.header:
            raise DecodeError("written with an unknown schema (fingerprint mismatch)")
        return data[len(self.header) :]


_SINGLE_OBJECT_HEADER = 10  # C3 01 + an 8-byte fingerprint


class ConfluentFraming:
    def __init__(self, schema_id: int) -> None:
        self.header = b"\x00" + schema_id.to_bytes(4, "big")

    def frame(self, body: bytes) -> bytes:
        return self.header + body

    def unframe(self, data: bytes) -> bytes:
        if data[:5] != self.header:
            raise DecodeError("not Confluent-framed with the expected schema id")
        return data[5:]


class AvroCodec(Generic[M]):
    """Encodes and decodes one model with its ``.avsc`` schema."""

    def __init__(self, model: type[M], framing: Framing | None = None) -> None:
        self.model = model
        self.schema_json = json.loads((AVRO_DIR / SCHEMA_FILES[model]).read_text())
        self.schema = fastavro.parse_schema(self.schema_json)
        self.canonical_form = to_parsing_canonical_form(self.schema)
        self.framing: Framing = framing or SingleObjectFraming(self.canonical_form)
        # single-object header -> the earlier schema version it names (a Confluent id names one schema only)
        self.previous: dict[bytes, dict] = {}
        for name in PREVIOUS_SCHEMA_FILES.get(model, ()) if framing is None else ():
            older = fastavro.parse_schema(json.loads((AVRO_DIR / name).read_text(encoding="utf-8")))
            self.previous[SingleObjectFraming(to_parsing_canonical_form(older)).header] = older

    def encode(self, record: M) -> bytes:
        buf = io.BytesIO()
        try:
            fastavro.schemaless_writer(buf, self.schema, record.model_dump())
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            # fastavro's message quotes the offending values, which may be personal data: name the type only.
            raise EncodeError(f"{self.model.__name__}: does not fit its schema ({type(exc).__name__})") from exc
        return self.framing.frame(buf.getvalue())

    def decode(self, data: bytes | None) -> M:
        if not data:
            raise DecodeError(f"{self.model.__name__}: empty value")
        writer = self.previous.get(data[:_SINGLE_OBJECT_HEADER]) if self.previous else None
        body = data[_SINGLE_OBJECT_HEADER:] if writer is not None else self.framing.unframe(data)
        try:
            raw = fastavro.schemaless_reader(io.BytesIO(body), writer or self.schema, self.schema)
        except (EOFError, ValueError, TypeError, IndexError, UnicodeDecodeError, OverflowError) as exc:
            raise DecodeError(f"{self.model.__name__}: corrupt Avro body ({type(exc).__name__})") from exc
        try:
            return self.model.model_validate(raw)
        except ValidationError as exc:
            raise DecodeError(f"{self.model.__name__}: {_summarise(exc)}") from exc


def _summarise(exc: ValidationError) -> str:
    """Field paths and messages only: a validation error's input may be personal data."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors())


@functools.cache
def codec_for(model: type[M]) -> AvroCodec[M]:
    """The process-wide single-object codec of a model."""
    return AvroCodec(model)


def encode(record: Record) -> bytes:
    return codec_for(type(record)).encode(record)
