"""Deterministic ids: a retry or a redelivery of the same trigger must yield the same ids."""

from __future__ import annotations

import hashlib
import uuid

NAMESPACE = uuid.UUID("6f1c1d4e-3a55-4b8a-9c1e-5377c1b0a5e1")
_NAMESPACE_BYTES = NAMESPACE.bytes


def uuid5(name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, name))`` (RFC 4122 version 5: SHA-1 of namespace + name, version and
    variant bits set), without building UUID objects: ids are made several times per event."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def message_id(trigger_event_id: str, step: str) -> str:
    """One message per (trigger event, journey step)."""
    return uuid5(f"message/{trigger_event_id}/{step}")


def outcome_id(message_id: str, status: str, qualifier: str = "") -> str:
    """One outcome per (message, status[, qualifier]), so a repeated report is recognisably the same."""
    return uuid5(f"outcome/{message_id}/{status}/{qualifier}")
