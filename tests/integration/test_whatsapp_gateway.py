"""The WhatsApp gateway on the real broker against the real (local) Cloud API sandbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import httpx
import pytest

from connectors.sandbox.whatsapp import SandboxScenario, serve
from connectors.webhooks.meta_signature import compute_signature
from schemas.catalog import MESSAGE_INBOUND, dlq_topic
from schemas.dead_letter import DeadLetter
from schemas.messages import InboundMessage, OutcomeReason, ReplyButton, WhatsAppTemplateRef
from schemas.types import Channel
from streams.settings import Settings
from tests import factories as f
from tests.gateways import Harness, given_profiles, statuses
from tests.gateways import run as run_gateway_scenario
from tests.support import consume_until

pytestmark = pytest.mark.integration


@asynccontextmanager
async def whatsapp_sandbox(settings: Settings, scenario: SandboxScenario | None = None) -> AsyncIterator[str]:
    wa = settings.whatsapp
    running = await serve("127.0.0.1", settings.sandbox.whatsapp_port, phone_number_id=wa.phone_number_id,
                          access_token=wa.access_token.get_secret_value(), app_secret=wa.app_secret.get_secret_value(),
                          webhook_url=f"{wa.public_base_url}/webhooks/whatsapp",
                          scenario=scenario or SandboxScenario(fail_rate=0.0, read_rate=1.0, status_delay=0.05))
    try:
        yield running.base_url
    finally:
        await running.aclose()


def run(settings: Settings, scenario, sandbox: SandboxScenario | None = None) -> None:
    run_gateway_scenario(Channel.WHATSAPP, settings, partial(whatsapp_sandbox, scenario=sandbox), scenario)


def whatsapp_command(**overrides):
    template = WhatsAppTemplateRef(name="shipping_update", language="nl", category="utility",
                                   parameters=["Sara", "1001", "https://t.example/1001"])
    values = dict(channel=Channel.WHATSAPP, to="+31612345678", locale="nl", sms=None, whatsapp_template=template,
                  body="Hallo Sara, bedankt voor je bestelling #1001! Volg je pakket: https://t.example/1001")
    return f.command(**{**values, **overrides})


async def customer_writes(h: Harness, number: str, text: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{h.sandbox_url}/_sandbox/inbound", json={"from": number, "text": text})
        response.raise_for_status()


def test_template_message_is_sent_and_read_receipt_becomes_an_outcome(settings: Settings) -> None:
    command = whatsapp_command(journey="shipping_update", variant="a")

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: "read" in statuses(seen, command.message_id))
        assert statuses(outcomes, command.message_id)[0] == "sent"
        # the receipts' outcomes carry the command's journey and arm, as the sent one does
        mine = [o for o in outcomes if o.message_id == command.message_id]
        assert {(o.journey, o.variant, o.coupon_code) for o in mine} == {("shipping_update", "a", None)}
        [message] = await h.sandbox_messages()
        assert message["type"] == "template" and message["template"] == "shipping_update"

    run(settings, scenario)


def test_free_text_outside_the_24_hour_window_is_sent_then_fails_with_131047(settings: Settings) -> None:
    command = whatsapp_command(whatsapp_template=None)  # Meta accepts it, then reports 131047 by webhook

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: "failed" in statuses(seen, command.message_id))
        assert statuses(outcomes, command.message_id) == ["sent", "failed"]
        failed = next(o for o in outcomes if o.message_id == command.message_id and o.status == "failed")
        assert (failed.reason, failed.error_code) == (OutcomeReason.PROVIDER_REJECTED, "131047")
        assert "24-hour" in failed.detail

    run(settings, scenario)


def test_failed_delivery_receipt_carries_metas_error_code(settings: Settings) -> None:
    command = whatsapp_command(to="+31612340026")  # the sandbox cannot deliver to numbers ending 0026

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: "failed" in statuses(seen, command.message_id))
        failed = next(o for o in outcomes if o.message_id == command.message_id and o.status == "failed")
        assert (failed.error_code, failed.reason) == ("131026", OutcomeReason.UNDELIVERED)

    run(settings, scenario)


def test_reply_from_a_messaged_customer_lands_on_the_inbound_topic(settings: Settings) -> None:
    command = whatsapp_command()
    given_profiles(settings, f.profile(command.customer_id, whatsapp=command.to))

    async def scenario(h: Harness) -> None:
        await h.send(command)
        await h.outcomes(lambda seen: "read" in statuses(seen, command.message_id))
        await customer_writes(h, "31612345678", "STOP")
        await customer_writes(h, "31699999999", "who is this?")  # no profile has it: dead-lettered, not dropped
        records = await asyncio.to_thread(consume_until, settings.kafka.bootstrap_servers, h.names(MESSAGE_INBOUND),
                                          bool, 60.0, InboundMessage)
        key, inbound = records[0]
        assert key == command.customer_id.encode() and inbound.text == "STOP" and inbound.channel == "whatsapp"
        letters = await asyncio.to_thread(consume_until, settings.kafka.bootstrap_servers,
                                          h.names(dlq_topic(MESSAGE_INBOUND)), bool, 60.0, DeadLetter)
        assert letters[0][1].stage == "whatsapp_inbound" and b"who is this?" in letters[0][1].value

    run(settings, scenario)


def test_a_question_goes_with_buttons_and_a_press_comes_back_as_its_payload(settings: Settings) -> None:
    """The seeds' "[Yes] [No]": inside the window the question is an interactive message; a press reaches the
    worker as the button's payload, which the journeys' branches match whatever the language."""
    command = whatsapp_command(template="talk_to_agent", whatsapp_template=None, locale="he",
                               body="תרצו לדבר עם נציג שיעזור לפתור את זה? השיבו כן או לא.",
                               buttons=[ReplyButton(payload="yes", title="כן"), ReplyButton(payload="no", title="לא")])
    given_profiles(settings, f.profile(command.customer_id, whatsapp=command.to))

    async def scenario(h: Harness) -> None:
        await customer_writes(h, "31612345678", "שלום")  # the customer wrote first: the 24-hour window is open
        await h.send(command)
        await h.outcomes(lambda seen: "read" in statuses(seen, command.message_id))
        (sent,) = [m for m in await h.sandbox_messages() if m["text"] == command.body]
        assert sent["type"] == "interactive" and sent["buttons"] == ["כן", "לא"]
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{h.sandbox_url}/_sandbox/inbound", json={
                "from": "31612345678", "text": "כן", "button_reply_id": sent["button_ids"][0]})
            response.raise_for_status()
        records = await asyncio.to_thread(
            consume_until, settings.kafka.bootstrap_servers, h.names(MESSAGE_INBOUND),
            lambda seen: any(i.button_payload for _, i in seen), 60.0, InboundMessage)
        (pressed,) = [i for _, i in records if i.button_payload]
        assert pressed.button_payload == "yes" and pressed.customer_id == command.customer_id

    run(settings, scenario)


def test_webhook_handshake_and_forged_posts(settings: Settings) -> None:
    async def scenario(h: Harness) -> None:
        url = f"{settings.whatsapp.public_base_url}/webhooks/whatsapp"
        token = settings.whatsapp.verify_token.get_secret_value()
        body = b'{"object":"whatsapp_business_account","entry":[]}'
        async with httpx.AsyncClient() as client:
            ok = await client.get(url, params={"hub.mode": "subscribe", "hub.verify_token": token,
                                               "hub.challenge": "1158201444"})
            wrong = await client.get(url, params={"hub.mode": "subscribe", "hub.verify_token": "nope",
                                                  "hub.challenge": "1"})
            forged = await client.post(url, content=body,
                                       headers={"X-Hub-Signature-256": compute_signature("not-the-secret", body)})
            genuine = await client.post(url, content=body, headers={
                "X-Hub-Signature-256": compute_signature(settings.whatsapp.app_secret.get_secret_value(), body)})
        assert (ok.status_code, ok.text) == (200, "1158201444")
        assert (wrong.status_code, forged.status_code, genuine.status_code) == (403, 403, 200)

    run(settings, scenario)


async def customer_writes_with_username(h: Harness, number: str, text: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{h.sandbox_url}/_sandbox/inbound",
                                     json={"from": number, "text": text, "username": "sara"})
        response.raise_for_status()


def test_a_reply_by_user_id_alone_reaches_the_customer_whose_receipt_named_it(settings: Settings) -> None:
    command = whatsapp_command()

    async def scenario(h: Harness) -> None:
        await h.send(command)
        await h.outcomes(lambda seen: "read" in statuses(seen, command.message_id))  # the receipts named the user id
        await customer_writes_with_username(h, "31612345678", "Yes please")  # no phone number in the webhook
        records = await asyncio.to_thread(consume_until, settings.kafka.bootstrap_servers, h.names(MESSAGE_INBOUND),
                                          bool, 60.0, InboundMessage)
        key, inbound = records[0]
        assert (key, inbound.text) == (command.customer_id.encode(), "Yes please")

    run(settings, scenario)


def test_an_unattributable_message_is_dead_lettered_alone_and_the_batch_still_lands(settings: Settings) -> None:
    command = whatsapp_command()
    given_profiles(settings, f.profile(command.customer_id, whatsapp=command.to))
    wa = settings.whatsapp

    async def scenario(h: Harness) -> None:
        await h.send(command)
        outcomes = await h.outcomes(lambda seen: "read" in statuses(seen, command.message_id))
        wamid = next(o.provider_message_id for o in outcomes if o.message_id == command.message_id)
        value = {"messaging_product": "whatsapp",
                 "metadata": {"display_phone_number": "15550000001", "phone_number_id": wa.phone_number_id},
                 "contacts": [{"profile": {"name": "Sara"}, "wa_id": "31612345678"},
                              {"profile": {"name": "?", "username": "who"}, "user_id": "NL.999"}],
                 "messages": [
                     {"from_user_id": "NL.999", "id": "wamid.unknown", "timestamp": "1750264000", "type": "text",
                      "text": {"body": "who is this?"}},
                     {"from": "31612345678", "id": "wamid.known", "timestamp": "1750264001", "type": "text",
                      "text": {"body": "STOP"}, "context": {"from": "15550000001", "id": wamid}}]}
        body = json.dumps({"object": "whatsapp_business_account", "entry": [
            {"id": "1", "changes": [{"value": value, "field": "messages"}]}]}).encode()
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{wa.public_base_url}/webhooks/whatsapp", content=body, headers={
                "X-Hub-Signature-256": compute_signature(wa.app_secret.get_secret_value(), body)})
        assert response.status_code == 200
        records = await asyncio.to_thread(consume_until, settings.kafka.bootstrap_servers, h.names(MESSAGE_INBOUND),
                                          bool, 60.0, InboundMessage)
        assert [(k, m.text) for k, m in records] == [(command.customer_id.encode(), "STOP")]
        letters = await asyncio.to_thread(consume_until, settings.kafka.bootstrap_servers,
                                          h.names(dlq_topic(MESSAGE_INBOUND)), bool, 60.0, DeadLetter)
        [(_, letter)] = letters
        assert letter.stage == "whatsapp_inbound" and "user id" in letter.error_message
        assert b"who is this?" in letter.value and b"STOP" not in letter.value  # that message alone

    run(settings, scenario)
