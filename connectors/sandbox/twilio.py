"""A local HTTP server speaking Twilio's Messages API, with signed status callbacks.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` behaves like Twilio (basic auth,
form fields, Twilio-shaped JSON and error codes); accepted messages are then reported to
their ``StatusCallback`` as ``sent`` and a final status, each signed with the account's
auth token. ``GET`` on the same path is Twilio's list API (``To``, ``From``, ``DateSent``,
``DateSent>``/``DateSent<`` by UTC date, ``PageSize``/``PageToken`` paging, newest first), and
``GET .../Messages/{MessageSid}.json`` fetches one message (20404 if there is none). ``price`` and
``price_unit`` are null until the message is billed (``delivered`` or ``undelivered``), as Twilio's are.
``POST /_sandbox/inbound`` plays a customer texting the account's number: it delivers a
signed incoming-message webhook to ``inbound_url``. Inspection for tests and demos lives
under ``/_sandbox/``.
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
from datetime import date, datetime, timezone
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from connectors.sandbox.server import RunningSandbox, start

from connectors.sandbox.twilio_scenario import SandboxScenario, planned_outcome
from connectors.webhooks.twilio_signature import SIGNATURE_HEADER, compute_signature
from streams.sms import segment

__all__ = ["create_app", "serve", "run", "RunningSandbox", "SandboxScenario",
           "DEFAULT_ACCOUNT_SID", "DEFAULT_AUTH_TOKEN", "DEFAULT_FROM_NUMBER"]

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_AUTH_TOKEN = "sandbox-auth-token"  # not a secret: the sandbox's well-known default
DEFAULT_FROM_NUMBER = "+15005550006"  # Twilio's magic "valid From" test number
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
STAT_KEYS = ("requests", "accepted", "rejected", "rate_limited", "dropped", "callbacks_sent", "callbacks_failed",
             "inbound", "inbound_failed")
MAX_PAGE_SIZE = 1000


@dataclass
class _State:
    account_sid: str
    auth_token: str
    scenario: SandboxScenario
    inbound_url: str | None = None
    from_number: str = DEFAULT_FROM_NUMBER
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
    now = datetime.now(timezone.utc)
    message = {"sid": _new_sid(), "to": to, "from": sender, "body": body, "status_callback": callback,
               "status": "queued", "error_code": None, "num_segments": str(segment(body).segments),
               "direction": "outbound-api", "date_created": now, "date_updated": now, "date_sent": None,
               "price": None}
    state.messages[message["sid"]] = message
    state.stats["accepted"] += 1
    task = asyncio.get_running_loop().create_task(_report(state, message))
    state.tasks.add(task)
    task.add_done_callback(state.forget)
    logger.info("sandbox accepted sid=%s segments=%s", message["sid"], message["num_segments"])
    drop = state.scenario.drop_response_every
    if drop and state.stats["accepted"] % drop == 0:
        # Twilio has the message, the client never hears so: close the socket without a byte.
        state.stats["dropped"] += 1
        logger.info("sandbox dropped the response sid=%s", message["sid"])
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=201)  # never written: aiohttp sees the closed socket and gives up
    if state.scenario.slow_suffix and to.endswith(state.scenario.slow_suffix):
        await asyncio.sleep(state.scenario.slow_delay)  # stored already: a slow answer, not a slow send
    return web.json_response(status=201, data=_resource(state, message))


def _new_sid() -> str:
    return "SM" + secrets.token_hex(16)


def _rfc2822(when: datetime | None) -> str | None:
    """Twilio's date format: "Sat, 22 Nov 2026 11:00:00 +0000"."""
    return format_datetime(when.astimezone(timezone.utc).replace(microsecond=0)) if when else None


