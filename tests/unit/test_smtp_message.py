"""The SMTP adapter's pure parts: the MIME message it builds, and how it maps SMTP failures."""

import asyncio
import email
import os
import ssl
import subprocess
import sys
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email import policy
from pathlib import Path

import pytest
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPConnectResponseError,
    SMTPConnectTimeoutError,
    SMTPDataError,
    SMTPException,
    SMTPHeloError,
    SMTPReadTimeoutError,
    SMTPRecipientRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
)

from connectors.errors import (
    ProviderAmbiguousError,
    ProviderMisconfiguredError,
    ProviderRejectedError,
    ProviderTransientError,
)
from connectors.providers.base import EmailProvider, EmailRequest
from connectors.providers.smtp import SmtpEmailProvider, build_message, map_smtp_errors

ROOT = str(Path(__file__).resolve().parents[2])
SENDER = "Sklep Łódź <shop@sklep.example>"
TO = "Kasia Nowak <kasia@example.pl>"
DOMAIN = "mail.sklep.example"
NOW = datetime(2026, 3, 1, 12, 30, tzinfo=timezone.utc)
UNSUBSCRIBE = "https://sklep.example/unsubscribe?token=abc123"
REQUEST = EmailRequest(
    message_id="3f2a9c1e-5b7d-5e0a-9c1b-0d4e6f8a2b31",
    to=TO,
    subject="Your order #1042 has shipped",
    text="Hello Kasia,\nyour parcel is on its way.",
    html="<p>Hello Kasia,<br>your parcel is on its way.</p>",
    list_unsubscribe=UNSUBSCRIBE,
)


def build(request=REQUEST, sender=SENDER, domain=DOMAIN, now=NOW):
    return build_message(request, sender, domain, now=now)


def reparse(message):
    """What a receiving mail client sees: the bytes on the wire, parsed again."""
    return email.message_from_bytes(message.as_bytes(), policy=policy.default)


def plain_of(parsed):
    return parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")


def html_of(parsed):
    body = parsed.get_body(("html",))
    return None if body is None else body.get_content().replace("\r\n", "\n")


def with_(**changes):
    return replace(REQUEST, **changes)


# --- structure --------------------------------------------------------------------------------


def test_html_request_is_multipart_alternative_with_plain_then_html():
    parsed = reparse(build())
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert plain_of(parsed) == REQUEST.text + "\n"
    assert html_of(parsed) == REQUEST.html + "\n"


def test_text_only_request_is_a_single_text_plain_part():
    parsed = reparse(build(with_(html=None)))
    assert parsed.get_content_type() == "text/plain" and not parsed.is_multipart()
    assert plain_of(parsed) == REQUEST.text + "\n" and html_of(parsed) is None


def test_only_the_top_level_carries_mime_version():
    raw = build().as_bytes()
    assert raw.count(b"MIME-Version:") == 1


def test_message_is_seven_bit_clean_with_crlf_lines_so_no_8bitmime_or_smtputf8_is_needed():
    raw = build(with_(subject="שלום", text="Cześć — Прывітанне", html="<p>Żółć</p>")).as_bytes()
    assert raw.isascii()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")


# --- headers -----------------------------------------------------------------------------------


def test_from_to_subject_date_and_switchboard_id_headers():
    parsed = reparse(build())
    assert parsed["From"].addresses[0].addr_spec == "shop@sklep.example"
    assert parsed["From"].addresses[0].display_name == "Sklep Łódź"
    assert parsed["To"].addresses[0].addr_spec == "kasia@example.pl"
    assert parsed["Subject"] == REQUEST.subject
    assert parsed["Date"].datetime == NOW
    assert parsed["X-Switchboard-Message-Id"] == REQUEST.message_id


def test_message_id_is_deterministic_so_a_duplicate_is_recognisable():
    first = reparse(build(now=NOW))
    retry = reparse(build(now=NOW + timedelta(minutes=5)))
    assert first["Message-ID"] == retry["Message-ID"] == f"<{REQUEST.message_id}@{DOMAIN}>"
    assert reparse(build(domain="other.example"))["Message-ID"] == f"<{REQUEST.message_id}@other.example>"


