"""Scenario 4: 0.1 % malformed storefront events, and a provider that throttles and fails some numbers.

Malformed input. Among the simulated shop's events, one record in a thousand (at least one of each kind)
is malformed, spread over the stream and over every partition: Avro-looking garbage, a truncated event,
a valid record of another schema (a ConsentChange), an empty value, a null value, and a valid event
keyed by another customer. Asserted, exactly:
- the dead-letter topic ``storefront.events.dlq`` holds each malformed record once, with its source
  partition and offset and its raw key and value bytes, and nothing else;
- no partition stalls: the worker group commits every partition of the events to its end offset;
- nothing is skipped silently: every good event's message ids have a decision, and the worker counted
  (``switchboard_storefront_events_total``) every record that decodes as an event, the key-mismatched
  one included (it is read, then refused).

Transient errors, injected honestly at the provider: the SMS gateway (a real process) calls the
in-process Twilio sandbox, which answers every 10th request with 429 (``rate_limit_every``) and lets 5 %
of the numbers end ``undelivered`` or ``failed`` (``fail_rate``, by a hash of the number). No WhatsApp or
e-mail gateway runs: those commands stay on their topics. Asserted, exactly:
- every SMS command reached the provider exactly once (429s are retried, never repeated once accepted);
- the gateway counted as ``transient`` exactly the requests the sandbox throttled;
- every SMS that ended undelivered or failed fell back: a command for the same message id on one of
  its ``fallback_channels`` when it had any, and no further command when it had none.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx
import pytest
from kafka import KafkaProducer

from connectors.sandbox.twilio import SandboxScenario, serve
from schemas.catalog import STOREFRONT_EVENTS, TopicNames, dlq_topic
from schemas.codec import codec_for, encode
from schemas.dead_letter import DeadLetter
from schemas.events import StorefrontEvent
from schemas.messages import OutcomeStatus
from schemas.types import Channel
from streams.topics import create_topics
from tests import factories as f
from tests.chaos.scenarios import (
    Decisions,
    Proc,
    Shop,
    Stopwatch,
    chaos_settings,
    committed,
    end_offsets,
    metric,
    produce_records,
    read_topics,
    report,
    routed_topics,
    start_worker,
    state_topics,
    wait_drained,
)
from tests.integration.test_gateway_crash import calls_per_message
from tests.support import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

EVENTS = 6_000
MALFORMED_SHARE = 0.001
TRANSIENT_EVENTS = 1_500
THROTTLE_EVERY = 10  # the sandbox answers every 10th request 429 with Retry-After: 1
FINAL = {OutcomeStatus.DELIVERED, OutcomeStatus.READ, OutcomeStatus.UNDELIVERED, OutcomeStatus.FAILED}
FAILED = {OutcomeStatus.UNDELIVERED, OutcomeStatus.FAILED}


def malformed_records(shop: Shop, count: int, seed: int) -> list[tuple[str, bytes, bytes | None]]:
    """(kind, key, value) of ``count`` malformed records, cycling through the kinds."""
    rng = random.Random(seed)
    other = shop.store.profiles[0].customer_id
    kinds = ["garbage", "truncated", "other schema", "empty", "null", "key mismatch"]
    made = []
    for number in range(count):
        kind = kinds[number % len(kinds)]
        event = shop.events[rng.randrange(len(shop.events))]
        key = f.uid().encode()
        match kind:
            case "garbage":
                value = b"\xc3\x01not-avro" + rng.randbytes(16)
            case "truncated":
                value = encode(event)[:-7]
            case "other schema":
                value = encode(f.consent(key.decode(), Channel.SMS, "opted_in"))
            case "empty":
                value = b""
            case "null":
                value = None
            case _:  # a valid event, keyed by somebody else
                key, value = other.encode(), encode(event.model_copy(update={"event_id": f.uid()}))
        made.append((kind, key, value))
    return made


@pytest.mark.timeout(900)
def test_malformed_events_are_dead_lettered_and_no_partition_stalls(kafka_bootstrap, tmp_path) -> None:
    clock = Stopwatch()
    settings = chaos_settings(kafka_bootstrap, tmp_path)
    names = TopicNames(settings.kafka.topic_prefix)
    create_topics(settings)
    shop = Shop.generate(EVENTS, seed=4)
    expected = shop.expected_ids()
    bad = malformed_records(shop, max(6, round(EVENTS * MALFORMED_SHARE)), seed=4)
    worker = start_worker(settings, tmp_path, "0")
    try:
        produce_records(settings, shop.state)
        wait_drained(settings, state_topics(settings), 600, worker)
        produce_interleaved(settings, shop.events, bad)
        wait_drained(settings, [names(STOREFRONT_EVENTS), *routed_topics(settings)], 900, worker)
        counted = metric(f"http://127.0.0.1:{settings.worker.web_port}/metrics", "switchboard_storefront_events_total")
    finally:
        worker.stop()

    on_topic = read_topics(settings.kafka.bootstrap_servers, [names(STOREFRONT_EVENTS)])
    wanted = {(key, value) for _, key, value in bad}
    malformed = {(r.partition, r.offset): (r.key, r.value) for r in on_topic if (r.key, r.value) in wanted}
    letters = [codec_for(DeadLetter).decode(r.value)
               for r in read_topics(settings.kafka.bootstrap_servers, [names(dlq_topic(STOREFRONT_EVENTS))])]
    lettered = {(d.source_partition, d.source_offset): (d.key, d.value) for d in letters}
    decodable = sum(1 for r in on_topic if _decodes(r.value))
    ends, commits = end_offsets(settings, names(STOREFRONT_EVENTS)), committed(settings, names(STOREFRONT_EVENTS))
    lost = expected - Decisions.read(settings).decided()
    report("Scenario 4a — 0.1 % malformed storefront events", [
        ("storefront records (good + malformed)", f"{len(shop.events):,} + {len(bad)}"),
        ("malformed kinds", ", ".join(sorted({k for k, _, _ in bad}))),
        ("malformed per partition", ", ".join(f"p{p}: {sum(1 for q, _ in malformed if q == p)}"
                                                for p in sorted(ends))),
        ("dead letters on storefront.events.dlq", len(letters)),
        ("  matching a malformed record's partition, offset and bytes",
         sum(1 for c, raw in lettered.items() if malformed.get(c) == raw)),
        ("  by error type", ", ".join(f"{t}: {n}" for t, n in sorted(Counter(d.error_type for d in letters).items()))),
        ("committed / end offset per partition", ", ".join(f"p{p}: {commits.get(p, 0)}/{e}"
                                                            for p, e in sorted(ends.items()))),
        ("events the worker counted / records that decode", f"{counted:.0f} / {decodable}"),
        ("expected message ids", len(expected)),
        ("LOST (no command, no suppression)", len(lost)),
    ], clock.seconds)

    assert len(malformed) == len(bad)  # each landed once (a precondition of the counts below)
    assert len(letters) == len(bad) and lettered == malformed
    assert all(commits.get(p, 0) == end for p, end in ends.items())
    assert counted == decodable
    assert lost == set()


@pytest.mark.timeout(900)
def test_throttling_and_failing_numbers_at_the_provider_lose_nothing(kafka_bootstrap, tmp_path) -> None:
    clock = Stopwatch()
    settings = chaos_settings(kafka_bootstrap, tmp_path)
    names = TopicNames(settings.kafka.topic_prefix)
    create_topics(settings)
    shop = Shop.generate(TRANSIENT_EVENTS, seed=5)
    expected = shop.expected_ids()
    scenario = SandboxScenario(fail_rate=0.05, rate_limit_every=THROTTLE_EVERY, callback_delay=0.05)

    async def main():
        sandbox = await serve("127.0.0.1", settings.sandbox.port, account_sid=settings.sms.account_sid,
                              auth_token=settings.sms.auth_token.get_secret_value(), scenario=scenario)
        worker = start_worker(settings, tmp_path, "0")
        gateway = Proc(["gateway", "sms"], settings, tmp_path / "gateway-sms.log")
        try:
            await asyncio.to_thread(produce_records, settings, shop.state)
            await asyncio.to_thread(wait_drained, settings, state_topics(settings), 600, worker)
            await asyncio.to_thread(produce_records, settings, shop.events)
            await asyncio.to_thread(wait_drained, settings, [names(STOREFRONT_EVENTS), *routed_topics(settings)],
                                    900, worker, gateway)

            def every_sms_settled() -> bool:
                decisions = Decisions.read(settings)
                sms = {c.message_id for c in decisions.commands if c.channel == Channel.SMS}
                final = {o.message_id for o in decisions.outcomes if o.channel == Channel.SMS and o.status in FINAL}
                return sms <= final

            await asyncio.to_thread(wait_until, every_sms_settled, 900, "a final receipt for every SMS", gateway)
            await asyncio.to_thread(wait_drained, settings, routed_topics(settings), 300, worker)  # the fallbacks
            transient = metric(f"http://127.0.0.1:{settings.sms.admin_port}/metrics",
                               "switchboard_provider_calls_total", {"result": "transient"})
            async with httpx.AsyncClient() as client:
                stats = (await client.get(f"{sandbox.base_url}/_sandbox/stats")).json()
                calls = calls_per_message((await client.get(f"{sandbox.base_url}/_sandbox/messages")).json())
        finally:
            gateway.stop()
            worker.stop()
            await sandbox.aclose()
        return transient, stats, calls

    transient, stats, calls = asyncio.run(main())

    decisions = Decisions.read(settings)
    lost = expected - decisions.decided()
    sms = {c.message_id: c for c in decisions.commands if c.channel == Channel.SMS}
    failed = {o.message_id for o in decisions.outcomes if o.channel == Channel.SMS and o.status in FAILED}
    later: dict[str, set] = {}
    for c in decisions.commands:
        if c.channel != Channel.SMS and c.message_id in failed:
            later.setdefault(c.message_id, set()).add(c.channel)
    should_fall_back = {m for m in failed if sms[m].fallback_channels}
    fell_back_right = {m for m in should_fall_back if later.get(m, set()) & set(sms[m].fallback_channels)}
    fell_back_wrong = {m for m in failed - should_fall_back if m in later}
    report("Scenario 4b — a provider that throttles every 10th request and fails 5 % of numbers", [
        ("storefront events / expected message ids", f"{len(shop.events):,} / {len(expected):,}"),
        ("LOST (no command, no suppression)", len(lost)),
        ("SMS commands (ids)", len(sms)),
        ("sandbox requests / throttled (429) / accepted",
         f"{stats['requests']} / {stats['rate_limited']} / {stats['accepted']}"),
        ("gateway calls counted transient", f"{transient:.0f}"),
        ("SMS called more than once", sum(1 for n in calls.values() if n > 1)),
        ("SMS never called", len(set(sms) - set(calls))),
        ("SMS undelivered or failed", len(failed)),
        ("  with fallback channels / fell back to one of them",
         f"{len(should_fall_back)} / {len(fell_back_right)}"),
        ("  without fallback channels / got another command anyway",
         f"{len(failed - should_fall_back)} / {len(fell_back_wrong)}"),
    ], clock.seconds)

    assert lost == set()
    assert set(calls) == set(sms) and all(n == 1 for n in calls.values())
    assert stats["rate_limited"] > 0 and transient == stats["rate_limited"]
    assert failed and fell_back_right == should_fall_back and fell_back_wrong == set()


def _decodes(value: bytes | None) -> bool:
    try:
        codec_for(StorefrontEvent).decode(value)
    except Exception:  # noqa: BLE001 - any failure: it does not decode
        return False
    return True


def produce_interleaved(settings, events: list[StorefrontEvent], bad: list[tuple[str, bytes, bytes | None]]) -> None:
    """The good events in order, keyed by customer, with the malformed ones spread evenly among them, each
    on a partition of its own turn (so every partition has some)."""
    topic = TopicNames(settings.kafka.topic_prefix)(STOREFRONT_EVENTS)
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers.split(","), acks="all",
                             linger_ms=20, batch_size=256 * 1024)
    step = len(events) // (len(bad) + 1)
    try:
        for number, event in enumerate(events):
            producer.send(topic, key=event.key.encode(), value=encode(event))
            if number % step == step - 1 and (index := number // step) < len(bad):
                _, key, value = bad[index]
                producer.send(topic, key=key, value=value, partition=index % settings.kafka.partitions)
        producer.flush()
    finally:
        producer.close()
