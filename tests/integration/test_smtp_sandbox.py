"""The production SMTP adapter against the real SMTP sandbox (and two scripted servers) on loopback."""

import asyncio
import socket
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest

from connectors.errors import (
    ProviderAmbiguousError,
    ProviderMisconfiguredError,
    ProviderRejectedError,
    ProviderTransientError,
)
from connectors.providers.base import EmailRequest, ProviderReceipt
from connectors.providers.smtp import SmtpEmailProvider
from connectors.sandbox.smtp import SmtpSandboxScenario, serve

SENDER = "Sklep <shop@sklep.example>"
DOMAIN = "mail.sklep.example"
USERNAME, PASSWORD = "shop-mailer", "correct horse battery staple"
UNSUBSCRIBE = "https://sklep.example/unsubscribe?token=" + "abc123" * 15
TIMEOUT = 5.0


def request(message_id="msg-1", to="Kasia <kasia@example.pl>", subject="Your order #1042 has shipped",
            text="Hello Kasia,\nyour parcel is on its way.", html="<p>Hello Kasia,<br>your parcel is on its way.</p>",
            list_unsubscribe=UNSUBSCRIBE):
    return EmailRequest(message_id=message_id, to=to, subject=subject, text=text, html=html,
                        list_unsubscribe=list_unsubscribe)


def lines(text):
    return text.replace("\r\n", "\n") if text is not None else None


@dataclass
class Rig:
    provider: SmtpEmailProvider
    smtp_port: int
    http_base_url: str

    def provider_with(self, **kwargs):
        return SmtpEmailProvider("127.0.0.1", self.smtp_port, sender=SENDER, domain=DOMAIN, timeout=TIMEOUT, **kwargs)

    async def sandbox_json(self, path):
        async with httpx.AsyncClient(base_url=self.http_base_url) as client:
            response = await client.request("POST" if path == "/_sandbox/reset" else "GET", path)
            response.raise_for_status()
            return response.json()

    async def messages(self):
        return await self.sandbox_json("/_sandbox/messages")

    async def stats(self):
        return await self.sandbox_json("/_sandbox/stats")


@asynccontextmanager
async def rig(scenario=None, **provider_kwargs):
    sandbox = await serve("127.0.0.1", 0, 0, scenario or SmtpSandboxScenario())
    provider = SmtpEmailProvider("127.0.0.1", sandbox.smtp_port, sender=SENDER, domain=DOMAIN, timeout=TIMEOUT,
                                 **provider_kwargs)
    try:
        yield Rig(provider, sandbox.smtp_port, sandbox.http_base_url)
    finally:
        await provider.aclose()
        await sandbox.aclose()


def run(coro_fn):
    return asyncio.run(asyncio.wait_for(coro_fn(), 20))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- happy path ----------------------------------------------------------------------------


def test_sent_message_arrives_with_both_parts_and_the_right_headers():
    async def main():
        async with rig() as r:
            receipt = await r.provider.send(request())
            assert receipt == ProviderReceipt(provider="smtp", provider_message_id=f"<msg-1@{DOMAIN}>",
                                              status="accepted")
            (message,) = await r.messages()
            assert message["message_id"] == f"<msg-1@{DOMAIN}>" and message["switchboard_message_id"] == "msg-1"
            assert (message["mail_from"], message["rcpt_tos"]) == ("shop@sklep.example", ["kasia@example.pl"])
            assert (message["from"], message["to"]) == (SENDER, "Kasia <kasia@example.pl>")
            assert message["subject"] == "Your order #1042 has shipped"
            assert message["content_type"] == "multipart/alternative"
            assert lines(message["text"]) == "Hello Kasia,\nyour parcel is on its way.\n"
            assert lines(message["html"]) == "<p>Hello Kasia,<br>your parcel is on its way.</p>\n"
            assert message["list_unsubscribe"] == f"<{UNSUBSCRIBE}>"
            assert message["list_unsubscribe_post"] == "List-Unsubscribe=One-Click"
            assert message["date"] and message["headers"]["MIME-Version"] == "1.0"

    run(main)


def test_text_only_message_without_unsubscribe_has_no_html_and_no_list_headers():
    async def main():
        async with rig() as r:
            await r.provider.send(request(html=None, list_unsubscribe=None))
            (message,) = await r.messages()
            assert message["content_type"] == "text/plain" and message["html"] is None
            assert message["list_unsubscribe"] is None and message["list_unsubscribe_post"] is None

    run(main)


