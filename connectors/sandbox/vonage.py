"""A local HTTP server speaking Vonage's SMS API, with (optionally signed) delivery receipts.

``POST /sms/json`` (form or JSON body) answers like Vonage: always HTTP 200, one entry per
concatenated part, ``status`` "0" or an SMS API error code (2 missing params, 3 invalid
``to``, 4 bad credentials, 9 out of credit, 14 bad signature, 23 a ``callback`` over Vonage's
100 characters, 32 signature *and* secret, 1 throttled). Credentials come in the body
(``api_key`` + ``api_secret`` or ``sig``) or, as the v4 SDK sends them, as HTTP Basic auth.
Accepted parts are later reported to ``callback`` with Vonage's DLR fields, one receipt per
part, as a GET query, a POST form or a POST JSON body (``SandboxScenario.callback_method``);
with a ``signature_secret`` each receipt carries ``timestamp``, ``nonce`` and a ``sig`` by the
account's ``signature_method`` (as chosen in Vonage's dashboard; requests are checked by it too).
Inspection lives under ``/_sandbox/``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from connectors.sandbox.server import RunningSandbox, start

from connectors.webhooks.vonage_signature import compute_signature
from streams.sms import GSM7_PER_PART, GSM7_SINGLE, UCS2_PER_PART, UCS2_SINGLE, segment

__all__ = ["create_app", "serve", "run", "RunningSandbox", "SandboxScenario", "planned_outcome",
           "FAILURES", "DEFAULT_API_KEY", "DEFAULT_API_SECRET"]

logger = logging.getLogger(__name__)

DEFAULT_API_KEY = "sandbox1"
DEFAULT_API_SECRET = "sandbox-api-secret"  # not a secret: the sandbox's well-known default
NETWORK = "23410"
_TO = re.compile(r"^[1-9]\d{6,14}$")
STAT_KEYS = ("requests", "accepted", "rejected", "throttled", "parts", "callbacks_sent", "callbacks_failed")
CALLBACK_METHODS = ("GET", "POST", "POST-JSON")
CALLBACK_LIMIT = 100  # characters of ``callback`` Vonage's SMS API accepts

# (final DLR status, DLR err-code) for a failing message; Vonage's DLR error codes.
FAILURES: tuple[tuple[str, str], ...] = (
    ("expired", "2"),  # absent subscriber, temporary
    ("failed", "3"),  # absent subscriber, permanent
    ("failed", "5"),  # portability error
    ("rejected", "6"),  # anti-spam rejection
    ("failed", "9"),  # illegal number
)
# Numbers ending 000N always fail with DLR err-code N, whatever the fail_rate.
MAGIC_SUFFIXES: dict[str, tuple[str, str]] = {f"000{code}": (status, code) for status, code in FAILURES}


@dataclass(frozen=True)
class SandboxScenario:
    """Behaviour knobs for the Vonage sandbox; the defaults look like a healthy real account.

    fail_rate: fraction of numbers whose messages end failed/expired/rejected, picked from a
        hash of the number so reruns agree. Numbers ending 0002/0003/0005/0006/0009 always
        fail with that DLR err-code.
    throttle_every: answer every Nth send request with status 1 "Throttled" (0 = never).
    throttle_last_part: accept every part of a multipart message but the last, which is
        throttled (a partial success).
    balance / part_price: account credit and price per part (status 9 once it runs out).
    callback_method: "GET", "POST" (form) or "POST-JSON", like the dashboard's webhook setting.
    callback_delay: seconds before the receipts of a message are sent.
    duplicate_receipts: send every receipt twice.
    callback_retries / callback_retry_delay: extra attempts (exponential backoff) when the
        receiver refuses the connection, times out or answers 5xx.
    """

    fail_rate: float = 0.02
    throttle_every: int = 0
    throttle_last_part: bool = False
    balance: float = 100.0
    part_price: float = 0.0333
    callback_method: str = "POST"
    callback_delay: float = 0.5
    duplicate_receipts: bool = False
    callback_retries: int = 3
    callback_retry_delay: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError("fail_rate must be within [0, 1]")
        if self.throttle_every < 0 or self.callback_retries < 0:
            raise ValueError("throttle_every and callback_retries must be >= 0")
        if self.callback_delay < 0 or self.callback_retry_delay < 0 or self.part_price < 0:
            raise ValueError("delays and part_price must be >= 0")
        if self.callback_method not in CALLBACK_METHODS:
            raise ValueError(f"callback_method must be one of {', '.join(CALLBACK_METHODS)}")


def planned_outcome(to: str, scenario: SandboxScenario) -> tuple[str, str]:
    """Final (DLR status, err-code) for a message to ``to``: the same for the same number, always."""
    for suffix, failure in MAGIC_SUFFIXES.items():
        if to.endswith(suffix):
            return failure
    digest = hashlib.sha256(to.encode("utf-8")).digest()
    if int.from_bytes(digest[:8], "big") / 2**64 < scenario.fail_rate:
        return FAILURES[digest[8] % len(FAILURES)]
    return "delivered", "0"


def split_parts(text: str, kind: str) -> list[str]:
    """The parts Vonage sends ``text`` as, for ``type`` ``text`` or ``unicode``."""
    info = segment(text)
    if (kind == "unicode") == (info.encoding == "UCS-2"):
        return list(info.parts)
    if kind == "unicode":  # GSM-7 text sent as UCS-2: one UTF-16 unit per character
        single, per_part = UCS2_SINGLE, UCS2_PER_PART
    else:  # non-GSM text forced to type=text: Vonage substitutes one character for each
        single, per_part = GSM7_SINGLE, GSM7_PER_PART
    if len(text) <= single:
        return [text]
    return [text[i:i + per_part] for i in range(0, len(text), per_part)]


@dataclass
class _State:
    api_key: str
    api_secret: str
    signature_secret: str | None
    scenario: SandboxScenario
    signature_method: str = "md5hash"
    balance: float = 0.0
    messages: list[dict[str, Any]] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None

    def forget(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("sandbox receipt task crashed", exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


STATE = web.AppKey("vonage_sandbox_state", _State)


def _answer(*parts: Mapping[str, str]) -> web.Response:
    return web.json_response({"message-count": str(len(parts)), "messages": list(parts)})


def _refusal(state: _State, status: str, text: str) -> web.Response:
    state.stats["throttled" if status == "1" else "rejected"] += 1
    return _answer({"status": status, "error-text": text})


def _basic_credentials(request: web.Request) -> dict[str, str]:
    """``api_key``/``api_secret`` from an HTTP Basic ``Authorization`` header (none: empty)."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return {}
    try:
        auth = aiohttp.BasicAuth.decode(header)
    except ValueError:
        return {"api_key": ""}  # a malformed header is no credential
    return {"api_key": auth.login, "api_secret": auth.password}


