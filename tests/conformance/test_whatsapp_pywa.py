"""pywa 4.5 (a WhatsApp Cloud API client; Meta publishes no Python SDK) judges the WhatsApp sandbox.

pywa's client drives the sandbox's send endpoint (text, interactive buttons, a template with every
parameter kind the journeys use) and must get wamids back; every webhook the sandbox sends — each
status, each kind of customer message, with and without a phone number — must pass pywa's signature
check on the raw bytes and be built by pywa's own update handling into a typed update. pywa forces
the Graph API host, so its ``httpx.Client`` gets a transport that only re-targets the host: pywa
still builds every request. No pywa server runs; the webhooks go through ``webhook_update_validator``
and ``webhook_update_handler``, pywa's entry points for custom servers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from aiohttp import web
from pywa import WhatsApp, handlers
from pywa.errors import WhatsAppError
from pywa.types import Button, CallbackButton, Message, MessageStatus, MessageStatusType
from pywa.types.templates import (BodyText, Currency, DateTime, HeaderDocument, HeaderImage, QuickReplyButton,
                                  TemplateLanguage)

from connectors.sandbox.whatsapp import SandboxScenario, serve
from connectors.webhooks.meta_signature import SIGNATURE_HEADER

PHONE_NUMBER_ID = "106540352242922"
TOKEN = "conformance-access-token"
APP_SECRET = "conformance-app-secret"
CUSTOMER = "31612345678"
NOT_ON_WHATSAPP = "31612340026"  # the sandbox fails numbers ending 0026 with 131026
DEADLINE = 10.0


class ToSandbox(httpx.HTTPTransport):
    """Sends pywa's requests, unchanged but for the host, to the sandbox."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self._base = httpx.URL(base_url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme=self._base.scheme, host=self._base.host, port=self._base.port)
        return super().handle_request(request)


@dataclass
class Webhooks:
    """Every webhook POST the sandbox made: (raw body, X-Hub-Signature-256)."""

    posts: list[tuple[bytes, str | None]] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        async with self.arrived:
            self.posts.append((raw, request.headers.get(SIGNATURE_HEADER)))
            self.arrived.notify_all()
        return web.Response(text="ok")

    async def wait_for(self, count: int) -> list[tuple[bytes, str | None]]:
        async with self.arrived:
            await asyncio.wait_for(self.arrived.wait_for(lambda: len(self.posts) >= count), DEADLINE)
        return list(self.posts)


@dataclass
class Rig:
    base_url: str
    webhooks: Webhooks

    def client(self, **kwargs) -> WhatsApp:
        return WhatsApp(phone_id=PHONE_NUMBER_ID, token=TOKEN, app_secret=APP_SECRET,
                        session=httpx.Client(transport=ToSandbox(self.base_url)), **kwargs)

    async def customer_writes(self, **fields) -> None:
        async with httpx.AsyncClient(base_url=self.base_url) as client:
            (await client.post("/_sandbox/inbound", json={"from": CUSTOMER, **fields})).raise_for_status()