@pytest.mark.parametrize("subject, text", [
    ("ההזמנה שלך נשלחה", "שלום קאסיה,\nהחבילה בדרך אלייך."),
    ("Zamówienie wysłane — zażółć gęślą jaźń", "Cześć Kasiu,\nTwoja paczka już jedzie z Łodzi."),
    ("Замова адпраўлена: ўсё добра", "Прывітанне, Кася!\nВаша пасылка ўжо ў дарозе."),
    ("Mixed: שלום / Cześć / Прывітанне " * 3, "שלום\nCześć\nПрывітанне\n" * 40),
])
def test_hebrew_polish_and_belarusian_subject_and_body_arrive_intact(subject, text):
    async def main():
        async with rig() as r:
            await r.provider.send(request(subject=subject, text=text, html=f"<p dir=auto>{text}</p>"))
            (message,) = await r.messages()
            assert message["subject"] == subject
            assert lines(message["text"]).rstrip("\n") == text.rstrip("\n")
            assert lines(message["html"]).rstrip("\n") == f"<p dir=auto>{text}</p>"

    run(main)


def test_lines_starting_with_a_dot_survive_dot_stuffing():
    text = ".\n..two dots\n.hidden line\nend"  # ASCII, so sent as 7bit: the dots are on the wire
    async def main():
        async with rig() as r:
            await r.provider.send(request(text=text, html=None))
            (message,) = await r.messages()
            assert lines(message["text"]) == text + "\n"

    run(main)


def test_credentials_that_match_are_accepted_when_auth_is_required():
    async def main():
        scenario = SmtpSandboxScenario(require_auth=True, username=USERNAME, password=PASSWORD)
        async with rig(scenario, username=USERNAME, password=PASSWORD) as r:
            receipt = await r.provider.send(request())
            assert receipt.status == "accepted"
            assert len(await r.messages()) == 1 and (await r.stats())["auth_failed"] == 0

    run(main)


# --- refusals ------------------------------------------------------------------------------


def test_bounce_recipient_is_rejected_with_code_550_without_leaking_the_address():
    async def main():
        async with rig() as r:
            with pytest.raises(ProviderRejectedError) as info:
                await r.provider.send(request(to="bounce.kasia@example.pl"))
            assert info.value.code == "550" and info.value.provider == "smtp"
            assert "kasia" not in str(info.value)
            assert await r.messages() == [] and (await r.stats())["bounced"] == 1

    run(main)


def test_tempfail_recipient_is_transient_with_code_451():
    async def main():
        async with rig() as r:
            with pytest.raises(ProviderTransientError) as info:
                await r.provider.send(request(to="tempfail@example.pl"))
            assert info.value.code == "451" and info.value.retry_after is None
            assert await r.messages() == [] and (await r.stats())["tempfailed"] == 1

    run(main)


def test_wrong_password_is_misconfigured_with_535_and_never_shows_the_password():
    async def main():
        scenario = SmtpSandboxScenario(require_auth=True, username=USERNAME, password=PASSWORD)
        async with rig(scenario, username=USERNAME, password="wrong-password") as r:
            with pytest.raises(ProviderMisconfiguredError) as info:
                await r.provider.send(request())
            assert info.value.code == "535" and "wrong-password" not in str(info.value)
            assert await r.messages() == [] and (await r.stats())["auth_failed"] >= 1

    run(main)


def test_no_credentials_when_the_server_requires_auth_is_misconfigured_with_530():
    async def main():
        async with rig(SmtpSandboxScenario(require_auth=True)) as r:
            with pytest.raises(ProviderMisconfiguredError) as info:
                await r.provider.send(request())
            assert info.value.code == "530"

    run(main)


def test_credentials_for_a_server_that_offers_no_auth_is_misconfigured():
    async def main():
        async with rig(username=USERNAME, password=PASSWORD) as r:
            with pytest.raises(ProviderMisconfiguredError):
                await r.provider.send(request())
            assert await r.messages() == []

    run(main)


# --- lost connections ----------------------------------------------------------------------


def test_connection_dropped_after_data_is_ambiguous_and_the_message_is_in_the_sandbox():
    async def main():
        async with rig(SmtpSandboxScenario(drop_after_data_every=1)) as r:
            with pytest.raises(ProviderAmbiguousError) as info:
                await r.provider.send(request(message_id="msg-ambiguous"))
            assert not isinstance(info.value, ProviderTransientError)
            (message,) = await r.messages()
            assert message["message_id"] == f"<msg-ambiguous@{DOMAIN}>"
            assert (await r.stats())["dropped"] == 1

    run(main)