def _resource(state: _State, message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as Twilio's Message resource JSON."""
    uri = f"/{API_VERSION}/Accounts/{state.account_sid}/Messages/{message['sid']}.json"
    return {
        "sid": message["sid"], "account_sid": state.account_sid, "api_version": API_VERSION,
        "body": message["body"], "date_created": _rfc2822(message["date_created"]),
        "date_updated": _rfc2822(message["date_updated"]), "date_sent": _rfc2822(message["date_sent"]),
        "direction": message["direction"], "error_code": int(message["error_code"]) if message["error_code"] else None,
        "error_message": None, "from": message["from"], "to": message["to"], "messaging_service_sid": None,
        "num_media": "0", "num_segments": message["num_segments"], "price": message.get("price"),
        "price_unit": "USD" if message.get("price") is not None else None,
        "status": message["status"], "uri": uri, "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
    }


def _date_filter(query: Any) -> tuple[list[tuple[str, str, date]], str | None]:
    """``(op, parameter, date)`` triples from ``DateSent``/``DateSent>``/``DateSent<`` (UTC date part)."""
    filters = []
    for name, op in (("DateSent", "=="), ("DateSent>", ">="), ("DateSent<", "<=")):
        raw = query.get(name)
        if raw is None:
            continue
        try:
            filters.append((op, name, date.fromisoformat(raw.strip()[:10])))
        except ValueError:
            return [], f"Invalid {name} value"
    return filters, None


def _sent_on(message: dict[str, Any], filters: list[tuple[str, str, date]]) -> bool:
    """Like Twilio, a DateSent filter only sees messages that have a ``date_sent`` (left the queue)."""
    if not filters:
        return True
    if message["date_sent"] is None:
        return False
    day = message["date_sent"].astimezone(timezone.utc).date()
    return all(day == d if op == "==" else day >= d if op == ">=" else day <= d for op, _, d in filters)


async def _list_api(request: web.Request) -> web.Response:
    """Twilio's ``GET .../Messages.json``: filtered, newest first, paged with ``PageToken`` cursors."""
    state = request.app[STATE]
    if not _authorized(request, state):
        return _twilio_error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
    query = request.query
    filters, problem = _date_filter(query)
    try:
        page_size = int(query.get("PageSize", "50"))
        page = int(query.get("Page", "0"))
    except ValueError:
        problem = problem or "Invalid paging parameter"
        page_size = page = 0
    if not problem and not (1 <= page_size <= MAX_PAGE_SIZE and page >= 0):
        problem = f"PageSize must be between 1 and {MAX_PAGE_SIZE}"
    if problem:
        return _twilio_error(400, 20001, problem)
    to, sender = query.get("To"), query.get("From")
    matching = [m for m in reversed(list(state.messages.values()))  # insertion order breaks ties: newest first
                if (to is None or m["to"] == to) and (sender is None or m["from"] == sender)
                and _sent_on(m, filters)]
    matching.sort(key=lambda m: m["date_created"], reverse=True)
    start = page * page_size
    token = query.get("PageToken", "")
    if token.startswith("PA"):  # cursor: the sid of the previous page's last message
        after = next((i for i, m in enumerate(matching) if m["sid"] == token[2:]), None)
        if after is not None:
            start = after + 1
    chunk = matching[start:start + page_size]
    base = [(k, v) for k, v in (("To", to), ("From", sender)) if v is not None]
    base += [(name, d.isoformat()) for _, name, d in filters]
    path = f"/{API_VERSION}/Accounts/{state.account_sid}/Messages.json"

    def uri(number: int, cursor: str | None = None) -> str:
        params = [*base, ("PageSize", str(page_size)), ("Page", str(number))]
        return f"{path}?{urlencode(params + ([('PageToken', cursor)] if cursor else []))}"

    more = start + page_size < len(matching)
    return web.json_response({
        "messages": [_resource(state, m) for m in chunk],
        "first_page_uri": uri(0), "uri": uri(page, token or None),
        "next_page_uri": uri(page + 1, "PA" + chunk[-1]["sid"]) if more and chunk else None,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "page": page, "page_size": page_size, "start": start, "end": start + max(len(chunk) - 1, 0),
    })


async def _fetch_api(request: web.Request) -> web.Response:
    """Twilio's ``GET .../Messages/{MessageSid}.json``: one message, or 404 with error 20404."""
    state = request.app[STATE]
    if not _authorized(request, state):
        return _twilio_error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})
    message = state.messages.get(request.match_info["message_sid"])
    if message is None:
        path = f"/{API_VERSION}/Accounts/{state.account_sid}/Messages/{request.match_info['message_sid']}.json"
        return _twilio_error(404, 20404, f"The requested resource {path} was not found")
    return web.json_response(_resource(state, message))


