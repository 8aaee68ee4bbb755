"""E-mail over SMTP (RFC 5321) with aiosmtplib: one connection per message, MIME built by the stdlib.

:func:`build_message` is pure: it turns an ``EmailRequest`` into a 7-bit-clean MIME message with a
deterministic ``Message-ID`` (``<message_id@domain>``), so a duplicate after an ambiguous DATA can
be recognised. All aiosmtplib failures are translated in one place, :func:`map_smtp_errors`, which
is told the stage of the SMTP transaction, because the same failure means different things there::

    stage     disconnect / timeout      4xx         5xx
    connect   transient                 transient   misconfigured   (greeting, TLS, EHLO)
    auth      transient                 transient   misconfigured   (530/534/535/538: credentials)
    mail      transient                 transient   misconfigured   (our sender is refused; 552 size: rejected)
    rcpt      transient                 transient   rejected(code)  (550 5.1.1 mailbox unavailable, 553, ...)
    data      AMBIGUOUS                 transient   rejected(code)  (the server may hold the message)

TLS and certificate failures, and a server without AUTH when we have credentials, are misconfigured.
``code`` is always the SMTP reply code as a string ("550").
"""

from __future__ import annotations

import asyncio

import logging
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage, MIMEPart
from email.policy import Policy
from typing import Literal

import aiosmtplib
from aiosmtplib import SMTPException, SMTPResponseException, SMTPServerDisconnected, SMTPTimeoutError
from pydantic import SecretStr

from connectors.errors import (
    ProviderAmbiguousError,
    ProviderError,
    ProviderMisconfiguredError,
    ProviderRejectedError,
    ProviderTransientError,
)
from connectors.providers.base import EmailRequest, ProviderReceipt

__all__ = ["SmtpEmailProvider", "build_message", "map_smtp_errors", "message_id_header", "Stage"]

logger = logging.getLogger(__name__)

PROVIDER = "smtp"
Stage = Literal["connect", "auth", "mail", "rcpt", "data"]


class _VerbatimHeader(UnstructuredHeader):
    """A header machines read back byte for byte: the List-Unsubscribe URL. The stdlib would fold a
    URL longer than ~57 characters into RFC 2047 encoded-words, which mailbox providers do not
    decode there, so one-click unsubscribe would silently break. Emitted as is (ASCII, < 998)."""

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


_HEADERS = HeaderRegistry()  # our own: a clone of policy.SMTP would share (and we'd mutate) the global one
_HEADERS.map_to_type("list-unsubscribe", _VerbatimHeader)
# policy.SMTP (CRLF line endings) but 7-bit clean: non-ASCII bodies become quoted-printable or
# base64 and headers RFC 2047 encoded-words, so no server needs 8BITMIME or SMTPUTF8.
POLICY = policy.SMTP.clone(cte_type="7bit", header_factory=_HEADERS)
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058
_AUTH_CODES = frozenset({530, 534, 535, 538})  # auth required / too weak / invalid / encryption required
_SIZE_EXCEEDED = 552
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[!-;=?-~]{1,900}$")  # printable ASCII, no space, '<' or '>'
_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_EMAIL_LIKE = re.compile(r"[^\s<>()\[\]:;,\"']+@[^\s<>()\[\]:;,\"']+")


# --- the message -------------------------------------------------------------------------------


def message_id_header(message_id: str, domain: str) -> str:
    """``<message_id@domain>``: the same for every attempt at the same message."""
    if not _DOT_ATOM.match(message_id):
        raise ValueError("message_id cannot form a Message-ID (it must be RFC 5322 dot-atom text)")
    return f"<{message_id}@{domain}>"


def build_message(request: EmailRequest, sender: str, domain: str, *, now: datetime | None = None) -> EmailMessage:
    """The MIME message for ``request``: text/plain, or multipart/alternative when there is HTML.

    ``sender`` is the default From (``request.sender`` wins). Raises ``ValueError`` (without
    the addresses in the message) when an address or header cannot be encoded.
    """
    message = EmailMessage(policy=POLICY)
    message["From"] = _single_address(request.sender or sender, "sender")
    message["To"] = _single_address(request.to, "recipient")
    message["Subject"] = request.subject
    message["Date"] = now or datetime.now(timezone.utc)
    message["Message-ID"] = message_id_header(request.message_id, domain)
    message["X-Switchboard-Message-Id"] = request.message_id
    if request.list_unsubscribe:
        url = request.list_unsubscribe
        if not _URL.match(url):
            raise ValueError("list_unsubscribe must be an ASCII URL without spaces or angle brackets")
        message["List-Unsubscribe"] = f"<{url}>"
        if url.lower().startswith("https://"):  # RFC 8058 one-click needs an HTTPS URI to POST to
            message["List-Unsubscribe-Post"] = ONE_CLICK
    message.set_content(request.text)
    if request.html is not None:
        message.make_alternative()
        html = MIMEPart(policy=POLICY)  # a part, not a message: no second MIME-Version header
        html.set_content(request.html, subtype="html")
        message.attach(html)
    return message