def test_a_retry_after_an_ambiguous_send_is_a_duplicate_recognisable_by_its_message_id():
    async def main():
        async with rig(SmtpSandboxScenario(drop_after_data_every=2)) as r:
            await r.provider.send(request(message_id="msg-a"))
            with pytest.raises(ProviderAmbiguousError):
                await r.provider.send(request(message_id="msg-b"))
            receipt = await r.provider.send(request(message_id="msg-b"))
            ids = [m["message_id"] for m in await r.messages()]
            assert ids == [f"<msg-a@{DOMAIN}>", f"<msg-b@{DOMAIN}>", f"<msg-b@{DOMAIN}>"]
            assert receipt.provider_message_id == ids[-1]

    run(main)


def test_connection_refused_is_transient():
    async def main():
        provider = SmtpEmailProvider("127.0.0.1", free_port(), sender=SENDER, timeout=TIMEOUT)
        with pytest.raises(ProviderTransientError) as info:
            await provider.send(request())
        assert info.value.code is None

    run(main)


@asynccontextmanager
async def scripted_server(after_data_content):
    """An SMTP server that accepts the envelope, then answers the end of DATA with
    ``after_data_content`` (a reply line) or, when None, never answers at all."""
    got_content = asyncio.Event()

    async def session(reader, writer):
        writer.write(b"220 scripted ESMTP\r\n")
        try:
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb == b"EHLO":
                    writer.write(b"250-scripted\r\n250 8BITMIME\r\n")
                elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    writer.write(b"250 OK\r\n")
                elif verb == b"QUIT":
                    writer.write(b"221 Bye\r\n")
                    break
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    while await reader.readline() not in (b".\r\n", b""):
                        pass
                    got_content.set()
                    if after_data_content is None:
                        await reader.read()  # silent until the client gives up
                        break
                    writer.write(after_data_content + b"\r\n")
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], got_content
    finally:
        server.close()
        await server.wait_closed()


def test_no_reply_after_the_data_content_times_out_as_ambiguous():
    async def main():
        async with scripted_server(None) as (port, got_content):
            provider = SmtpEmailProvider("127.0.0.1", port, sender=SENDER, timeout=0.5)
            with pytest.raises(ProviderAmbiguousError):
                await provider.send(request())
            assert got_content.is_set()

    run(main)


@pytest.mark.parametrize("reply, expected, code", [
    (b"451 4.3.0 Mail server temporarily rejected message", ProviderTransientError, "451"),
    (b"452 4.3.1 Insufficient system storage", ProviderTransientError, "452"),
    (b"554 5.7.1 Message rejected as spam", ProviderRejectedError, "554"),
])
def test_an_explicit_refusal_of_the_data_is_not_ambiguous(reply, expected, code):
    async def main():
        async with scripted_server(reply) as (port, got_content):
            provider = SmtpEmailProvider("127.0.0.1", port, sender=SENDER, timeout=TIMEOUT)
            with pytest.raises(expected) as info:
                await provider.send(request())
            assert type(info.value) is expected and info.value.code == code and got_content.is_set()

    run(main)


def test_a_server_that_never_greets_is_a_transient_connect_timeout():
    async def main():
        async def silent(reader, writer):
            await reader.read()
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        try:
            provider = SmtpEmailProvider("127.0.0.1", server.sockets[0].getsockname()[1], sender=SENDER, timeout=0.3)
            with pytest.raises(ProviderTransientError):
                await provider.send(request())
        finally:
            server.close()
            await server.wait_closed()

    run(main)


# --- inspection endpoints ------------------------------------------------------------------


def test_inspection_counts_traffic_and_resets():
    async def main():
        async with rig() as r:
            await r.provider.send(request(message_id="m-1"))
            with pytest.raises(ProviderRejectedError):
                await r.provider.send(request(message_id="m-2", to="bounce@example.pl"))
            with pytest.raises(ProviderTransientError):
                await r.provider.send(request(message_id="m-3", to="tempfail@example.pl"))
            assert await r.stats() == {"received": 1, "bounced": 1, "tempfailed": 1, "auth_failed": 0,
                                       "dropped": 0}
            await r.sandbox_json("/_sandbox/reset")
            assert await r.messages() == []
            assert set((await r.stats()).values()) == {0}

    run(main)


def test_scenario_rejects_nonsense():
    with pytest.raises(ValueError):
        SmtpSandboxScenario(drop_after_data_every=-1)
    with pytest.raises(ValueError):
        SmtpSandboxScenario(require_auth=True, password="")
