"""Delivery receipts in order of strength, so a late or repeated receipt never moves a message back.

read > delivered > undelivered/failed > sent: a failure is final unless a delivery or read report
supersedes it (WhatsApp can report ``delivered`` after ``failed`` on multi-device accounts).
The strongest status so far is kept durably in the send ledger (``receipt_status``).
"""

from __future__ import annotations

RANK = {"sent": 1, "undelivered": 2, "failed": 2, "delivered": 3, "read": 4}


def is_news(previous: str | None, status: str) -> bool:
    """True if ``status`` is stronger than anything reported before (``previous``)."""
    return RANK[status] > RANK.get(previous or "", 0)