def _single_address(value: str, what: str) -> Address:
    """Exactly one ``local@domain`` address; an IDN domain becomes punycode (no SMTPUTF8 needed)."""
    try:
        header = POLICY.header_factory("To", value)
    except (ValueError, IndexError):  # the stdlib parser raises IndexError on "name@"
        raise ValueError(f"{what} is not a single valid e-mail address") from None  # the cause quotes it
    addresses = header.addresses
    if header.defects or len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise ValueError(f"{what} is not a single valid e-mail address")
    address = addresses[0]
    if not address.username.isascii():
        raise ValueError(f"{what} has a non-ASCII local part (SMTPUTF8 is not supported)")
    try:
        domain = address.domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{what} has an invalid domain") from None
    return Address(display_name=address.display_name, username=address.username, domain=domain)


# --- the error boundary ------------------------------------------------------------------------


@contextmanager
def map_smtp_errors(stage: Stage) -> Iterator[None]:
    """Translate aiosmtplib and socket failures during ``stage`` into ``connectors.errors``."""
    try:
        yield
    except SMTPResponseException as exc:
        # Before the generic disconnect branch: SMTPConnectResponseError is also a ConnectionError.
        raise _error_for_reply(stage, exc.code, exc.message) from exc
    except (SMTPServerDisconnected, SMTPTimeoutError, OSError) as exc:  # aiosmtplib's are OSErrors too
        if stage == "data":
            raise ProviderAmbiguousError(
                f"smtp connection lost during DATA, the server may have accepted the message: "
                f"{type(exc).__name__}", provider=PROVIDER,
            ) from exc
        if isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError):  # certificate, protocol
            raise ProviderMisconfiguredError(
                f"smtp TLS failed during {stage}: {type(exc.__cause__ or exc).__name__}", provider=PROVIDER
            ) from exc
        raise ProviderTransientError(
            f"smtp {stage} failed, message not sent: {type(exc).__name__}", provider=PROVIDER
        ) from exc
    except SMTPException as exc:  # AUTH/STARTTLS not offered, no usable auth mechanism, ...
        raise ProviderMisconfiguredError(f"smtp {stage} failed: {_scrub(exc.message)}", provider=PROVIDER) from exc


def _error_for_reply(stage: Stage, code: int, text: str) -> Exception:
    message = f"smtp {stage} answered {code}: {_scrub(text)}"
    reply = str(code)
    if not 400 <= code < 600:
        # A malformed or unexpected reply (aiosmtplib reports -1): like a lost connection.
        if stage == "data":
            return ProviderAmbiguousError(message, provider=PROVIDER, code=reply)
        return ProviderTransientError(message, provider=PROVIDER, code=reply)
    if code in _AUTH_CODES:
        return ProviderMisconfiguredError(message, provider=PROVIDER, code=reply)
    if code < 500:  # 421, 450, 451, 452, 454: the server explicitly did not take it
        return ProviderTransientError(message, provider=PROVIDER, code=reply)
    if stage in ("rcpt", "data") or (stage == "mail" and code == _SIZE_EXCEEDED):
        return ProviderRejectedError(message, provider=PROVIDER, code=reply)
    # 5xx to the greeting, EHLO, AUTH or MAIL FROM refuses *us*, not this recipient: rejecting
    # would suppress customers for our own misconfiguration.
    return ProviderMisconfiguredError(message, provider=PROVIDER, code=reply)


def _scrub(text: str) -> str:
    """Server replies often echo the address ("<bounce@example.com>: unknown"): mask it."""
    return _EMAIL_LIKE.sub("<address>", " ".join(text.split()))[:200]


# --- the provider ------------------------------------------------------------------------------