def _bill(state: _State, message: dict[str, Any], status: str) -> None:
    """Twilio prices a message once the carrier has it: delivered or undelivered, never failed."""
    if status in ("delivered", "undelivered") and message["price"] is None:
        message["price"] = f"{-int(message['num_segments']) * state.scenario.segment_price:.5f}"


async def _report(state: _State, message: dict[str, Any]) -> None:
    """Move the message to ``sent`` and its final status, calling back for each step."""
    final, error_code = planned_outcome(message["to"], state.scenario)
    events: list[tuple[str, str | None]] = [("sent", None), (final, error_code)]
    if state.scenario.reorder_receipts:
        events.reverse()
    for status, code in events:
        await asyncio.sleep(state.scenario.callback_delay)
        message["status"], message["error_code"] = status, code
        _bill(state, message, status)
        message["date_updated"] = now = datetime.now(timezone.utc)
        if status == "sent" and message["date_sent"] is None:
            message["date_sent"] = now
        if message["status_callback"]:
            fields = {"MessageSid": message["sid"], "SmsSid": message["sid"], "MessageStatus": status,
                      "SmsStatus": status, "To": message["to"], "From": message["from"],
                      "AccountSid": state.account_sid, "ApiVersion": API_VERSION}
            if code:
                fields["ErrorCode"] = code
            for _ in range(2 if state.scenario.duplicate_receipts else 1):
                ok = await _post_callback(state, message["status_callback"], fields,
                                          f"callback sid={message['sid']} status={status}")
                state.stats["callbacks_sent" if ok else "callbacks_failed"] += 1
    message["status"], message["error_code"] = final, error_code
    _bill(state, message, final)
    if message["date_sent"] is None:  # reordered receipts: the final status came first
        message["date_sent"] = message["date_updated"]


async def _post_callback(state: _State, url: str, fields: dict[str, str], what: str) -> bool:
    """POST one signed webhook, retrying connection failures and 5xx like Twilio; True on 2xx."""
    assert state.session is not None
    headers = {SIGNATURE_HEADER: compute_signature(state.auth_token, url, fields),
               "User-Agent": "TwilioProxy/1.1"}
    attempts = 1 + state.scenario.callback_retries
    for attempt in range(attempts):
        try:
            async with state.session.post(url, data=fields, headers=headers, allow_redirects=False) as response:
                if response.status < 500:
                    if response.status >= 300:
                        logger.warning("sandbox %s answered HTTP %s", what, response.status)
                    return response.status < 300
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        if attempt + 1 < attempts:
            await asyncio.sleep(state.scenario.callback_retry_delay * 2**attempt)
    logger.warning("sandbox %s failed after %d attempts", what, attempts)
    return False


