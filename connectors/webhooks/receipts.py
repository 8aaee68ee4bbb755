"""Delivery receipts in order of strength, so a late or repeated receipt never moves a message back.

read > delivered > undelivered/failed > sent: a failure is final unless a delivery or read report
supersedes it (WhatsApp can report ``delivered`` after ``failed`` on multi-device accounts).
"""

from __future__ import annotations

from collections import OrderedDict

RANK = {"sent": 1, "undelivered": 2, "failed": 2, "delivered": 3, "read": 4}


class ReceiptTracker:
    """Remembers the strongest status reported per provider message id (bounded, least recent evicted)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._seen: OrderedDict[str, int] = OrderedDict()

    def advance(self, provider_message_id: str, status: str) -> bool:
        """True if ``status`` is news for this message (stronger than anything reported before)."""
        rank = RANK[status]
        if self._seen.get(provider_message_id, 0) >= rank:
            return False
        self._seen[provider_message_id] = rank
        self._seen.move_to_end(provider_message_id)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True