def _auth_problem(state: _State, fields: Mapping[str, str]) -> tuple[str, str] | None:
    """Vonage's status for the credentials in ``fields``, or None if they are good."""
    key, secret, sig = (fields.get(k, "") for k in ("api_key", "api_secret", "sig"))
    if not key:
        return "2", "Missing api_key"
    if secret and sig:
        return "32", "Signature And API Secret Disallowed"
    if sig:
        if not state.signature_secret or "timestamp" not in fields:
            return "14", "Invalid Signature"
        expected = compute_signature(state.signature_secret, fields, state.signature_method)
        if key != state.api_key or not hmac.compare_digest(expected, sig.lower()):
            return "14", "Invalid Signature"
        return None
    if not secret:
        return "2", "Missing api_secret"
    if key != state.api_key or not hmac.compare_digest(secret.encode(), state.api_secret.encode()):
        return "4", "Bad Credentials"
    return None


async def _send(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.stats["requests"] += 1
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _refusal(state, "2", "Missing params")
        fields = {str(k): str(v) for k, v in body.items() if v is not None}
    else:
        fields = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    credentials = fields if "api_key" in fields else {**_basic_credentials(request), **fields}
    problem = _auth_problem(state, credentials)
    if problem:
        return _refusal(state, *problem)
    every = state.scenario.throttle_every
    if every and state.stats["requests"] % every == 0:
        return _refusal(state, "1", "Throughput Rate Exceeded - please wait [ 1000 ] and retry")
    to, sender, text = (fields.get(k, "").strip() for k in ("to", "from", "text"))
    kind = fields.get("type", "text")
    problem = (
        ("2", "Missing to param") if not to
        else ("2", "Missing from param") if not sender
        else ("2", "Missing text param") if not text
        else ("3", "Invalid to address") if not _TO.match(to)
        else ("3", "Invalid type param") if kind not in ("text", "unicode")
        else ("23", "Invalid Callback Url") if len(fields.get("callback", "")) > CALLBACK_LIMIT
        else None
    )
    if problem:
        return _refusal(state, *problem)
    parts = split_parts(fields["text"], kind)
    if state.balance < state.scenario.part_price * len(parts):
        return _refusal(state, "9", "Quota Exceeded - rejected")
    throttled_tail = state.scenario.throttle_last_part and len(parts) > 1
    entries: list[dict[str, str]] = []
    message = {"message_ids": [], "to": to, "from": sender, "text": fields["text"], "type": kind,
               "client_ref": fields.get("client-ref"), "callback": fields.get("callback") or None,
               "parts": len(parts), "status": "submitted", "err_code": None}
    for index in range(len(parts)):
        if throttled_tail and index == len(parts) - 1:
            entries.append({"status": "1", "error-text": "Throughput Rate Exceeded - please wait [ 1000 ] and retry"})
            continue
        state.balance -= state.scenario.part_price
        part_id = secrets.token_hex(8).upper()
        message["message_ids"].append(part_id)
        entries.append({"to": to, "message-id": part_id, "status": "0",
                        "remaining-balance": f"{state.balance:.8f}",
                        "message-price": f"{state.scenario.part_price:.8f}", "network": NETWORK})
    state.messages.append(message)
    state.stats["accepted"] += 1
    state.stats["parts"] += len(message["message_ids"])
    if throttled_tail:
        state.stats["throttled"] += 1
    task = asyncio.get_running_loop().create_task(_report(state, message))
    state.tasks.add(task)
    task.add_done_callback(state.forget)
    logger.info("sandbox accepted client_ref=%s parts=%d", message["client_ref"], len(message["message_ids"]))
    return _answer(*entries)


async def _report(state: _State, message: dict[str, Any]) -> None:
    """After ``callback_delay``, send the final receipt of every accepted part."""
    status, err_code = planned_outcome(message["to"], state.scenario)
    await asyncio.sleep(state.scenario.callback_delay)
    message["status"], message["err_code"] = status, err_code
    if not message["callback"]:
        return
    now = datetime.now(timezone.utc)
    for part_id in message["message_ids"]:
        fields = {"msisdn": message["to"], "to": message["from"], "network-code": NETWORK,
                  "messageId": part_id, "price": f"{state.scenario.part_price:.8f}", "status": status,
                  "scts": now.strftime("%y%m%d%H%M"), "err-code": err_code, "api-key": state.api_key,
                  "message-timestamp": now.strftime("%Y-%m-%d %H:%M:%S")}
        if message["client_ref"]:
            fields["client-ref"] = message["client_ref"]
        for _ in range(2 if state.scenario.duplicate_receipts else 1):
            ok = await _deliver(state, message["callback"], _signed(state, fields))
            state.stats["callbacks_sent" if ok else "callbacks_failed"] += 1


def _signed(state: _State, fields: dict[str, str]) -> dict[str, str]:
    if not state.signature_secret:
        return fields
    signed = {**fields, "timestamp": str(int(time.time())), "nonce": str(uuid.uuid4())}
    signed["sig"] = compute_signature(state.signature_secret, signed, state.signature_method)
    return signed


async def _deliver(state: _State, url: str, fields: dict[str, str]) -> bool:
    """Send one receipt, retrying connection failures and 5xx; True on 2xx."""
    assert state.session is not None
    method = state.scenario.callback_method
    attempts = 1 + state.scenario.callback_retries
    for attempt in range(attempts):
        try:
            async with _request(state.session, method, url, fields) as response:
                if response.status < 500:
                    if response.status >= 300:
                        logger.warning("sandbox receipt id=%s answered HTTP %s", fields["messageId"], response.status)
                    return response.status < 300
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass
        if attempt + 1 < attempts:
            await asyncio.sleep(state.scenario.callback_retry_delay * 2**attempt)
    logger.warning("sandbox receipt id=%s failed after %d attempts", fields["messageId"], attempts)
    return False


def _request(session: aiohttp.ClientSession, method: str, url: str, fields: dict[str, str]) -> Any:
    """The receipt as Vonage's webhook setting sends it (an ``async with``-able request)."""
    if method == "GET":  # the receipt's fields join whatever query the callback URL already has
        parts = urlsplit(url)
        query = "&".join(q for q in (parts.query, urlencode(fields)) if q)
        return session.get(urlunsplit(parts._replace(query=query)), allow_redirects=False)
    if method == "POST-JSON":
        return session.post(url, json=fields, allow_redirects=False)
    return session.post(url, data=fields, allow_redirects=False)


async def _list_messages(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].messages)


