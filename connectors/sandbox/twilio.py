"""A local HTTP server speaking Twilio's Messages API, with signed status callbacks.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` behaves like Twilio (basic auth,
form fields, Twilio-shaped JSON and error codes); accepted messages are then reported to
their ``StatusCallback`` as ``sent`` and a final status, each signed with the account's
auth token. Inspection for tests and demos lives under ``/_sandbox/``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import aiohttp
from aiohttp import web

from connectors.sandbox.twilio_scenario import SandboxScenario, planned_outcome
from connectors.webhooks.twilio_signature import SIGNATURE_HEADER, compute_signature
from streams.sms import segment

__all__ = ["create_app", "serve", "run", "RunningSandbox", "SandboxScenario",
           "DEFAULT_ACCOUNT_SID", "DEFAULT_AUTH_TOKEN"]

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "sandbox-auth-token"  # not a secret: the sandbox's well-known default
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
STAT_KEYS = ("requests", "accepted", "rejected", "rate_limited", "callbacks_sent", "callbacks_failed")


@dataclass
class _State:
    account_sid: str
    auth_token: str
    scenario: SandboxScenario
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None

    def forget(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("sandbox callback task crashed", exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


STATE = web.AppKey("twilio_sandbox_state", _State)


def _twilio_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    payload = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
               "status": status}
    return web.json_response(payload, status=status, headers=headers)


def _authorized(request: web.Request, state: _State) -> bool:
    try:
        auth = aiohttp.BasicAuth.decode(request.headers.get("Authorization", ""))
    except ValueError:
        return False
    return (auth.login == state.account_sid == request.match_info["account_sid"]
            and hmac.compare_digest(auth.password.encode(), state.auth_token.encode()))


async def _create_message(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.stats["requests"] += 1
    if not _authorized(request, state):
        state.stats["rejected"] += 1
        return _twilio_error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
    every = state.scenario.rate_limit_every
    if every and state.stats["requests"] % every == 0:
        state.stats["rate_limited"] += 1
        return _twilio_error(429, 20429, "Too Many Requests", {"Retry-After": "1"})
    form = await request.post()
    to, sender, body = (str(form.get(k, "")).strip() for k in ("To", "From", "Body"))
    callback = str(form.get("StatusCallback", "")).strip() or None
    problem = (
        (21604, "A 'To' phone number is required.") if not to
        else (21211, f"The 'To' number {to} is not a valid phone number.") if not _E164.match(to)
        else (21603, "A 'From' phone number is required.") if not sender
        else (21602, "Message body is required.") if not body
        else (21617, "The concatenated message body exceeds the 1600 character limit.") if len(body) > 1600
        else None
    )
    if problem:
        state.stats["rejected"] += 1
        return _twilio_error(400, *problem)
    sid = "SM" + secrets.token_hex(16)
    now = format_datetime(datetime.now(timezone.utc))
    message = {"sid": sid, "to": to, "from": sender, "body": body, "status_callback": callback,
               "status": "queued", "error_code": None, "num_segments": str(segment(body).segments)}
    state.messages[sid] = message
    state.stats["accepted"] += 1
    task = asyncio.get_running_loop().create_task(_report(state, message))
    state.tasks.add(task)
    task.add_done_callback(state.forget)
    logger.info("sandbox accepted sid=%s segments=%s", sid, message["num_segments"])
    uri = f"/{API_VERSION}/Accounts/{state.account_sid}/Messages/{sid}.json"
    return web.json_response(status=201, data={
        "sid": sid, "account_sid": state.account_sid, "api_version": API_VERSION, "body": body,
        "date_created": now, "date_updated": now, "date_sent": None, "direction": "outbound-api",
        "error_code": None, "error_message": None, "from": sender, "to": to,
        "messaging_service_sid": None, "num_media": "0", "num_segments": message["num_segments"],
        "price": None, "price_unit": "USD", "status": "queued", "uri": uri,
        "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
    })


async def _report(state: _State, message: dict[str, Any]) -> None:
    """Move the message to ``sent`` and its final status, calling back for each step."""
    final, error_code = planned_outcome(message["to"], state.scenario)
    events: list[tuple[str, str | None]] = [("sent", None), (final, error_code)]
    if state.scenario.reorder_receipts:
        events.reverse()
    for status, code in events:
        await asyncio.sleep(state.scenario.callback_delay)
        message["status"], message["error_code"] = status, code
        if message["status_callback"]:
            fields = {"MessageSid": message["sid"], "SmsSid": message["sid"], "MessageStatus": status,
                      "SmsStatus": status, "To": message["to"], "From": message["from"],
                      "AccountSid": state.account_sid, "ApiVersion": API_VERSION}
            if code:
                fields["ErrorCode"] = code
            for _ in range(2 if state.scenario.duplicate_receipts else 1):
                ok = await _post_callback(state, message["status_callback"], fields)
                state.stats["callbacks_sent" if ok else "callbacks_failed"] += 1
    message["status"], message["error_code"] = final, error_code


async def _post_callback(state: _State, url: str, fields: dict[str, str]) -> bool:
    """POST one signed callback, retrying connection failures and 5xx like Twilio; True on 2xx."""
    assert state.session is not None
    headers = {SIGNATURE_HEADER: compute_signature(state.auth_token, url, fields),
               "User-Agent": "TwilioProxy/1.1"}
    attempts = 1 + state.scenario.callback_retries
    for attempt in range(attempts):
        try:
            async with state.session.post(url, data=fields, headers=headers, allow_redirects=False) as response:
                if response.status < 500:
                    if response.status >= 300:
                        logger.warning("sandbox callback sid=%s status=%s answered HTTP %s",
                                       fields["MessageSid"], fields["MessageStatus"], response.status)
                    return response.status < 300
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        if attempt + 1 < attempts:
            await asyncio.sleep(state.scenario.callback_retry_delay * 2**attempt)
    logger.warning("sandbox callback sid=%s status=%s failed after %d attempts",
                   fields["MessageSid"], fields["MessageStatus"], attempts)
    return False


async def _list_messages(request: web.Request) -> web.Response:
    keys = ("sid", "to", "body", "status_callback", "status", "error_code", "num_segments")
    return web.json_response([{k: m[k] for k in keys} for m in request.app[STATE].messages.values()])


async def _stats(request: web.Request) -> web.Response:
    stats = request.app[STATE].stats
    return web.json_response({key: stats[key] for key in STAT_KEYS})


async def _reset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    await state.cancel_tasks()
    state.messages.clear()
    state.stats.clear()
    return web.json_response({"reset": True})


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    state.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
    yield
    await state.cancel_tasks()
    await state.session.close()


def create_app(account_sid: str = DEFAULT_ACCOUNT_SID, auth_token: str = DEFAULT_AUTH_TOKEN,
               scenario: SandboxScenario | None = None) -> web.Application:
    """The sandbox as an aiohttp application (run it with any aiohttp runner)."""
    app = web.Application()
    app[STATE] = _State(account_sid, auth_token, scenario or SandboxScenario())
    app.cleanup_ctx.append(_client_session)
    app.router.add_post(f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json", _create_message)
    app.router.add_get("/_sandbox/messages", _list_messages)
    app.router.add_get("/_sandbox/stats", _stats)
    app.router.add_post("/_sandbox/reset", _reset)
    return app


@dataclass
class RunningSandbox:
    """A started sandbox; ``base_url`` goes into ``TwilioSmsProvider(base_url=...)``."""

    runner: web.AppRunner
    base_url: str

    async def aclose(self) -> None:
        await self.runner.cleanup()


async def serve(host: str = "127.0.0.1", port: int = 0, *, account_sid: str = DEFAULT_ACCOUNT_SID,
                auth_token: str = DEFAULT_AUTH_TOKEN, scenario: SandboxScenario | None = None) -> RunningSandbox:
    """Start the sandbox in the running event loop (port 0 picks a free port) and return at once."""
    runner = web.AppRunner(create_app(account_sid, auth_token, scenario), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound_port = runner.addresses[0][1]
    base_url = f"http://{'[' + host + ']' if ':' in host else host}:{bound_port}"
    logger.info("twilio sandbox listening on %s account_sid=%s", base_url, account_sid)
    return RunningSandbox(runner, base_url)


def run(host: str = "127.0.0.1", port: int = 8765, *, account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN, scenario: SandboxScenario | None = None) -> None:
    """Serve the sandbox until interrupted (the ``switchboard sandbox twilio`` entry point)."""
    logger.info("twilio sandbox starting on http://%s:%s account_sid=%s", host, port, account_sid)
    web.run_app(create_app(account_sid, auth_token, scenario), host=host, port=port, print=None)
