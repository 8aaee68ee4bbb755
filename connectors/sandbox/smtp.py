"""A local SMTP server (aiosmtpd) that keeps every message, with an HTTP inspection API beside it.

The SMTP side speaks real ESMTP on its own port (EHLO/HELO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA
with dot-unstuffing, RSET, NOOP, QUIT), so ``SmtpEmailProvider`` talks to it unchanged. What it
does wrong on purpose is set by :class:`SmtpSandboxScenario`. Inspection lives under
``/_sandbox/`` on a second (HTTP) port::

    GET  /_sandbox/messages   every stored message, parsed and decoded
    GET  /_sandbox/stats      counters (received, bounced, tempfailed, auth_failed, dropped)
    POST /_sandbox/reset      forget messages and counters
    GET  /_sandbox/reports    the reports sent back (DSNs, ARF complaints), raw, newest last
    POST /_sandbox/complaints {"message_id": "<Message-ID>"}: the recipient marks that message as spam

Reports (connectors/sandbox/smtp_reports.py) look as real ones do: a recipient whose local part starts with
``hardbounce`` is accepted (250) and then bounced with a DSN (5.1.1), as a receiving system that finds out
later; a complaint is an ARF report carrying the whole original. Each is kept under ``/_sandbox/reports``
and, when the scenario has a ``reports_url``, POSTed there as ``message/rfc822`` (how an e-mail service hands
bounces and feedback-loop reports to its customer's webhook).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import hmac
import logging
import signal
import weakref
from collections import Counter
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from typing import Any

import aiohttp
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from connectors.sandbox.smtp_reports import abuse_complaint, delivery_failure

__all__ = ["SmtpSandboxScenario", "RunningSmtpSandbox", "serve", "run", "recipient_reply",
           "DEFAULT_USERNAME", "DEFAULT_PASSWORD"]

logger = logging.getLogger(__name__)

DEFAULT_USERNAME = "sandbox"
DEFAULT_PASSWORD = "sandbox-password"  # not a secret: the sandbox's well-known default
SERVER_NAME = "sandbox.switchboard.local"  # also spares aiosmtpd a slow socket.getfqdn()
STAT_KEYS = ("received", "bounced", "tempfailed", "auth_failed", "dropped")
BOUNCE_REPLY = "550 5.1.1 Mailbox unavailable"
TEMPFAIL_REPLY = "451 4.7.1 Try again later"


@dataclass(frozen=True)
class SmtpSandboxScenario:
    """Behaviour knobs for the SMTP sandbox; the defaults accept everything, without AUTH.

    Recipients whose local part starts with ``bounce`` get ``550 5.1.1`` at RCPT, ``tempfail``
    gets ``451 4.7.1`` (see :func:`recipient_reply`).
    require_auth: advertise AUTH PLAIN/LOGIN and answer MAIL with 530 until the client
        authenticates as ``username``/``password`` (a wrong pair gets 535).
    drop_after_data_every: close every Nth connection after the DATA content arrived, without
        a reply (0 = never). The message IS stored, like a real server that accepted it but
        whose 250 was lost: the client cannot know.
    """

    require_auth: bool = False
    username: str = DEFAULT_USERNAME
    password: str = DEFAULT_PASSWORD
    drop_after_data_every: int = 0
    reports_url: str | None = None  # where DSNs and complaints are POSTed (message/rfc822); None: only kept
    bounce_after: float = 0.5  # seconds between accepting a ``hardbounce`` message and its DSN

    def __post_init__(self) -> None:
        if self.drop_after_data_every < 0 or self.bounce_after < 0:
            raise ValueError("drop_after_data_every and bounce_after must be >= 0")
        if self.require_auth and not (self.username and self.password):
            raise ValueError("require_auth needs a username and a password")

    def __repr__(self) -> str:
        return (f"SmtpSandboxScenario(require_auth={self.require_auth}, username={self.username!r}, "
                f"drop_after_data_every={self.drop_after_data_every}, reports_url={self.reports_url!r})")


def recipient_reply(address: str) -> str | None:
    """The RCPT reply the sandbox forces for ``address``, or None to accept it."""
    local = address.rsplit("@", 1)[0].lower()
    if local.startswith("bounce"):
        return BOUNCE_REPLY
    if local.startswith("tempfail"):
        return TEMPFAIL_REPLY
    return None


class _QuietMailLog(logging.Filter):
    """aiosmtpd's ``mail.log`` writes every command, addresses included, at INFO, and warns about its
    own deprecated ``Session.login_data`` on every AUTH: keep its real warnings, drop the rest."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING and "login_data is deprecated" not in record.getMessage()


