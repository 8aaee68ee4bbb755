"""Deterministic ids: a retry or a redelivery of the same trigger must yield the same ids."""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6f1c1d4e-3a55-4b8a-9c1e-5377c1b0a5e1")


def message_id(trigger_event_id: str, step: str) -> str:
    """One message per (trigger event, journey step)."""
    return str(uuid.uuid5(NAMESPACE, f"message/{trigger_event_id}/{step}"))


def outcome_id(message_id: str, status: str, qualifier: str = "") -> str:
    """One outcome per (message, status[, qualifier]), so a repeated report is recognisably the same."""
    return str(uuid.uuid5(NAMESPACE, f"outcome/{message_id}/{status}/{qualifier}"))
