"""The producer library for retailers' own code (kafka-python).

    producer = EventProducer(bootstrap_servers="kafka:9092")
    producer.send(StorefrontEvent(...))          # or producer.send_json("storefront.events", {...})
    producer.flush()

Every record is validated against its model, Avro-encoded (single-object encoding) and keyed the
way the catalog says, so the pipeline's joins stay co-partitioned. A bad event raises
:class:`~connectors.errors.InvalidEventError` listing what is wrong; nothing is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError
from pydantic import ValidationError

from connectors.errors import DeliveryError, InvalidEventError, RecordTooLargeError
from schemas.catalog import (
    CUSTOMER_CONSENTS,
    CUSTOMER_ERASURES,
    CUSTOMER_PROFILES,
    STOREFRONT_EVENTS,
    TopicNames,
    spec,
)
from schemas.codec import encode
from schemas.customers import ConsentChange, CustomerProfile, ErasureRequest
from schemas.events import StorefrontEvent
from schemas.types import Record

# What a producer may write, and where each model goes.
TOPIC_OF: dict[type[Record], str] = {
    StorefrontEvent: STOREFRONT_EVENTS,
    CustomerProfile: CUSTOMER_PROFILES,
    ConsentChange: CUSTOMER_CONSENTS,
    ErasureRequest: CUSTOMER_ERASURES,
}


def key_of(record: Record) -> bytes:
    if isinstance(record, StorefrontEvent):
        return record.key.encode()
    return record.customer_id.encode()  # type: ignore[attr-defined]


def validate(topic: str, payload: Mapping[str, Any]) -> Record:
    """The model a JSON-like payload makes for a catalog topic, or InvalidEventError."""
    model = spec(topic).model
    if model not in TOPIC_OF:
        raise InvalidEventError([f"{topic}: producers may not write this topic"])
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidEventError(
            [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()]
        ) from None


class EventProducer:
    def __init__(self, bootstrap_servers: str, topic_prefix: str = "", **kafka_config: Any) -> None:
        self.names = TopicNames(topic_prefix)
        # Idempotent, acks=all, retried until delivery_timeout_ms (kafka-python's defaults, kept explicit): a
        # topic that was just created has no leader for a moment, and a bounded retry count lost records then.
        config = {"acks": "all", "linger_ms": 5, "enable_idempotence": True, "delivery_timeout_ms": 120_000,
                  **kafka_config}
        self._producer = KafkaProducer(bootstrap_servers=bootstrap_servers.split(","), **config)
        self._failures: list[BaseException] = []

    def send(self, record: Record):
        """Encodes and sends one record; returns kafka-python's future. A failed delivery also makes the next
        :meth:`flush` raise :class:`DeliveryError`, so a caller that never looks at the future still hears."""
        topic = TOPIC_OF.get(type(record))
        if topic is None:
            raise InvalidEventError([f"{type(record).__name__} is not something producers write"])
        value = encode(record)
        try:
            future = self._producer.send(self.names(topic), key=key_of(record), value=value)
        except MessageSizeTooLargeError:
            raise RecordTooLargeError(len(value), self._producer.config["max_request_size"]) from None
        future.add_errback(self._failures.append)
        return future

    def send_json(self, topic: str, payload: Mapping[str, Any]):
        return self.send(validate(topic, payload))

    def flush(self, timeout: float | None = None) -> None:
        """Waits until every record sent so far is delivered; DeliveryError if any was not."""
        self._producer.flush(timeout)
        if self._failures:
            failures, self._failures = self._failures, []
            raise DeliveryError(len(failures), failures[0])

    def close(self) -> None:
        self._producer.close()

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
