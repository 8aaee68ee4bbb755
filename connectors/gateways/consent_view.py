"""The gateways' view of consent: who has opted out of what, re-checked right before a provider call.

Followed from the compacted ``customers.consent_state`` topic, which the worker writes whenever a
customer's folded consent changes. Only customers with an opt-out are kept in memory. A send is
blocked when its customer has opted out of that channel for that purpose — even if the worker decided
to send before the opt-out arrived: an opt-out wins every race.
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer

from connectors.gateways import compacted
from schemas.codec import codec_for
from schemas.customers import ConsentSnapshot, ConsentState
from schemas.messages import SendCommand

logger = logging.getLogger(__name__)


class ConsentView:
    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._opted_out: dict[str, frozenset[str]] = {}  # customer id -> opted-out '<channel>:<purpose>' slots

    def blocks(self, command: SendCommand) -> bool:
        return f"{command.channel}:{command.purpose}" in self._opted_out.get(command.customer_id, frozenset())

    async def restore(self, bootstrap_servers: str, partition_ids: set[int]) -> AIOKafkaConsumer:
        consumer = await compacted.read_to_end(bootstrap_servers, self.topic, partition_ids, self._apply)
        logger.info("consent view restored: %d customers with an opt-out", len(self._opted_out))
        return consumer

    async def follow(self, consumer: AIOKafkaConsumer) -> None:
        await compacted.follow(consumer, self._apply)

    def _apply(self, key: bytes | None, value: bytes | None, offset: int) -> None:
        if key is None:
            return
        customer_id = key.decode()
        snapshot = codec_for(ConsentSnapshot).decode(value) if value else None
        slots = frozenset(s for s, state in (snapshot.slots if snapshot else {}).items()
                          if state == ConsentState.OPTED_OUT)
        if slots:
            self._opted_out[customer_id] = slots
        else:
            self._opted_out.pop(customer_id, None)