def _quiet_mail_log() -> None:
    mail_log = logging.getLogger("mail.log")
    if not any(isinstance(f, _QuietMailLog) for f in mail_log.filters):
        mail_log.addFilter(_QuietMailLog())


@dataclass
class _State:
    scenario: SmtpSandboxScenario
    messages: list[dict[str, Any]] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    reports: list[str] = field(default_factory=list)
    originals: dict[str, tuple[bytes, str, str]] = field(default_factory=dict)  # Message-ID -> raw, from, to
    sending: set[asyncio.Task[None]] = field(default_factory=set)

    def report(self, raw: bytes, after: float = 0.0) -> None:
        """Keeps a report (``after`` seconds from now) and hands it to the scenario's ``reports_url``."""
        task = asyncio.create_task(self._report(raw, after))
        self.sending.add(task)
        task.add_done_callback(self.sending.discard)

    async def _report(self, raw: bytes, after: float) -> None:
        await asyncio.sleep(after)  # a receiving system finds out later: the sender has its 250 first
        self.reports.append(raw.decode("ascii", "replace"))
        if self.scenario.reports_url:
            await _post_report(self.scenario.reports_url, raw)


async def _post_report(url: str, raw: bytes) -> None:
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=raw, headers={"Content-Type": "message/rfc822"},
                                    timeout=aiohttp.ClientTimeout(total=10)) as response:
                if response.status >= 300:
                    logger.warning("smtp sandbox report refused by %s: %s", url, response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        logger.warning("smtp sandbox report not delivered to %s: %s", url, type(exc).__name__)


STATE = web.AppKey("smtp_sandbox_state", _State)


class _Handler:
    """aiosmtpd hooks: the scenario's verdicts and the message store."""

    def __init__(self, state: _State) -> None:
        self.state = state

    def authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: Any) -> AuthResult:
        scenario = self.state.scenario
        ok = (isinstance(auth_data, LoginPassword)
              and hmac.compare_digest(auth_data.login, scenario.username.encode())
              and hmac.compare_digest(auth_data.password, scenario.password.encode()))
        if not ok:
            self.state.stats["auth_failed"] += 1
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 5.7.8

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        if self.state.scenario.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        reply = recipient_reply(address)
        if reply is not None:
            self.state.stats["bounced" if reply == BOUNCE_REPLY else "tempfailed"] += 1
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        state = self.state
        raw = envelope.original_content or b""
        later = [rcpt for rcpt in envelope.rcpt_tos if rcpt.rsplit("@", 1)[0].lower().startswith("hardbounce")]
        for rcpt in later:  # accepted, then found undeliverable: a DSN to the envelope sender, nothing stored
            state.report(delivery_failure(raw, envelope.mail_from or "", rcpt, dt.datetime.now(dt.timezone.utc)),
                         after=state.scenario.bounce_after)
        if later and len(later) == len(envelope.rcpt_tos):
            return "250 2.0.0 OK queued"
        stored = _stored_message(envelope)
        if stored["message_id"]:
            state.originals[stored["message_id"]] = (raw, envelope.mail_from or "", envelope.rcpt_tos[0])
        state.messages.append(stored)
        state.stats["received"] += 1
        every = state.scenario.drop_after_data_every
        if every and state.stats["received"] % every == 0 and server.transport is not None:
            state.stats["dropped"] += 1
            logger.info("smtp sandbox dropped the connection after DATA message_id=%s", stored["message_id"])
            server.transport.close()
            # connection_lost() cancels this session's task: no reply is ever written.
            await asyncio.get_running_loop().create_future()
        logger.info("smtp sandbox accepted message_id=%s", stored["message_id"])
        return "250 2.0.0 OK queued"


def _stored_message(envelope: Envelope) -> dict[str, Any]:
    """The envelope and the parsed, decoded message, as the inspection API shows it."""
    raw = envelope.original_content or b""
    parsed = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)

    def header(name: str) -> str | None:
        value = parsed[name]
        return str(value) if value is not None else None

    return {
        "message_id": header("Message-ID"),
        "mail_from": envelope.mail_from,
        "rcpt_tos": list(envelope.rcpt_tos),
        "from": header("From"),
        "to": header("To"),
        "subject": header("Subject"),
        "date": header("Date"),
        "switchboard_message_id": header("X-Switchboard-Message-Id"),
        "list_unsubscribe": header("List-Unsubscribe"),
        "list_unsubscribe_post": header("List-Unsubscribe-Post"),
        "content_type": parsed.get_content_type(),
        "text": _body(parsed, "plain"),
        "html": _body(parsed, "html"),
        "headers": {name: str(value) for name, value in parsed.items()},
        "size": len(raw),
    }


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        return part.get_content()
    except (LookupError, ValueError):  # unknown charset, broken transfer encoding
        return None