def test_date_defaults_to_now_in_utc():
    before = datetime.now(timezone.utc).replace(microsecond=0)
    date = reparse(build_message(REQUEST, SENDER, DOMAIN))["Date"].datetime
    assert before <= date <= datetime.now(timezone.utc)


def test_request_sender_overrides_the_default_from():
    parsed = reparse(build(with_(sender="Outlet <outlet@sklep.example>")))
    assert parsed["From"].addresses[0].addr_spec == "outlet@sklep.example"


def test_list_unsubscribe_headers_are_set_for_one_click_unsubscribe():
    parsed = reparse(build())
    assert parsed["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_long_unsubscribe_url_stays_verbatim_on_the_wire_not_rfc2047_encoded():
    url = "https://sklep.example/unsubscribe?list=newsletter&token=" + "Zm9vYmFy" * 30
    raw = build(with_(list_unsubscribe=url)).as_bytes()
    assert f"List-Unsubscribe: <{url}>\r\n".encode() in raw
    assert reparse(build(with_(list_unsubscribe=url)))["List-Unsubscribe"] == f"<{url}>"


def test_a_mailto_unsubscribe_gets_no_one_click_post_header():
    parsed = reparse(build(with_(list_unsubscribe="mailto:unsubscribe@sklep.example?subject=stop")))
    assert parsed["List-Unsubscribe"] == "<mailto:unsubscribe@sklep.example?subject=stop>"
    assert "List-Unsubscribe-Post" not in parsed


@pytest.mark.parametrize("url", ["https://x.example/u?a=<b>", "https://x.example/a b", "not a url",
                                 "https://x.example/" + "a" * 1000, "https://żółw.pl/u"])
def test_an_unsubscribe_url_that_cannot_go_verbatim_into_the_header_is_refused(url):
    with pytest.raises(ValueError, match="list_unsubscribe"):
        build(with_(list_unsubscribe=url))


def test_building_does_not_change_the_stdlib_default_policy():
    build()
    assert type(policy.default.header_factory("List-Unsubscribe", "<x>")).__name__ == "_UnstructuredHeader"


@pytest.mark.parametrize("value", [None, ""])
def test_no_list_unsubscribe_headers_without_an_unsubscribe_url(value):
    parsed = reparse(build(with_(list_unsubscribe=value)))
    assert "List-Unsubscribe" not in parsed and "List-Unsubscribe-Post" not in parsed


@pytest.mark.parametrize("subject, text", [
    ("ההזמנה שלך נשלחה 📦", "שלום קאסיה,\nהחבילה בדרך אלייך."),
    ("Zamówienie wysłane — zażółć gęślą jaźń", "Cześć Kasiu,\nTwoja paczka już jedzie. Łódź, Źródło."),
    ("Замова адпраўлена: ўсё добра", "Прывітанне, Кася!\nВаша пасылка ўжо ў дарозе."),
    ("Mixed: שלום / Cześć / Прывітанне " * 4, "a long subject folds over several encoded words"),
])
def test_non_ascii_subject_and_body_round_trip_through_email_parsing(subject, text):
    parsed = reparse(build(with_(subject=subject, text=text, html=f"<p>{text}</p>")))
    assert parsed["Subject"] == subject
    assert plain_of(parsed) == text + "\n"
    assert html_of(parsed) == f"<p>{text}</p>\n"


def test_idn_recipient_domain_is_sent_as_punycode():
    parsed = reparse(build(with_(to="klient@żółw.pl")))
    assert parsed["To"].addresses[0].addr_spec == "klient@xn--w-uga1v8h.pl"


# --- what cannot be built ----------------------------------------------------------------------


@pytest.mark.parametrize("to", ["not an address", "a@example.com, b@example.com", "", "użytkownik@example.pl",
                                "kasia@"])
def test_anything_but_one_ascii_address_is_refused_without_echoing_it(to):
    with pytest.raises(ValueError) as info:
        build(with_(to=to))
    if to:
        assert to not in str(info.value)


@pytest.mark.parametrize("message_id", ["has space", "a@b", "<x>", "", "trailing."])
def test_message_id_that_cannot_form_a_message_id_header_is_refused(message_id):
    with pytest.raises(ValueError, match="Message-ID"):
        build(with_(message_id=message_id))


def test_header_injection_through_the_subject_is_refused():
    with pytest.raises(ValueError):
        build(with_(subject="Hi\r\nBcc: everyone@example.com"))


def test_send_turns_an_unbuildable_request_into_a_rejection_without_connecting():
    provider = SmtpEmailProvider("127.0.0.1", 9, sender=SENDER)  # discard port: never dialled
    with pytest.raises(ProviderRejectedError) as info:
        asyncio.run(provider.send(with_(to="not an address")))
    assert info.value.code is None and info.value.provider == "smtp"


# --- error mapping (one boundary, told the stage) ----------------------------------------------


def mapped(stage, exc):
    with pytest.raises(Exception) as info:
        with map_smtp_errors(stage):
            raise exc
    assert info.value.__cause__ is exc
    return info.value


@pytest.mark.parametrize("stage, exc, expected, code", [
    # the message never left: safe to retry
    ("connect", SMTPConnectError("Error connecting: [Errno 111] Connection refused"), ProviderTransientError, None),
    ("connect", SMTPConnectTimeoutError("Timed out connecting"), ProviderTransientError, None),
    ("connect", SMTPConnectResponseError(421, "4.3.2 Service not available"), ProviderTransientError, "421"),
    ("connect", SMTPHeloError(451, "try later"), ProviderTransientError, "451"),
    ("auth", SMTPAuthenticationError(454, "4.7.0 Temporary authentication failure"), ProviderTransientError, "454"),
    ("mail", SMTPSenderRefused(451, "4.3.0 try later", "shop@sklep.example"), ProviderTransientError, "451"),
    ("rcpt", SMTPRecipientRefused(421, "closing", "k@example.pl"), ProviderTransientError, "421"),
    ("rcpt", SMTPRecipientRefused(450, "mailbox busy", "k@example.pl"), ProviderTransientError, "450"),
    ("rcpt", SMTPRecipientRefused(451, "4.7.1 greylisted", "k@example.pl"), ProviderTransientError, "451"),
    ("rcpt", SMTPRecipientRefused(452, "4.5.3 too many recipients", "k@example.pl"), ProviderTransientError, "452"),
    ("rcpt", SMTPServerDisconnected("Connection lost"), ProviderTransientError, None),
    ("mail", SMTPReadTimeoutError("Timed out waiting for server response"), ProviderTransientError, None),
    ("data", SMTPDataError(451, "4.3.0 queue full, not accepted"), ProviderTransientError, "451"),
    # permanent for this recipient or this content
    ("rcpt", SMTPRecipientRefused(550, "5.1.1 mailbox unavailable", "k@example.pl"), ProviderRejectedError, "550"),
    ("rcpt", SMTPRecipientRefused(553, "5.1.3 bad address syntax", "k@example.pl"), ProviderRejectedError, "553"),
    ("rcpt", SMTPRecipientRefused(554, "5.7.1 relay access denied", "k@example.pl"), ProviderRejectedError, "554"),
    ("data", SMTPDataError(554, "5.7.1 message looks like spam"), ProviderRejectedError, "554"),
    ("data", SMTPDataError(550, "5.7.1 content refused"), ProviderRejectedError, "550"),
    ("mail", SMTPSenderRefused(552, "5.3.4 message too big", "shop@sklep.example"), ProviderRejectedError, "552"),
    # our side is wrong: no message would pass
    ("auth", SMTPAuthenticationError(535, "5.7.8 credentials invalid"), ProviderMisconfiguredError, "535"),
    ("mail", SMTPSenderRefused(530, "5.7.0 authentication required", "s@x"), ProviderMisconfiguredError, "530"),
    ("rcpt", SMTPRecipientRefused(530, "5.7.0 must issue STARTTLS", "k@x"), ProviderMisconfiguredError, "530"),
    ("mail", SMTPSenderRefused(553, "5.7.1 sender not owned by user", "s@x"), ProviderMisconfiguredError, "553"),
    ("connect", SMTPConnectResponseError(554, "5.3.2 no SMTP service here"), ProviderMisconfiguredError, "554"),
    ("connect", SMTPHeloError(501, "bad EHLO"), ProviderMisconfiguredError, "501"),
    ("auth", SMTPException("The SMTP AUTH extension is not supported by this server."),
     ProviderMisconfiguredError, None),
    ("connect", ssl.SSLCertVerificationError("certificate verify failed"), ProviderMisconfiguredError, None),
    # the server may have the message: never blindly retried
    ("data", SMTPServerDisconnected("Unexpected EOF received"), ProviderAmbiguousError, None),
    ("data", SMTPReadTimeoutError("Timed out waiting for server response"), ProviderAmbiguousError, None),
    ("data", ConnectionResetError(104, "Connection reset by peer"), ProviderAmbiguousError, None),
    ("data", SMTPResponseException(-1, "Malformed SMTP response line"), ProviderAmbiguousError, "-1"),
])
def test_smtp_failures_map_by_stage_and_reply_code(stage, exc, expected, code):
    error = mapped(stage, exc)
    assert type(error) is expected
    assert error.code == code and error.provider == "smtp"
    if expected is ProviderTransientError:
        assert error.retry_after is None


def test_a_tls_failure_wrapped_by_aiosmtplib_is_misconfigured_not_transient():
    wrapped = SMTPConnectError("Error connecting")
    wrapped.__cause__ = ssl.SSLCertVerificationError("certificate verify failed: hostname mismatch")
    assert type(mapped("connect", wrapped)) is ProviderMisconfiguredError


def test_error_text_masks_addresses_the_server_echoes():
    error = mapped("rcpt", SMTPRecipientRefused(550, "5.1.1 <kasia@example.pl>: Recipient address rejected",
                                                "kasia@example.pl"))
    assert "kasia" not in str(error) and "example.pl" not in str(error)
    assert "550" in str(error) and "rcpt" in str(error)


def test_provider_errors_pass_through_the_boundary_untouched():
    original = ProviderRejectedError("already mapped", provider="smtp", code="550")
    with pytest.raises(ProviderRejectedError) as info:
        with map_smtp_errors("rcpt"):
            raise original
    assert info.value is original


# --- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    dict(host="", sender=SENDER),
    dict(sender=""),
    dict(sender="not an address"),
    dict(sender=SENDER, username="user"),
    dict(sender=SENDER, password="secret"),
    dict(sender=SENDER, use_tls=True, start_tls=True),
    dict(sender=SENDER, domain="not a hostname"),
])
def test_incomplete_or_contradictory_configuration_is_misconfigured(kwargs):
    with pytest.raises(ProviderMisconfiguredError):
        SmtpEmailProvider(**{"host": "smtp.example", "port": 587, **kwargs})


def test_repr_hides_the_password_and_satisfies_the_email_provider_protocol():
    provider = SmtpEmailProvider("smtp.example", 587, sender=SENDER, username="user", password="s3cr3t-pw")
    assert "s3cr3t-pw" not in repr(provider) and "s3cr3t-pw" not in str(vars(provider))
    assert isinstance(provider, EmailProvider) and provider.name == "smtp"
    assert TO not in repr(REQUEST) and REQUEST.subject not in repr(REQUEST)


def test_smtp_modules_do_not_import_faust():
    code = ("import sys, connectors.providers.smtp, connectors.sandbox.smtp; "
            "assert 'faust' not in sys.modules, 'faust imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})
