"""A local HTTP server speaking Meta's WhatsApp Cloud API, with signed webhooks.

``POST /{version}/{phone_number_id}/messages`` behaves like the Graph API (Bearer token,
Cloud API JSON, Graph-shaped errors), refuses unapproved templates, and reports accepted messages
to ``webhook_url`` as status webhooks signed with ``X-Hub-Signature-256``. Like the Cloud API, it
accepts a free-form message outside the 24-hour customer-service window and reports it ``failed``
with error 131047 by webhook. ``POST /_sandbox/inbound`` plays a customer writing in:
it opens the window and delivers a signed inbound-message webhook. Inspection for tests and
demos lives under ``/_sandbox/``.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from connectors.sandbox.server import RunningSandbox, start

from connectors.sandbox.whatsapp_scenario import (REENGAGEMENT, SandboxScenario, Traffic, check_message, graph_error,
                                                 inbound_event, message_record, planned_statuses, read_inbound,
                                                 status_event)
from connectors.webhooks.meta_signature import SIGNATURE_HEADER, compute_signature

__all__ = ["create_app", "serve", "run", "RunningSandbox", "SandboxScenario",
           "DEFAULT_PHONE_NUMBER_ID", "DEFAULT_ACCESS_TOKEN", "DEFAULT_APP_SECRET"]

logger = logging.getLogger(__name__)

DEFAULT_PHONE_NUMBER_ID = "100000000000001"
DEFAULT_ACCESS_TOKEN = "sandbox-access-token"  # not a secret: the sandbox's well-known default
DEFAULT_APP_SECRET = "sandbox-app-secret"  # likewise
WABA_ID = "100000000000000"
DISPLAY_PHONE_NUMBER = "15550000001"
STAT_KEYS = ("requests", "accepted", "rejected", "rate_limited", "outside_window", "inbound",
             "webhooks_sent", "webhooks_failed")


@dataclass
class _State:
    phone_number_id: str
    access_token: str
    app_secret: str
    webhook_url: str | None
    scenario: SandboxScenario
    traffic: Traffic
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None

    @property
    def ids(self) -> tuple[str, str, str]:
        return WABA_ID, self.phone_number_id, DISPLAY_PHONE_NUMBER

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("sandbox webhook task crashed", exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


STATE = web.AppKey("whatsapp_sandbox_state", _State)


def _wamid() -> str:
    return "wamid." + base64.b64encode(secrets.token_bytes(30)).decode("ascii")


def _fail(state: _State, status: int, code: int, details: str, stat: str = "rejected",
          subcode: int | None = None) -> web.Response:
    state.stats[stat] += 1
    return web.json_response(graph_error(code, details, subcode), status=status)


async def _send_message(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.stats["requests"] += 1
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), state.access_token.encode()):
        return _fail(state, 401, 190, "Invalid OAuth access token - Cannot parse access token")
    if request.match_info["phone_number_id"] != state.phone_number_id:
        return _fail(state, 400, 100, "Unsupported post request: unknown phone number id", subcode=33)
    if state.traffic.rate_limited(time.monotonic()):
        return _fail(state, 400, 130429, "Cloud API message throughput has been reached.", "rate_limited")
    try:
        body = await request.json()
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return _fail(state, 400, 100, "The request body is not JSON")
    problem = check_message(body)
    if problem:
        return _fail(state, 400, 100, problem)
    kind, to = body.get("type", "text"), body["to"].removeprefix("+")
    if kind == "template" and body["template"]["name"] not in state.scenario.approved_templates:
        return _fail(state, 400, 132001, "template name does not exist in the translation")
    outside = kind != "template" and not state.traffic.in_window(to, time.monotonic())
    state.stats["outside_window"] += outside
    wamid = _wamid()
    state.messages[wamid] = message_record(wamid, body)
    state.stats["accepted"] += 1
    plan = [("failed", REENGAGEMENT)] if outside else planned_statuses(to, wamid, state.scenario)
    state.spawn(_report(state, state.messages[wamid], plan))
    logger.info("sandbox accepted type=%s statuses=%s", kind, "/".join(s for s, _ in plan))
    sent = {"id": wamid, **({"message_status": "accepted"} if kind == "template" else {})}  # as Meta answers
    return web.json_response({"messaging_product": "whatsapp", "contacts": [{"input": body["to"], "wa_id": to}],
                              "messages": [sent]})


async def _report(state: _State, message: dict[str, Any], plan: list[tuple[str, str | None]]) -> None:
    """Move the message through its planned statuses, sending a signed webhook for each."""
    events = list(reversed(plan)) if state.scenario.reorder_webhooks else plan
    category = "service" if message["type"] != "template" else "utility"
    for status, code in events:
        await asyncio.sleep(state.scenario.status_delay)
        message["status"], message["error_code"] = status, code
        payload = status_event(state.ids, wamid=message["id"], status=status, recipient=message["to"],
                               timestamp=int(time.time()), error_code=code,
                               callback_data=message["callback_data"], category=category,
                               legacy=state.scenario.legacy_webhooks)
        for _ in range(2 if state.scenario.duplicate_webhooks else 1):
            await _deliver(state, payload, f"status {status}")
    message["status"], message["error_code"] = plan[-1]


async def _deliver(state: _State, payload: dict[str, Any], what: str) -> None:
    """POST one signed webhook, retrying connection failures and 5xx like Meta."""
    if not state.webhook_url:
        return
    assert state.session is not None
    raw = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")  # Meta escapes unicode
    headers = {SIGNATURE_HEADER: compute_signature(state.app_secret, raw), "Content-Type": "application/json",
               "User-Agent": "facebookexternalua"}
    attempts = 1 + state.scenario.webhook_retries
    for attempt in range(attempts):
        try:
            async with state.session.post(state.webhook_url, data=raw, headers=headers,
                                          allow_redirects=False) as response:
                if response.status < 500:
                    ok = response.status < 300
                    if not ok:
                        logger.warning("sandbox webhook %s answered HTTP %s", what, response.status)
                    state.stats["webhooks_sent" if ok else "webhooks_failed"] += 1
                    return
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        if attempt + 1 < attempts:
            await asyncio.sleep(state.scenario.webhook_retry_delay * 2**attempt)
    logger.warning("sandbox webhook %s failed after %d attempts", what, attempts)
    state.stats["webhooks_failed"] += 1


async def _inbound(request: web.Request) -> web.Response:
    """A customer writes in: ``{"from", "text"?, "button_payload"?, "button_reply_id"?, "in_reply_to"?,
    "username"?, "age_seconds"?}`` (with a ``username`` the webhook names the customer by user id only). Opens (or, with ``age_seconds``, back-dates) the window; sends a signed webhook."""
    state = request.app[STATE]
    try:
        sender, age, fields = read_inbound(await request.json())
    except ValueError as exc:  # also invalid JSON
        return web.json_response(graph_error(100, str(exc)), status=400)
    state.traffic.customer_wrote(sender, time.monotonic() - age)
    state.stats["inbound"] += 1
    if fields["in_reply_to"] is None and (fields["button_payload"] or fields["button_reply_id"]):
        sent = [m["id"] for m in state.messages.values() if m["to"] == sender]
        fields["in_reply_to"] = sent[-1] if sent else None
    wamid = _wamid()
    timestamp = int(time.time() - age)
    event = inbound_event(state.ids, wamid=wamid, sender=sender, timestamp=timestamp,
                          legacy=state.scenario.legacy_webhooks, **fields)
    state.spawn(_deliver(state, event, "inbound"))
    return web.json_response({"messages": [{"id": wamid}]})


async def _list_messages(request: web.Request) -> web.Response:
    return web.json_response(list(request.app[STATE].messages.values()))


async def _stats(request: web.Request) -> web.Response:
    stats = request.app[STATE].stats
    return web.json_response({key: stats[key] for key in STAT_KEYS})


async def _reset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    await state.cancel_tasks()
    state.messages.clear()
    state.stats.clear()
    state.traffic.clear()
    return web.json_response({"reset": True})


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    state.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
    yield
    await state.cancel_tasks()
    await state.session.close()


def create_app(phone_number_id: str = DEFAULT_PHONE_NUMBER_ID, access_token: str = DEFAULT_ACCESS_TOKEN,
               app_secret: str = DEFAULT_APP_SECRET, webhook_url: str | None = None,
               scenario: SandboxScenario | None = None) -> web.Application:
    """The sandbox as an aiohttp application; without ``webhook_url`` no webhooks are sent."""
    app = web.Application()
    scenario = scenario or SandboxScenario()
    app[STATE] = _State(phone_number_id, access_token, app_secret, webhook_url, scenario, Traffic(scenario))
    app.cleanup_ctx.append(_client_session)
    app.router.add_post(r"/{version:v\d+\.\d+}/{phone_number_id}/messages", _send_message)
    app.router.add_post("/_sandbox/inbound", _inbound)
    app.router.add_get("/_sandbox/messages", _list_messages)
    app.router.add_get("/_sandbox/stats", _stats)
    app.router.add_post("/_sandbox/reset", _reset)
    return app


async def serve(host: str = "127.0.0.1", port: int = 0, *, phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
                access_token: str = DEFAULT_ACCESS_TOKEN, app_secret: str = DEFAULT_APP_SECRET,
                webhook_url: str | None = None, scenario: SandboxScenario | None = None) -> RunningSandbox:
    """Start the sandbox in the running event loop (port 0 picks a free port) and return at once."""
    app = create_app(phone_number_id, access_token, app_secret, webhook_url, scenario)
    running = await start(app, host, port)
    logger.info("whatsapp sandbox listening on %s phone_number_id=%s", running.base_url, phone_number_id)
    return running


def run(host: str = "127.0.0.1", port: int = 8766, *, phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
        access_token: str = DEFAULT_ACCESS_TOKEN, app_secret: str = DEFAULT_APP_SECRET,
        webhook_url: str | None = None, scenario: SandboxScenario | None = None) -> None:
    """Serve the sandbox until interrupted (for a ``switchboard sandbox whatsapp`` entry point)."""
    logger.info("whatsapp sandbox starting on http://%s:%s phone_number_id=%s", host, port, phone_number_id)
    web.run_app(create_app(phone_number_id, access_token, app_secret, webhook_url, scenario),
                host=host, port=port, print=None)
