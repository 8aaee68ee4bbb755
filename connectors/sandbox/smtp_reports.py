"""The reports a real mail system sends back about a message it accepted, as the SMTP sandbox makes them. Pure.

    delivery_failure   a DSN (RFC 3464): multipart/report; report-type=delivery-status, a human part, a
                       message/delivery-status part (Action: failed, Status: 5.1.1) and the original's headers
                       (text/rfc822-headers), from MAILER-DAEMON to the original's envelope sender
    abuse_complaint    an ARF report (RFC 5965): multipart/report; report-type=feedback-report, a human part,
                       a message/feedback-report part (Feedback-Type: abuse) and the whole original
                       (message/rfc822), as a mailbox provider's feedback loop sends when a recipient presses
                       "this is spam"

Both are built as bytes with CRLF line ends, the way they travel.
"""

from __future__ import annotations

import datetime as dt
import uuid
from email.utils import format_datetime, make_msgid

__all__ = ["delivery_failure", "abuse_complaint", "REPORTING_MTA"]

REPORTING_MTA = "sandbox.switchboard.local"


def _headers_of(original: bytes) -> bytes:
    head, _, _ = original.replace(b"\r\n", b"\n").partition(b"\n\n")
    return head.replace(b"\n", b"\r\n") + b"\r\n"


def _report(report_type: str, sender: str, to: str, subject: str, parts: list[tuple[str, bytes]],
            now: dt.datetime) -> bytes:
    boundary = f"report-{uuid.uuid4().hex}"
    head = (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {format_datetime(now)}\r\n"
            f"Message-ID: {make_msgid(domain=REPORTING_MTA)}\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type={report_type}; boundary="{boundary}"\r\n\r\n')
    body = b"".join(f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode() + content + b"\r\n"
                    for content_type, content in parts)
    return head.encode() + body + f"--{boundary}--\r\n".encode()


def delivery_failure(original: bytes, envelope_from: str, recipient: str, now: dt.datetime,
                     status: str = "5.1.1", diagnostic: str = "550 5.1.1 Mailbox unavailable") -> bytes:
    """The DSN a receiving system sends when it accepted ``original`` for ``recipient`` and then could not
    deliver it (a hard bounce)."""
    human = (f"This is the mail system at host {REPORTING_MTA}.\r\n\r\nYour message could not be delivered to "
             f"one or more recipients. It is attached below.\r\n\r\n<{recipient}>: {diagnostic}\r\n").encode()
    delivery_status = (f"Reporting-MTA: dns; {REPORTING_MTA}\r\nArrival-Date: {format_datetime(now)}\r\n\r\n"
                       f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822; {recipient}\r\n"
                       f"Action: failed\r\nStatus: {status}\r\nDiagnostic-Code: smtp; {diagnostic}\r\n").encode()
    return _report("delivery-status", f"Mail Delivery System <MAILER-DAEMON@{REPORTING_MTA}>", envelope_from,
                   "Undelivered Mail Returned to Sender",
                   [("text/plain; charset=us-ascii", human), ("message/delivery-status", delivery_status),
                    ("text/rfc822-headers", _headers_of(original))], now)


def abuse_complaint(original: bytes, envelope_from: str, recipient: str, now: dt.datetime) -> bytes:
    """The ARF report a mailbox provider's feedback loop sends when ``recipient`` marks ``original`` as spam."""
    human = (b"This is an email abuse report for an email message received from your domain.\r\n"
             b"The recipient marked it as spam.\r\n")
    feedback = (f"Feedback-Type: abuse\r\nUser-Agent: SwitchboardSandboxFBL/1.0\r\nVersion: 1\r\n"
                f"Original-Mail-From: <{envelope_from}>\r\nOriginal-Rcpt-To: <{recipient}>\r\n"
                f"Arrival-Date: {format_datetime(now)}\r\nReporting-MTA: dns; {REPORTING_MTA}\r\n").encode()
    return _report("feedback-report", f"Feedback Loop <fbl@{REPORTING_MTA}>", envelope_from,
                   "Abuse report", [("text/plain; charset=us-ascii", human), ("message/feedback-report", feedback),
                                    ("message/rfc822", original.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))],
                   now)
