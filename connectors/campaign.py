"""``switchboard campaign FILE``: launch a campaign described in YAML.

    name: flash30                      # the seeds' "30% for 3 hours, FLASH30"
    store_id: demo-store
    template: flash_sale
    channels: [sms, whatsapp, email]
    message_class: promotion
    expires_after: 3h                  # or expires_at: 2026-11-22T18:00:00Z
    variables: {coupon_code: FLASH30, coupon_value: "30%"}
    segment: {locales: [pl, nl], cities: [Kraków, Gdańsk], bought_sku_prefix: [SNK], last_order_older_than: 30d}

``deploy/campaigns/flash30.yaml`` is a file like it. Segment keys (:class:`streams.campaigns.Segment`):
``locales``, ``reachable_on``, ``cities`` (the profile's city; case and accents aside, so ``Krakow``
is ``Kraków``), ``bought_sku_prefix`` (a product category is a SKU prefix: there is no catalogue),
``last_order_older_than``, ``ordered_within``, ``abandoned_cart_within``, ``never_ordered``. Every
key given must hold.

The launch is checked first (the segment's keys, the template in every locale and channel), then one
``CampaignLaunch`` record is written to every partition of ``campaigns.launches``, so each worker
walks the customers of the partitions it owns. The campaign id derives from the name and the store:
launching the same campaign twice reaches nobody twice (the message ids repeat, and the gateways'
ledgers send each once).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import yaml
from kafka import KafkaProducer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.errors import DeliveryError, InvalidEventError
from schemas.catalog import CAMPAIGN_LAUNCHES, TopicNames
from schemas.codec import encode
from schemas.messages import CampaignLaunch
from schemas.types import Channel
from streams import ids
from streams.campaigns import Segment
from streams.errors import TemplateError
from streams.journeys.definitions import parse_duration
from streams.templates import render, sample_variables, template_locales


class CampaignFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_\-]+$")
    store_id: str = Field(min_length=1)
    template: str
    channels: list[Channel] = Field(min_length=1)
    message_class: str | None = None
    expires_after: dt.timedelta | None = None
    expires_at: dt.datetime | None = None
    variables: dict[str, str] = {}
    segment: Segment = Segment()

    @field_validator("expires_after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        return None if value is None else parse_duration(value)


def launch_record(text: str, now: dt.datetime) -> CampaignLaunch:
    """The launch a campaign file describes; InvalidEventError listing what is wrong."""
    try:
        spec = CampaignFile.model_validate(yaml.safe_load(text) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        errors = [str(exc)] if isinstance(exc, yaml.YAMLError) else [
            f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()]
        raise InvalidEventError(errors) from None
    try:
        for locale in template_locales(spec.template):
            for channel in spec.channels:
                render(spec.template, locale, channel, sample_variables(spec.variables))
    except TemplateError as exc:
        raise InvalidEventError([f"template: {exc}"]) from None
    expires_at = spec.expires_at or (now + spec.expires_after if spec.expires_after else None)
    return CampaignLaunch(
        campaign_id=ids.message_id(spec.store_id, f"campaign:{spec.name}"), name=spec.name, store_id=spec.store_id,
        template=spec.template, channels=spec.channels, message_class=spec.message_class,
        segment_json=json.dumps(spec.segment.model_dump(mode="json", exclude_none=True)), variables=spec.variables,
        expires_at=expires_at, launched_at=now)


def launch(bootstrap_servers: str, topic_prefix: str, record: CampaignLaunch) -> int:
    """Writes the launch to every partition; returns how many."""
    topic = TopicNames(topic_prefix)(CAMPAIGN_LAUNCHES)
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers.split(","), acks="all", enable_idempotence=True)
    try:
        partitions = sorted(producer.partitions_for(topic))
        futures = [producer.send(topic, key=record.campaign_id.encode(), value=encode(record), partition=p)
                   for p in partitions]
        producer.flush()
        failed = [f.exception for f in futures if f.failed()]
        if failed:
            raise DeliveryError(len(failed), failed[0])
        return len(partitions)
    finally:
        producer.close()


def launch_file(path: Path, bootstrap_servers: str, topic_prefix: str, now: dt.datetime) -> CampaignLaunch:
    record = launch_record(Path(path).read_text(encoding="utf-8"), now)
    launch(bootstrap_servers, topic_prefix, record)
    return record