async def _quit_quietly(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        with suppress(SMTPException, OSError):
            await client.quit()


class SmtpEmailProvider:
    """Sends e-mail through an SMTP submission server; raises only ``connectors.errors.ProviderError``."""

    name = PROVIDER

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        username: str | None = None,
        password: str | SecretStr | None = None,
        use_tls: bool = False,
        start_tls: bool = False,
        timeout: float = 10.0,
        domain: str = "switchboard.local",
        connections: int = 1,
    ) -> None:
        secret = password if isinstance(password, SecretStr) or password is None else SecretStr(password)
        problem = (
            "smtp needs host and sender" if not host or not sender
            else "smtp use_tls and start_tls exclude each other" if use_tls and start_tls
            else "smtp username and password go together"
            if bool(username) != bool(secret and secret.get_secret_value())
            else "smtp domain must be a hostname" if not _HOSTNAME.match(domain)
            else None
        )
        if problem is None:
            try:
                _single_address(sender, "sender")
            except ValueError as exc:
                problem = f"smtp {exc}"
        if problem:
            raise ProviderMisconfiguredError(problem, provider=PROVIDER)
        self._host, self._port = host, port
        self._sender = sender
        self._username = username or None
        self._password = secret
        self._use_tls, self._start_tls = use_tls, start_tls
        self._timeout = timeout
        self._domain = domain
        self.sender_id = f"{host}:{port}"  # the relay the sends are counted against
        # Sessions kept open between messages (MAIL, RCPT, DATA again on the same connection), at most
        # ``connections`` of them at once: the handshake (and TLS, AUTH) is paid once per session, not per message.
        self._sessions = asyncio.Semaphore(max(connections, 1))
        self._idle: list[aiosmtplib.SMTP] = []

    def __repr__(self) -> str:
        return f"SmtpEmailProvider(host={self._host!r}, port={self._port!r}, domain={self._domain!r})"

    async def send(self, request: EmailRequest) -> ProviderReceipt:
        try:
            message = build_message(request, self._sender, self._domain)
        except ValueError as exc:
            raise ProviderRejectedError(f"smtp message could not be built: {exc}", provider=PROVIDER) from exc
        try:
            await self._transact(message)
        except ProviderAmbiguousError:
            logger.warning("smtp outcome unknown message_id=%s: the server may have accepted it",
                           request.message_id)
            raise
        receipt = ProviderReceipt(provider=PROVIDER, provider_message_id=str(message["Message-ID"]),
                                  status="accepted")
        logger.info("smtp accepted message_id=%s", request.message_id)
        return receipt

    async def _transact(self, message: EmailMessage) -> None:
        """MAIL, RCPT, DATA on a session of the pool (a new one if none is idle). A reused session the server
        has closed meanwhile fails at MAIL, before anything was sent: that message goes again on a new one."""
        async with self._sessions:
            client = self._idle.pop() if self._idle else None
            if client is not None and client.is_connected:
                try:
                    await self._deliver(client, message)
                    return
                except ProviderTransientError:
                    if client.is_connected:
                        raise  # the server answered: a real transient refusal
                    logger.info("smtp session closed by the server while idle: sending on a new one")
            await self._deliver(await self._connect(), message)

    async def _connect(self) -> aiosmtplib.SMTP:
        """A new session: connect, EHLO, AUTH."""
        client = aiosmtplib.SMTP(hostname=self._host, port=self._port, local_hostname=self._domain,
                                 use_tls=self._use_tls, start_tls=self._start_tls, timeout=self._timeout)
        try:
            with map_smtp_errors("connect"):
                await client.connect()
                if client.is_ehlo_or_helo_needed:
                    await client.ehlo()
            if self._username and self._password:
                with map_smtp_errors("auth"):
                    await client.login(self._username, self._password.get_secret_value())
        except ProviderError:
            await _quit_quietly(client)
            if client.is_connected:
                client.close()
            raise
        return client

    async def _deliver(self, client: aiosmtplib.SMTP, message: EmailMessage) -> None:
        """MAIL, RCPT, DATA; the session goes back to the pool after an accepted message, else it is ended."""
        try:
            with map_smtp_errors("mail"):
                await client.mail(message["From"].addresses[0].addr_spec)
            with map_smtp_errors("rcpt"):
                await client.rcpt(message["To"].addresses[0].addr_spec)
            # aiosmtplib sends DATA and the content in one call, so a drop before the 354 is
            # reported as ambiguous too: the safe side, it is never blindly retried.
            with map_smtp_errors("data"):
                await client.data(message.as_bytes())
        except ProviderError:
            await _quit_quietly(client)  # a refused MAIL/RCPT/DATA leaves a usable session to end
            if client.is_connected:
                client.close()
            raise
        except BaseException:
            if client.is_connected:
                client.close()
            raise
        self._idle.append(client)

    async def aclose(self) -> None:
        """Ends the idle sessions."""
        idle, self._idle = self._idle, []
        for client in idle:
            await _quit_quietly(client)
            if client.is_connected:
                client.close()

    async def __aenter__(self) -> SmtpEmailProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