# --- inspection API ----------------------------------------------------------------------------


async def _list_messages(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].messages)


async def _stats(request: web.Request) -> web.Response:
    stats = request.app[STATE].stats
    return web.json_response({key: stats[key] for key in STAT_KEYS})


async def _reports(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].reports)


async def _complain(request: web.Request) -> web.Response:
    """The recipient of a stored message marks it as spam: an ARF report for it."""
    state = request.app[STATE]
    try:
        message_id = (await request.json())["message_id"]
        raw, mail_from, recipient = state.originals[message_id]
    except (ValueError, KeyError, TypeError):
        return web.json_response({"error": "no stored message with that message_id"}, status=404)
    state.report(abuse_complaint(raw, mail_from, recipient, dt.datetime.now(dt.timezone.utc)))
    return web.json_response({"complained": message_id})


async def _reset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.messages.clear()
    state.stats.clear()
    state.reports.clear()
    state.originals.clear()
    return web.json_response({"reset": True})


def _create_app(state: _State) -> web.Application:
    """The inspection API over ``state`` as an aiohttp application."""
    app = web.Application()
    app[STATE] = state
    app.router.add_get("/_sandbox/messages", _list_messages)
    app.router.add_get("/_sandbox/stats", _stats)
    app.router.add_post("/_sandbox/reset", _reset)
    app.router.add_get("/_sandbox/reports", _reports)
    app.router.add_post("/_sandbox/complaints", _complain)
    return app


# --- running it --------------------------------------------------------------------------------


@dataclass
class RunningSmtpSandbox:
    """A started sandbox: point ``SmtpEmailProvider(host, smtp_port)`` at it, inspect at ``http_base_url``."""

    host: str
    smtp_port: int
    http_base_url: str
    _server: asyncio.AbstractServer
    _runner: web.AppRunner
    _sessions: weakref.WeakSet[SMTP]

    async def aclose(self) -> None:
        self._server.close()
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        await self._server.wait_closed()
        await self._runner.cleanup()


def _smtp_factory(state: _State, loop: asyncio.AbstractEventLoop, sessions: weakref.WeakSet[SMTP]):
    handler = _Handler(state)
    require_auth = state.scenario.require_auth

    def factory() -> SMTP:
        # AUTH over plain TCP is fine on loopback; aiosmtpd only offers it when auth_require_tls
        # is off. MAIL enforces the login itself (handle_MAIL), which spares aiosmtpd's warning.
        session = SMTP(handler, hostname=SERVER_NAME, loop=loop, auth_require_tls=not require_auth,
                       authenticator=handler.authenticate)
        sessions.add(session)
        return session

    return factory


async def serve(host: str = "127.0.0.1", smtp_port: int = 0, http_port: int = 0,
                scenario: SmtpSandboxScenario | None = None) -> RunningSmtpSandbox:
    """Start both servers in the running event loop (port 0 picks a free port) and return at once."""
    _quiet_mail_log()
    state = _State(scenario or SmtpSandboxScenario())
    loop = asyncio.get_running_loop()
    sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()
    server = await loop.create_server(_smtp_factory(state, loop, sessions), host, smtp_port)
    runner = web.AppRunner(_create_app(state), access_log=None)
    try:
        await runner.setup()
        await web.TCPSite(runner, host, http_port).start()
    except BaseException:
        server.close()
        await server.wait_closed()
        await runner.cleanup()
        raise
    bound_smtp = server.sockets[0].getsockname()[1]
    bound_http = runner.addresses[0][1]
    http_base_url = f"http://{'[' + host + ']' if ':' in host else host}:{bound_http}"
    logger.info("smtp sandbox listening on %s:%s, inspection on %s (%r)", host, bound_smtp, http_base_url,
                state.scenario)
    return RunningSmtpSandbox(host, bound_smtp, http_base_url, server, runner, sessions)


def run(host: str = "127.0.0.1", smtp_port: int = 1025, http_port: int = 8025,
        scenario: SmtpSandboxScenario | None = None) -> None:
    """Serve the sandbox until SIGINT or SIGTERM (the ``switchboard sandbox smtp`` entry point)."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        sandbox = await serve(host, smtp_port, http_port, scenario)
        try:
            await stop.wait()
        finally:
            await sandbox.aclose()

    asyncio.run(main())
