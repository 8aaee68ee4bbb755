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
walks the customers of the partitions it owns. The campaign id derives from the name, the store and the run
(:func:`campaign_id`): launching the same file twice reaches nobody twice (the message ids repeat, and
the gateways' ledgers send each once). So running last month's campaign again needs a new run number
(``switchboard campaign FILE --run 2``), and the CLI looks for an earlier launch of the same id on
``campaigns.launches`` (:func:`earlier_launches`, as far back as the topic's 30-day retention) and says
so before it launches.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from connectors.errors import DeliveryError, InvalidEventError
from schemas.catalog import CAMPAIGN_LAUNCHES, TopicNames
from schemas.codec import codec_for, encode
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


def campaign_id(store_id: str, name: str, run: int = 1) -> str:
    """Deterministic: the same store, name and run make the same id (run 1 keeps the id runs had before)."""
    if run < 1:
        raise ValueError(f"a campaign's run counts from 1, not {run}")
    return ids.message_id(store_id, f"campaign:{name}" if run == 1 else f"campaign:{name}:run{run}")


def launch_record(text: str, now: dt.datetime, run: int = 1) -> CampaignLaunch:
    """The launch a campaign file describes (its ``run``-th run); InvalidEventError listing what is wrong."""
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
        campaign_id=campaign_id(spec.store_id, spec.name, run), name=spec.name, store_id=spec.store_id,
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


def launched_so_far(bootstrap_servers: str, topic_prefix: str) -> list[CampaignLaunch]:
    """Every launch still on ``campaigns.launches`` (one record per partition each), read to its end."""
    topic = TopicNames(topic_prefix)(CAMPAIGN_LAUNCHES)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(","), group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        launches = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=1000).values():
                launches.extend(codec_for(CampaignLaunch).decode(r.value) for r in records if r.value is not None)
        return launches
    finally:
        consumer.close()


def earlier_launches(record: CampaignLaunch, launches: list[CampaignLaunch]) -> tuple[list[CampaignLaunch], int]:
    """The earlier launches with ``record``'s id (one per launch, oldest first), and the first run of the same
    name and store whose id none of ``launches`` has."""
    same = {}
    for item in launches:
        if item.campaign_id == record.campaign_id:
            same.setdefault(item.launched_at, item)  # a launch is one record per partition
    used = {item.campaign_id for item in launches}
    run = 1
    while campaign_id(record.store_id, record.name, run) in used:
        run += 1
    return [same[at] for at in sorted(same)], run


def launch_file(path: Path, bootstrap_servers: str, topic_prefix: str, now: dt.datetime) -> CampaignLaunch:
    record = launch_record(Path(path).read_text(encoding="utf-8"), now)
    launch(bootstrap_servers, topic_prefix, record)
    return record