async def _inbound(request: web.Request) -> web.Response:
    """A customer texts the account's number: ``{"from": "+48...", "text": "STOP", "to"?: ...}``.

    Delivers Twilio's signed incoming-message webhook to ``inbound_url`` (retried like status
    callbacks) and answers ``{"sid": ...}`` once the receiver said 2xx; 502 if it never did.
    """
    state = request.app[STATE]
    if not state.inbound_url:
        return _twilio_error(409, 21609, "The sandbox has no inbound_url to deliver to.")
    try:
        body = await request.json()
    except ValueError:
        return _twilio_error(400, 20001, "The request body is not JSON")
    if not isinstance(body, dict):
        return _twilio_error(400, 20001, "The request body must be a JSON object")
    sender, text, to = body.get("from"), body.get("text"), body.get("to", state.from_number)
    if not isinstance(sender, str) or not _E164.match(sender.strip()):
        return _twilio_error(400, 21211, "'from' must be an E.164 phone number.")
    if not isinstance(text, str) or len(text) > 1600:
        return _twilio_error(400, 21602, "'text' must be a string of at most 1600 characters.")
    if not isinstance(to, str) or not to.strip():
        return _twilio_error(400, 21604, "'to' must be a phone number.")
    now = datetime.now(timezone.utc)
    message = {"sid": _new_sid(), "to": to.strip(), "from": sender.strip(), "body": text, "status_callback": None,
               "status": "received", "error_code": None, "num_segments": str(segment(text).segments if text else 1),
               "direction": "inbound", "date_created": now, "date_updated": now, "date_sent": now, "price": None}
    state.messages[message["sid"]] = message
    fields = {"MessageSid": message["sid"], "SmsMessageSid": message["sid"], "SmsSid": message["sid"],
              "AccountSid": state.account_sid, "From": message["from"], "To": message["to"], "Body": text,
              "NumMedia": "0", "NumSegments": message["num_segments"], "SmsStatus": "received",
              "ApiVersion": API_VERSION}
    ok = await _post_callback(state, state.inbound_url, fields, f"inbound sid={message['sid']}")
    state.stats["inbound" if ok else "inbound_failed"] += 1
    if not ok:
        return web.json_response({"sid": message["sid"], "delivered": False}, status=502)
    return web.json_response({"sid": message["sid"]})


async def _list_messages(request: web.Request) -> web.Response:
    keys = ("sid", "to", "body", "status_callback", "status", "error_code", "num_segments", "direction")
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
               scenario: SandboxScenario | None = None, *, inbound_url: str | None = None,
               from_number: str = DEFAULT_FROM_NUMBER) -> web.Application:
    """The sandbox as an aiohttp application (run it with any aiohttp runner).

    ``inbound_url`` receives the incoming-message webhooks ``/_sandbox/inbound`` plays (none
    without it); ``from_number`` is the account's number, the ``To`` of those messages.
    """
    app = web.Application()
    app[STATE] = _State(account_sid, auth_token, scenario or SandboxScenario(), inbound_url, from_number)
    app.cleanup_ctx.append(_client_session)
    app.router.add_post(f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json", _create_message)
    app.router.add_get(f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json", _list_api)
    app.router.add_get(f"/{API_VERSION}/Accounts/{{account_sid}}/Messages/{{message_sid}}.json", _fetch_api)
    app.router.add_post("/_sandbox/inbound", _inbound)
    app.router.add_get("/_sandbox/messages", _list_messages)
    app.router.add_get("/_sandbox/stats", _stats)
    app.router.add_post("/_sandbox/reset", _reset)
    return app


async def serve(host: str = "127.0.0.1", port: int = 0, *, account_sid: str = DEFAULT_ACCOUNT_SID,
                auth_token: str = DEFAULT_AUTH_TOKEN, scenario: SandboxScenario | None = None,
                inbound_url: str | None = None, from_number: str = DEFAULT_FROM_NUMBER) -> RunningSandbox:
    """Start the sandbox in the running event loop (port 0 picks a free port) and return at once."""
    app = create_app(account_sid, auth_token, scenario, inbound_url=inbound_url, from_number=from_number)
    running = await start(app, host, port)
    logger.info("twilio sandbox listening on %s account_sid=%s", running.base_url, account_sid)
    return running


def run(host: str = "127.0.0.1", port: int = 8765, *, account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN, scenario: SandboxScenario | None = None,
        inbound_url: str | None = None, from_number: str = DEFAULT_FROM_NUMBER) -> None:
    """Serve the sandbox until interrupted (the ``switchboard sandbox twilio`` entry point)."""
    logger.info("twilio sandbox starting on http://%s:%s account_sid=%s", host, port, account_sid)
    web.run_app(create_app(account_sid, auth_token, scenario, inbound_url=inbound_url, from_number=from_number),
                host=host, port=port, print=None)
