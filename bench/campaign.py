"""Transactional latency while a marketing campaign runs as fast as the worker lets it.

A campaign to every customer of the shop's busiest store is launched (``connectors/campaign.py``, the code
behind ``switchboard campaign``); the worker walks its customers as fast as spare capacity allows, a slice
at a time between batches of live input (no pacing: it saturates the worker). Meanwhile
a paced feed of the workload's storefront events runs, and latency is read, as in ``bench/latency.py``,
for the transactional send commands only (order updates): what a customer waiting for a shipping notice
sees while a sale goes out to everybody.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy

from bench.kafka_io import Feed, drive, read_range
from bench.pipeline import Pipeline
from bench.workload import Record
from connectors.campaign import launch, launch_record
from schemas.codec import codec_for
from schemas.customers import CustomerProfile
from schemas.messages import MessageOutcome, SendCommand
from schemas.types import Purpose

WARM_UP_MS = 1000
CAMPAIGN = """name: bench-sale
store_id: {store}
template: flash_sale
channels: [sms, whatsapp, email]
message_class: promotion
expires_after: 3h
variables: {{coupon_code: BENCH10, coupon_value: "10%"}}
segment: {{}}
"""


@dataclass
class CampaignLatency:
    store_customers: int  # the campaign's segment: every customer of the store
    feed_rate: float  # storefront events/s fed meanwhile
    transactional_commands: int  # measured (first second left out)
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    campaign_decisions: int  # campaign commands and suppressions while the feed ran
    campaign_rate: float  # of them per second

    def as_json(self) -> dict:
        return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def busiest_store(profiles: list[bytes]) -> tuple[str, int]:
    """The store most of the workload's customers belong to, and how many."""
    stores = Counter(codec_for(CustomerProfile).decode(raw).store_id for raw in profiles)
    return stores.most_common(1)[0]


def run_campaign_latency(pipeline: Pipeline, events: list[Record], rate: float, store: tuple[str, int],
                         progress: Callable[[int], None]) -> CampaignLatency:
    pipeline.wait_drained(120.0, lambda: None)
    start = pipeline.decision_ends()
    record = launch_record(CAMPAIGN.format(store=store[0]), dt.datetime.now(dt.UTC))
    launch(pipeline.bootstrap, pipeline.worker.settings.kafka.topic_prefix, record)
    feed = Feed(pipeline.bootstrap, ((pipeline.events, r) for r in events), rate=rate)
    started = time.monotonic()
    drive(feed, pipeline.worker.check, progress)
    assert feed.first_ms is not None and feed.finished_at is not None
    last_sent_ms = int(time.time() * 1000)
    time.sleep(5)  # the last events' commands: the campaign keeps the worker busy, so no drain to wait for
    seconds = feed.finished_at - started
    latencies: list[float] = []
    campaign = 0
    low = feed.first_ms + WARM_UP_MS
    for r in read_range(pipeline.bootstrap, start, pipeline.decision_ends()):
        if r.topic == pipeline.outcomes:
            outcome = codec_for(MessageOutcome).decode(r.value)
            campaign += outcome.journey == f"campaign:{record.name}" and outcome.channel is None
            continue
        command = codec_for(SendCommand).decode(r.value)
        if command.journey == f"campaign:{record.name}":
            campaign += r.timestamp_ms <= last_sent_ms
        elif command.purpose == Purpose.TRANSACTIONAL:
            received_ms = command.trigger_received_at.timestamp() * 1000
            if low <= received_ms <= last_sent_ms:
                latencies.append(r.timestamp_ms - received_ms)
    values = numpy.array(latencies or [float("nan")])
    p50, p95, p99 = (float(v) for v in numpy.percentile(values, [50, 95, 99]))
    return CampaignLatency(store_customers=store[1], feed_rate=len(events) / seconds,
                           transactional_commands=len(latencies), p50_ms=p50, p95_ms=p95, p99_ms=p99,
                           max_ms=float(values.max()), campaign_decisions=campaign,
                           campaign_rate=campaign / seconds)
