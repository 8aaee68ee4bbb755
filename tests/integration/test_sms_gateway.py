"""The SMS gateway on the real broker against the real (local) Twilio-speaking sandbox."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import httpx
import pytest

from connectors.sandbox.twilio import SandboxScenario, serve
from connectors.webhooks.twilio_signature import compute_signature
from schemas.catalog import MESSAGE_INBOUND, TopicNames, commands_topic, dlq_topic, ledger_topic
from schemas.codec import encode
from schemas.dead_letter import DeadLetter
from schemas.messages import InboundMessage, LedgerState, OutcomeReason, SendLedgerEntry
from schemas.types import Channel
from streams.settings import Settings
from streams.topics import create_topics
from tests import factories as f
from tests.gateways import Harness, given_profiles, statuses
from tests.gateways import run as run_gateway_scenario
from tests.support import consume_until, free_port, produce

pytestmark = pytest.mark.integration


@asynccontextmanager
async def twilio_sandbox(settings: Settings, scenario: SandboxScenario | None = None) -> AsyncIterator[str]:
    running = await serve("127.0.0.1", settings.sandbox.port, account_sid=settings.sms.account_sid,
                          auth_token=settings.sms.auth_token.get_secret_value(),
                          scenario=scenario or SandboxScenario(fail_rate=0.0, callback_delay=0.05),
                          inbound_url=f"{settings.sms.public_base_url}/webhooks/twilio/inbound")
    try:
        yield running.base_url
    finally:
        await running.aclose()


def run(settings: Settings, scenario, sandbox: SandboxScenario | None = None) -> None:
    run_gateway_scenario(Channel.SMS, settings, partial(twilio_sandbox, scenario=sandbox), scenario)


def test_command_is_sent_once_and_its_receipts_become_outcomes(settings: Settings) -> None:
    command = f.command(journey="reactivation", variant="b", coupon_code="K7Q2-9XMA")

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: "delivered" in statuses(seen, command.message_id))
        sent = next(o for o in outcomes if o.message_id == command.message_id and o.status == "sent")
        assert sent.provider == "twilio" and sent.provider_message_id.startswith("SM")
        assert sent.segments == 1 and sent.cost_micros == 40_000
        # every outcome of the message, the receipt's too, says which journey, arm and coupon it was
        mine = [o for o in outcomes if o.message_id == command.message_id]
        assert {o.status for o in mine} >= {"sent", "delivered"}
        assert {(o.journey, o.variant, o.coupon_code) for o in mine} == {("reactivation", "b", "K7Q2-9XMA")}
        [message] = await h.sandbox_messages()
        assert message["to"] == command.to and message["body"] == command.body

    run(settings, scenario)


def test_redelivered_command_is_not_sent_twice_even_after_a_restart(settings: Settings) -> None:
    command = f.command()

    async def scenario(h: Harness) -> None:
        await h.send(command, command)
        await h.outcomes(lambda seen: "delivered" in statuses(seen, command.message_id))
        await h.stop_gateway()
        await h.start_gateway()  # a new process would restore the ledger from its topic just the same
        await h.send(command)
        marker = f.command(customer_id=command.customer_id)  # same key, same partition: ordered after it
        await h.send(marker)  # once the marker is delivered, the redelivery before it has been handled
        await h.outcomes(lambda seen: "delivered" in statuses(seen, marker.message_id))
        to_command = [m for m in await h.sandbox_messages() if m["body"] == command.body]
        assert len(to_command) == 2  # the command once, the marker (same body) once
        assert h.metrics.duplicate_commands.labels("sms")._value.get() == 2

    run(settings, scenario)


def test_command_left_mid_call_by_a_crash_is_reported_ambiguous_and_never_resent(settings: Settings) -> None:
    command = f.command()
    names = TopicNames(settings.kafka.topic_prefix)
    create_topics(settings)
    entry = SendLedgerEntry(message_id=command.message_id, channel=Channel.SMS, state=LedgerState.ATTEMPTING,
                            provider="twilio", updated_at=f.NOW)
    produce(settings.kafka.bootstrap_servers, names(ledger_topic(Channel.SMS)),
            [(command.message_id.encode(), encode(entry))])

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: statuses(seen, command.message_id))
        [outcome] = [o for o in outcomes if o.message_id == command.message_id]
        assert outcome.status == "ambiguous" and outcome.reason == OutcomeReason.AMBIGUOUS_PROVIDER_CALL
        assert await h.sandbox_messages() == []

    run(settings, scenario)


def test_malformed_command_goes_to_the_dead_letter_topic(settings: Settings) -> None:
    async def scenario(h: Harness) -> None:
        await h.send(b"garbage")
        letters = await asyncio.to_thread(consume_until, settings.kafka.bootstrap_servers,
                                          h.names(dlq_topic(commands_topic(Channel.SMS))), bool, 60.0, DeadLetter)
        assert letters[0][1].value == b"garbage" and letters[0][1].stage == "gateway_sms"

    run(settings, scenario)


def test_invalid_number_is_a_failed_outcome_with_the_providers_code(settings: Settings) -> None:
    command = f.command(to="0601234567")

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: statuses(seen, command.message_id))
        [outcome] = [o for o in outcomes if o.message_id == command.message_id]
        assert outcome.status == "failed" and outcome.reason == OutcomeReason.PROVIDER_REJECTED
        assert outcome.error_code == "21211"

    run(settings, scenario)


def test_throttled_provider_delays_but_never_drops(settings: Settings) -> None:
    commands = [f.command() for _ in range(4)]

    async def scenario(h: Harness) -> None:
        await h.send(*commands)
        ids = {c.message_id for c in commands}
        await h.outcomes(lambda seen: ids <= {o.message_id for o in seen if o.status == "delivered"})
        assert h.metrics.provider_calls.labels("twilio", "transient")._value.get() >= 1

    run(settings, scenario, SandboxScenario(fail_rate=0.0, callback_delay=0.05, rate_limit_every=2))


def test_undelivered_receipt_becomes_an_undelivered_outcome(settings: Settings) -> None:
    command = f.command(to="+48601230005")  # the sandbox reports numbers ending 0005 as unknown handsets

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: "undelivered" in statuses(seen, command.message_id))
        final = next(o for o in outcomes if o.message_id == command.message_id and o.status == "undelivered")
        assert final.error_code == "30005" and final.reason == OutcomeReason.UNDELIVERED

    run(settings, scenario)


def test_forged_or_unsigned_receipts_are_refused_and_one_for_a_message_never_sent_changes_nothing(
        settings: Settings) -> None:
    marker = f.command()

    async def scenario(h: Harness) -> None:
        url = f"{settings.sms.public_base_url}/webhooks/twilio/status?message_id=m&customer_id=c&store_id=s"
        form = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"}
        async with httpx.AsyncClient() as client:
            unsigned = await client.post(url, data=form)
            forged = await client.post(url, data=form, headers={
                "X-Twilio-Signature": compute_signature("not-the-token", url, form)})
            genuine = await client.post(url, data=form, headers={
                "X-Twilio-Signature": compute_signature(settings.sms.auth_token.get_secret_value(), url, form)})
        assert (unsigned.status_code, forged.status_code, genuine.status_code) == (403, 403, 204)
        await h.send(marker)  # outcomes are written before the webhook answers: the marker's come after any
        outcomes = await h.outcomes(lambda seen: "delivered" in statuses(seen, marker.message_id))
        assert statuses(outcomes, "m") == []

    run(settings, scenario)


def test_a_replayed_signed_receipt_changes_nothing(settings: Settings) -> None:
    command, marker = f.command(), f.command()

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: "delivered" in statuses(seen, command.message_id))
        sid = next(o.provider_message_id for o in outcomes if o.message_id == command.message_id)
        url = (f"{settings.sms.public_base_url}/webhooks/twilio/status?message_id={command.message_id}"
               f"&customer_id={command.customer_id}&store_id={command.store_id}")
        token = settings.sms.auth_token.get_secret_value()
        async with httpx.AsyncClient() as client:
            for status in ("sent", "delivered", "delivered", "undelivered"):  # as captured on the wire, replayed
                form = {"MessageSid": sid, "MessageStatus": status, "To": command.to}
                response = await client.post(url, data=form, headers={
                    "X-Twilio-Signature": compute_signature(token, url, form)})
                assert response.status_code == 204
        await h.send(marker)
        outcomes = await h.outcomes(lambda seen: "delivered" in statuses(seen, marker.message_id))
        assert [o.status for o in outcomes if o.message_id == command.message_id] == ["sent", "delivered"]

    run(settings, scenario)


def test_expired_command_is_suppressed_not_sent(settings: Settings) -> None:
    command = f.command(expires_at=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: statuses(seen, command.message_id))
        assert [o.reason for o in outcomes if o.message_id == command.message_id] == [OutcomeReason.EXPIRED]
        assert await h.sandbox_messages() == []

    run(settings, scenario)


def test_receipts_stay_monotonic_and_single_across_duplicates_reordering_and_a_restart(settings: Settings) -> None:
    command = f.command()
    marker = f.command(customer_id=command.customer_id)

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: "delivered" in statuses(seen, command.message_id))
        await h.stop_gateway()
        await h.start_gateway()  # the receipt state comes back from the ledger topic
        sid = next(o.provider_message_id for o in outcomes if o.message_id == command.message_id)
        url = (f"{settings.sms.public_base_url}/webhooks/twilio/status?message_id={command.message_id}"
               f"&customer_id={command.customer_id}&store_id={command.store_id}")
        stale = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"}
        async with httpx.AsyncClient() as client:
            for _ in range(2):  # a late, stale receipt, redelivered
                response = await client.post(url, data=stale, headers={"X-Twilio-Signature": compute_signature(
                    settings.sms.auth_token.get_secret_value(), url, stale)})
                assert response.status_code == 204
        await h.send(marker)
        outcomes = await h.outcomes(lambda seen: "delivered" in statuses(seen, marker.message_id))
        assert statuses(outcomes, command.message_id) == ["sent", "delivered"]

    run(settings, scenario, SandboxScenario(fail_rate=0.0, callback_delay=0.05, duplicate_receipts=True,
                                            reorder_receipts=True))


def test_transactional_commands_overtake_a_marketing_backlog(settings: Settings) -> None:
    settings.sms.rate_per_second, settings.sms.burst = 40.0, 1
    campaign = [f.command(purpose="marketing") for _ in range(80)]
    order_update = f.command()

    async def scenario(h: Harness) -> None:
        await h.send(*campaign)
        await h.send(order_update)
        everything = {c.message_id for c in [*campaign, order_update]}
        outcomes = await h.outcomes(lambda seen: everything <= {o.message_id for o in seen if o.status == "sent"})
        sent_order = [o.message_id for o in outcomes if o.status == "sent"]
        assert sent_order.index(order_update.message_id) < 30  # not behind the whole campaign (80)

    run(settings, scenario)


def test_a_reply_to_an_sms_lands_on_the_inbound_topic_keyed_by_customer(settings: Settings) -> None:
    command = f.command()
    given_profiles(settings, f.profile(command.customer_id, phone=command.to))  # the other number has none

    async def scenario(h: Harness) -> None:
        await h.send(command)
        await h.outcomes(lambda seen: "delivered" in statuses(seen, command.message_id))
        async with httpx.AsyncClient() as client:
            for sender, text in ((command.to, "STOP"), ("+48609999999", "kto to?")):
                reply = await client.post(f"{h.sandbox_url}/_sandbox/inbound", json={"from": sender, "text": text})
                assert reply.status_code == 200
        records = await asyncio.to_thread(consume_until, settings.kafka.bootstrap_servers, h.names(MESSAGE_INBOUND),
                                          bool, 60.0, InboundMessage)
        [(key, inbound)] = records
        assert key == command.customer_id.encode() and inbound.text == "STOP" and inbound.channel == "sms"
        letters = await asyncio.to_thread(consume_until, settings.kafka.bootstrap_servers,
                                          h.names(dlq_topic(MESSAGE_INBOUND)), bool, 60.0, DeadLetter)
        assert letters[0][1].stage == "sms_inbound"

    run(settings, scenario)


def test_an_ambiguous_send_is_never_repeated_and_is_reconciled_with_the_provider(settings: Settings) -> None:
    settings.sms.reconcile_every = 0.5
    settings.sms.public_base_url = f"http://127.0.0.1:{free_port()}"  # receipts get lost: only a lookup can tell
    command = f.command()

    async def scenario(h: Harness) -> None:
        await h.send(command, command)  # the redelivery must not be sent again
        outcomes = await h.outcomes(lambda seen: "sent" in statuses(seen, command.message_id))
        assert statuses(outcomes, command.message_id) == ["ambiguous", "sent"]
        sent = next(o for o in outcomes if o.message_id == command.message_id and o.status == "sent")
        assert sent.detail == "reconciled after an ambiguous provider call"
        assert len(await h.sandbox_messages()) == 1

    run(settings, scenario, SandboxScenario(fail_rate=0.0, callback_delay=0.05, drop_response_every=1,
                                            callback_retries=0))


def test_one_request_in_five_throttled_loses_nothing(settings: Settings) -> None:
    commands = [f.command() for _ in range(100)]

    async def scenario(h: Harness) -> None:
        await h.send(*commands)
        ids = {c.message_id for c in commands}
        outcomes = await h.outcomes(lambda seen: ids <= {o.message_id for o in seen if o.status == "delivered"})
        assert h.metrics.provider_calls.labels("twilio", "transient")._value.get() >= 20
        assert len([o for o in outcomes if o.status == "sent"]) == 100  # each exactly once
        assert len(await h.sandbox_messages()) == 100

    run(settings, scenario, SandboxScenario(fail_rate=0.0, callback_delay=0.05, rate_limit_every=5))


def test_shuffled_and_duplicated_receipts_end_in_the_right_final_status_for_every_message(settings: Settings) -> None:
    delivered = [f.command(to=f"+486010{i:02d}111") for i in range(40)]
    undelivered = [f.command(to=f"+48601{i:02d}0005") for i in range(10)]  # the sandbox: unknown handset

    async def scenario(h: Harness) -> None:
        await h.send(*delivered, *undelivered)
        finals = {c.message_id: "delivered" for c in delivered} | {c.message_id: "undelivered" for c in undelivered}
        outcomes = await h.outcomes(lambda seen: all(s in statuses(seen, m) for m, s in finals.items()))
        for message_id, final in finals.items():
            assert statuses(outcomes, message_id) == ["sent", final]  # no duplicate, nothing after the final

    run(settings, scenario, SandboxScenario(fail_rate=0.0, callback_delay=0.02, duplicate_receipts=True,
                                            reorder_receipts=True))


def test_an_opt_out_that_arrives_after_the_decision_still_stops_the_send(settings: Settings) -> None:
    from schemas.catalog import CONSENT_STATE
    from schemas.customers import ConsentSnapshot

    opted_out, other = f.command(purpose="marketing"), f.command(purpose="marketing")
    snapshot = ConsentSnapshot(customer_id=opted_out.customer_id, store_id="store-1",
                               slots={"sms:marketing": "opted_out", "sms:transactional": "opted_out"},
                               updated_at=f.NOW)
    create_topics(settings)
    produce(settings.kafka.bootstrap_servers, TopicNames(settings.kafka.topic_prefix)(CONSENT_STATE),
            [(opted_out.customer_id.encode(), encode(snapshot))])

    async def scenario(h: Harness) -> None:
        await h.send(opted_out, other)
        outcomes = await h.outcomes(lambda seen: statuses(seen, opted_out.message_id)
                                    and "delivered" in statuses(seen, other.message_id))
        [blocked] = [o for o in outcomes if o.message_id == opted_out.message_id]
        assert blocked.status == "suppressed" and blocked.reason == OutcomeReason.OPTED_OUT
        assert [m["to"] for m in await h.sandbox_messages()] == [other.to]

    run(settings, scenario)