async def _stats(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.json_response({**{key: state.stats[key] for key in STAT_KEYS},
                              "balance": round(state.balance, 8)})


async def _reset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    await state.cancel_tasks()
    state.messages.clear()
    state.stats.clear()
    state.balance = state.scenario.balance
    return web.json_response({"reset": True})


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    state.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
    yield
    await state.cancel_tasks()
    await state.session.close()


def create_app(api_key: str = DEFAULT_API_KEY, api_secret: str = DEFAULT_API_SECRET,
               signature_secret: str | None = None, scenario: SandboxScenario | None = None,
               signature_method: str = "md5hash") -> web.Application:
    """The sandbox as an aiohttp application (run it with any aiohttp runner)."""
    scenario = scenario or SandboxScenario()
    compute_signature("", {}, signature_method)  # an unknown method fails at once
    app = web.Application()
    app[STATE] = _State(api_key, api_secret, signature_secret or None, scenario, signature_method,
                        balance=scenario.balance)
    app.cleanup_ctx.append(_client_session)
    app.router.add_post("/sms/json", _send)
    app.router.add_get("/_sandbox/messages", _list_messages)
    app.router.add_get("/_sandbox/stats", _stats)
    app.router.add_post("/_sandbox/reset", _reset)
    return app


async def serve(host: str = "127.0.0.1", port: int = 0, *, api_key: str = DEFAULT_API_KEY,
                api_secret: str = DEFAULT_API_SECRET, signature_secret: str | None = None,
                scenario: SandboxScenario | None = None, signature_method: str = "md5hash") -> RunningSandbox:
    """Start the sandbox in the running event loop (port 0 picks a free port) and return at once."""
    running = await start(create_app(api_key, api_secret, signature_secret, scenario, signature_method), host, port)
    logger.info("vonage sandbox listening on %s api_key=%s signed=%s", running.base_url, api_key, bool(signature_secret))
    return running


def run(host: str = "127.0.0.1", port: int = 8767, *, api_key: str = DEFAULT_API_KEY,
        api_secret: str = DEFAULT_API_SECRET, signature_secret: str | None = None,
        scenario: SandboxScenario | None = None, signature_method: str = "md5hash") -> None:
    """Serve the sandbox until interrupted."""
    logger.info("vonage sandbox starting on http://%s:%s api_key=%s", host, port, api_key)
    web.run_app(create_app(api_key, api_secret, signature_secret, scenario, signature_method),
                host=host, port=port, print=None)
