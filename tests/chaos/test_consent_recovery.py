"""Scenario 5: the worker's customer states (their consents) recovered from the changelog alone, and nothing decided
before recovery is complete.

A worker loads the simulated shop's customers (profiles and their consent ledger); then a few hundred
of them opt out of every channel and purpose. The worker is SIGKILLed and its state directory deleted,
so the next one has nothing local: it must rebuild every table from the changelog topics.

While no worker runs, the shop goes on:
- an order ships for every opted-out customer (transactional), and for customers who may receive
  transactional SMS (a phone, no SMS opt-out): the journeys' shipping update;
- a marketing intent (a cart reminder) is produced straight onto ``messages.intents`` for every opted-out
  customer, and for customers opted in to SMS marketing with a phone;
- a probe consent change for every customer (e-mail marketing opted out, newer than anything before), so
  the restarted worker writes each customer's folded consents once more.

Then a new worker starts. Asserted, exactly:
- the consents it recovered are the fold of the ``customers.consents`` ledger: the consents of the newest
  record per customer on the worker's changelog topic (``<prefix>switchboard-customers-changelog``, read by
  an independent consumer) equal ``streams.consent.fold`` over the ledger, for every customer, and every one
  of those records is a post-restart one (it carries the customer's probe). A customer missing from the
  recovered table, or with a stale slot, would show as a difference;
- nothing was decided on a partial state: each opted-out customer's shipping update and cart reminder are
  suppressed ``opted_out`` (with no table, they would be ``no_contact_point``; with profiles but not yet
  consents, the shipping update would be sent), and no command exists for them;
- the others got their commands: recovery did not just suppress everything.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from connectors.simulator import generate
from schemas.catalog import (
    CUSTOMER_CONSENTS,
    MESSAGE_INTENTS,
    STOREFRONT_EVENTS,
    TopicNames,
)
from schemas.codec import codec_for, encode
from schemas.customers import ConsentChange, ConsentSource, ConsentState
from schemas.messages import OutcomeReason, OutcomeStatus
from schemas.types import Channel, Purpose
from streams import consent
from streams.topics import app_id, create_topics
from tests import factories as f
from tests.chaos.scenarios import (
    Decisions,
    Stopwatch,
    chaos_settings,
    expected_ids,
    produce_raw,
    produce_records,
    read_topics,
    report,
    routed_topics,
    start_worker,
    state_topics,
    wait_drained,
)

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

CUSTOMERS = 4_000
OPTING_OUT = 300
CONTROL = 300


@pytest.mark.timeout(900)
def test_the_recovered_consent_table_is_the_fold_of_the_ledger(kafka_bootstrap, tmp_path) -> None:
    clock = Stopwatch()
    settings = chaos_settings(kafka_bootstrap, tmp_path)
    names = TopicNames(settings.kafka.topic_prefix)
    create_topics(settings)
    now = dt.datetime.now(dt.timezone.utc)
    shop = generate(CUSTOMERS, seed=55, now=now, malformed_rate=0.0)
    ledger = {}
    for change in shop.consents:
        ledger[change.customer_id] = consent.fold(ledger.get(change.customer_id), change)

    reachable = [p for p in shop.profiles if p.phone or p.email or p.whatsapp]
    opting_out = reachable[:OPTING_OUT]
    rest = reachable[OPTING_OUT:]
    transactional = [p for p in rest if p.phone and consent.state_of(ledger.get(p.customer_id), Channel.SMS,
                                                                     Purpose.TRANSACTIONAL) != ConsentState.OPTED_OUT]
    marketing = [p for p in rest if p.phone and consent.state_of(ledger.get(p.customer_id), Channel.SMS,
                                                                 Purpose.MARKETING) == ConsentState.OPTED_IN]
    transactional, marketing = transactional[:CONTROL], marketing[:CONTROL]
    outs = [ConsentChange(change_id=f.uid(), customer_id=p.customer_id, store_id=p.store_id, channel=channel,
                          purpose=purpose, state=ConsentState.OPTED_OUT, source=ConsentSource.PREFERENCE_CENTRE,
                          occurred_at=now) for p in opting_out for channel in Channel for purpose in Purpose]
    probes = {p.customer_id: ConsentChange(
        change_id=f.uid(), customer_id=p.customer_id, store_id=p.store_id, channel=Channel.EMAIL,
        purpose=Purpose.MARKETING, state=ConsentState.OPTED_OUT, source=ConsentSource.API,
        occurred_at=now + dt.timedelta(seconds=1)) for p in shop.profiles}

    first = start_worker(settings, tmp_path, "0")
    try:
        produce_records(settings, [*shop.profiles, *shop.consents])
        wait_drained(settings, state_topics(settings), 600, first)
        produce_records(settings, outs)
        wait_drained(settings, [names(CUSTOMER_CONSENTS)], 300, first)
    finally:
        first.kill()
    shutil.rmtree(settings.worker.data_dir, ignore_errors=True)

    # While no worker runs: orders ship, cart reminders are due, and every customer gets a probe change.
    shipped = {p.customer_id: f.shipped(p.customer_id, store_id=p.store_id) for p in [*opting_out, *transactional]}
    produce_records(settings, shipped.values())
    reminders = {p.customer_id: f.intent(p.customer_id, store_id=p.store_id, template="cart_reminder",
                                         purpose=Purpose.MARKETING, message_class="cart_reminder",
                                         variables={"cart_url": "https://shop.example/cart/5"})
                 for p in [*opting_out, *marketing]}
    produce_raw(settings, MESSAGE_INTENTS, [(k.encode(), encode(i)) for k, i in reminders.items()])
    produce_records(settings, probes.values())

    second = start_worker(settings, tmp_path, "1")
    try:
        wait_drained(settings, [names(CUSTOMER_CONSENTS), names(STOREFRONT_EVENTS), *routed_topics(settings)],
                     600, second)
    finally:
        second.stop()

    # The ledger, folded by an independent reader, against the worker's own changelog.
    folded: dict[str, dict] = {}
    for r in read_topics(settings.kafka.bootstrap_servers, [names(CUSTOMER_CONSENTS)]):
        change = codec_for(ConsentChange).decode(r.value)
        folded[change.customer_id] = consent.fold(folded.get(change.customer_id), change)
    changelog: dict[str, dict] = {}
    changelog_records = read_topics(settings.kafka.bootstrap_servers, [f"{app_id(settings)}-customers-changelog"])
    for r in changelog_records:  # each customer's state; its consents are what this scenario is about
        changelog[r.key.decode()] = json.loads(r.value).get("consents", {}) if r.value is not None else None
    differing = {c for c in folded if changelog.get(c) != folded[c]}
    post_restart = {c for c, state in changelog.items() if c in probes and state
                    and state.get("email:marketing", {}).get("change_id") == probes[c].change_id}
    strangers = set(changelog) - set(folded)

    decisions = Decisions.read(settings)
    out_ids = {m for p in opting_out for m in expected_ids([shipped[p.customer_id]])}
    out_ids |= {reminders[p.customer_id].message_id for p in opting_out}
    control_ids = {m for p in transactional for m in expected_ids([shipped[p.customer_id]])}
    control_ids |= {reminders[p.customer_id].message_id for p in marketing}
    reasons = {o.message_id: o.reason for o in decisions.outcomes
               if o.status == OutcomeStatus.SUPPRESSED and o.channel is None}
    commanded = set(decisions.commanded())
    sent_to_opted_out = out_ids & commanded
    wrong_reason = {m for m in out_ids if reasons.get(m) != OutcomeReason.OPTED_OUT}
    report("Scenario 5 — consent table recovered from its changelog after SIGKILL + deleted state", [
        ("customers with consents (ledger records)", f"{len(folded):,} ({len(shop.consents) + len(outs) + len(probes):,})"),
        ("changelog records / customers on it", f"{len(changelog_records):,} / {len(changelog):,}"),
        ("customers whose newest changelog record is post-restart", len(post_restart)),
        ("customers whose recovered consents differ from the fold", len(differing)),
        ("customers on the changelog but not in the ledger", len(strangers)),
        ("opted-out customers: messages due while down", len(out_ids)),
        ("  sent anyway", len(sent_to_opted_out)),
        ("  suppressed opted_out", sum(1 for m in out_ids if reasons.get(m) == OutcomeReason.OPTED_OUT)),
        ("  suppressed for another reason or undecided", len(wrong_reason)),
        ("others: messages due while down / commanded", f"{len(control_ids)} / {len(control_ids & commanded)}"),
    ], clock.seconds)

    assert differing == set() and strangers == set(), sorted(differing | strangers)[:5]
    assert post_restart == set(folded)
    assert sent_to_opted_out == set() and wrong_reason == set()
    assert control_ids <= commanded