@asynccontextmanager
async def rig(scenario: SandboxScenario | None = None) -> AsyncIterator[Rig]:
    webhooks = Webhooks()
    app = web.Application()
    app.router.add_post("/webhook", webhooks.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    sandbox = await serve("127.0.0.1", 0, phone_number_id=PHONE_NUMBER_ID, access_token=TOKEN, app_secret=APP_SECRET,
                          webhook_url=f"http://127.0.0.1:{runner.addresses[0][1]}/webhook",
                          scenario=scenario or SandboxScenario(fail_rate=0.0, read_rate=1.0, status_delay=0.01,
                                                               webhook_retry_delay=0.01))
    try:
        yield Rig(sandbox.base_url, webhooks)
    finally:
        await sandbox.aclose()
        await runner.cleanup()


def run(coro_fn) -> None:
    asyncio.run(asyncio.wait_for(coro_fn(), 60))


def updates_built_by_pywa(wa: WhatsApp, posts: list[tuple[bytes, str | None]]) -> list[object]:
    """Each webhook through pywa's signature check and update handling; the typed updates pywa built, one per POST."""
    built: list[object] = []
    wa.add_handlers(*(kind(lambda _, update: built.append(update)) for kind in (
        handlers.MessageHandler, handlers.MessageStatusHandler, handlers.CallbackButtonHandler)))
    for raw, signature in posts:
        assert wa.webhook_update_validator(raw, signature) is None  # pywa's X-Hub-Signature-256 check, raw bytes
        before = len(built)
        assert wa.webhook_update_handler(raw) == ("ok", 200)
        assert len(built) == before + 1, f"pywa built no update from {json.loads(raw)['entry'][0]['changes'][0]}"
    return built


# --- pywa's client drives the send endpoint ------------------------------------------------------


TEMPLATE_PARAMETERS = [
    [HeaderImage.params(image="https://cdn.example/shoe.jpg"),
     BodyText.params("Dana", Currency(fallback_value="€19,99", code="EUR", amount_1000=19990),
                     DateTime(fallback_value="5 augustus 2026")),
     QuickReplyButton.params(callback_data="msg-1#0", index=0), QuickReplyButton.params(callback_data="msg-1#1",
                                                                                        index=1)],
    [HeaderDocument.params(document="https://cdn.example/invoice-1042.pdf", filename="invoice-1042.pdf"),
     BodyText.params("Dana", "#1042")],
]


@pytest.mark.parametrize("params", TEMPLATE_PARAMETERS, ids=["image-currency-date-quick-replies", "document"])
def test_pywa_sends_templates_with_every_parameter_kind_and_gets_a_wamid(params) -> None:
    async def main() -> None:
        async with rig() as r:
            wa = r.client()
            sent = await asyncio.to_thread(wa.send_template, to=CUSTOMER, name="order_confirmation",
                                           language=TemplateLanguage.DUTCH, params=params)
            assert sent.id.startswith("wamid.") and sent.status == "accepted"

    run(main)


def test_pywa_sends_text_and_interactive_buttons_and_gets_wamids() -> None:
    async def main() -> None:
        async with rig() as r:
            await r.customer_writes(text="hi")  # opens the 24-hour window
            wa = r.client()
            text = await asyncio.to_thread(wa.send_message, to=CUSTOMER, text="Your parcel is on its way")
            buttons = await asyncio.to_thread(wa.send_message, to=CUSTOMER, text="Still want it?",
                                              buttons=[Button("Yes", callback_data="m#0"),
                                                       Button("No", callback_data="m#1")])
            assert text.id.startswith("wamid.") and buttons.id.startswith("wamid.") and text.id != buttons.id

    run(main)


def test_a_template_the_account_has_not_approved_is_a_pywa_error_with_metas_code() -> None:
    async def main() -> None:
        async with rig() as r:
            with pytest.raises(WhatsAppError) as info:
                await asyncio.to_thread(r.client().send_template, to=CUSTOMER, name="never_approved",
                                        language=TemplateLanguage.ENGLISH, params=[])
            assert info.value.code == 132001

    run(main)


# --- pywa reads every webhook the sandbox sends ---------------------------------------------------


def test_pywa_builds_every_status_webhook_and_verifies_its_signature() -> None:
    async def main() -> None:
        async with rig() as r:
            wa = r.client()
            template = await asyncio.to_thread(wa.send_template, to=CUSTOMER, name="shipping_update",
                                               language=TemplateLanguage.ENGLISH,
                                               params=[BodyText.params("Dana", "#1042", "https://t.example")],
                                               tracker="m=msg-1")
            late_text = await asyncio.to_thread(wa.send_message, to=CUSTOMER, text="outside the window")
            undeliverable = await asyncio.to_thread(wa.send_template, to=NOT_ON_WHATSAPP, name="shipping_update",
                                                    language=TemplateLanguage.ENGLISH, params=[])
            posts = await r.webhooks.wait_for(5)  # sent, delivered, read; failed 131047; failed 131026
            statuses = updates_built_by_pywa(wa, posts)
            assert all(isinstance(s, MessageStatus) for s in statuses)
            by_id = {}
            for s in statuses:
                by_id.setdefault(s.id, []).append(s)
            assert [s.status for s in by_id[template.id]] == [
                MessageStatusType.SENT, MessageStatusType.DELIVERED, MessageStatusType.READ]
            assert {s.tracker for s in by_id[template.id]} == {"m=msg-1"}
            assert {s.from_user.wa_id for s in by_id[template.id]} == {CUSTOMER}
            assert all(s.from_user.bsuid for s in by_id[template.id])  # the business-scoped user id
            [window] = by_id[late_text.id]
            assert (window.status, window.error.code) == (MessageStatusType.FAILED, 131047)
            [gone] = by_id[undeliverable.id]
            assert (gone.status, gone.error.code, gone.from_user.bsuid) == (MessageStatusType.FAILED, 131026, None)

    run(main)


def test_pywa_builds_every_kind_of_customer_message_with_and_without_a_phone_number() -> None:
    async def main() -> None:
        async with rig() as r:
            wa = r.client()
            sent = await asyncio.to_thread(wa.send_template, to=CUSTOMER, name="what_went_wrong",
                                           language=TemplateLanguage.ENGLISH, params=[])
            await r.webhooks.wait_for(3)
            await r.customer_writes(text="Where is my order? שלום")
            await r.customer_writes(button_payload="Shipping", in_reply_to=sent.id)  # a template quick reply
            await r.customer_writes(button_reply_id="m#1", text="No")  # an interactive button reply
            await r.customer_writes(text="STOP", username="dana")  # a username user: no phone number
            posts = await r.webhooks.wait_for(7)
            updates = updates_built_by_pywa(wa, posts[3:])
            text, quick_reply, button_reply, by_username = updates
            assert isinstance(text, Message) and text.text == "Where is my order? שלום"
            assert text.from_user.wa_id == CUSTOMER and text.from_user.bsuid
            assert isinstance(quick_reply, CallbackButton) and quick_reply.data == "Shipping"
            assert quick_reply.reply_to_message.id == sent.id
            assert isinstance(button_reply, CallbackButton) and button_reply.data == "m#1"
            assert isinstance(by_username, Message) and by_username.text == "STOP"
            assert (by_username.from_user.wa_id, by_username.from_user.username) == (None, "dana")
            assert by_username.from_user.bsuid == text.from_user.bsuid  # the same customer, by user id alone

    run(main)


def test_pywa_refuses_a_webhook_signed_with_another_secret() -> None:
    async def main() -> None:
        async with rig() as r:
            await r.customer_writes(text="hi")
            [(raw, signature)] = await r.webhooks.wait_for(1)
            other = WhatsApp(phone_id=PHONE_NUMBER_ID, token=TOKEN, app_secret="not-the-app-secret",
                             session=httpx.Client())
            assert other.webhook_update_validator(raw, signature) == ("Forbidden", 403)
            assert r.client().webhook_update_validator(raw + b" ", signature) == ("Forbidden", 403)

    run(main)
