"""What the law asks of a marketing SMS as sent: who it is from and how to stop it.

Pure. Carriers and regulators (CTIA's messaging principles in the US, the Israeli Communications Law
section 30A, the Dutch and Polish telecom acts) ask that a marketing text names its sender and says how
to opt out. So every marketing SMS opens with the store's name (unless its text already does) and
carries the opt-out line in the language it was rendered in: on every message, or, as the store
chooses, on the first of a conversation (none sent to the customer for ``sms_opt_out_days``).

The line names a keyword the worker recognises for every store (``streams.keywords``): a tested
property, so no text can advertise a word that does nothing. It is added before the SMS is segmented
and priced, so the cost counts it. Transactional texts are left as they are; WhatsApp marketing goes
through Meta's approved templates, whose opt-out is Meta's own button; e-mail carries its unsubscribe
link and one-click header from the e-mail gateway.
"""

from __future__ import annotations

import datetime as dt

from streams.stores import SMS_OPT_OUT_EVERY_MESSAGE, StoreConfig

# The same words as the double opt-in request (streams/templates.py "optin_confirmation").
OPT_OUT_LINES = {
    "en": "Reply STOP to opt out.",
    "he": "להסרה השיבו הסר.",
    "nl": "Antwoord STOP om je af te melden.",
    "pl": "Odpowiedz STOP, aby zrezygnować.",
    "be": "Адкажыце СТОП, каб адпісацца.",
    "ru": "Ответьте СТОП, чтобы отписаться.",
}
DEFAULT_LOCALE = "en"
_MS = dt.timedelta(milliseconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def opt_out_line(locale: str) -> str:
    """The opt-out line in ``locale`` (its language, else English)."""
    return OPT_OUT_LINES.get(locale) or OPT_OUT_LINES.get(locale.split("-")[0].lower()) or OPT_OUT_LINES[DEFAULT_LOCALE]


def sender_name(store: StoreConfig, store_id: str) -> str:
    """The name a marketing SMS opens with: the store's configured ``name``, else its id."""
    return store.name or store_id


def notice_due(store: StoreConfig, last_notice_ms: int | None, now: dt.datetime) -> bool:
    """Does the next marketing SMS carry the opt-out line?"""
    if store.sms_opt_out == SMS_OPT_OUT_EVERY_MESSAGE or last_notice_ms is None:
        return True
    return now - (_EPOCH + last_notice_ms * _MS) >= dt.timedelta(days=store.sms_opt_out_days)


def marketing_sms(body: str, sender: str, locale: str, with_opt_out: bool) -> str:
    """``body`` as a compliant marketing SMS: the sender named first, the opt-out line last (once)."""
    text = body if body.startswith(sender) else f"{sender}: {body}"
    line = opt_out_line(locale)
    if with_opt_out and line not in text:
        text = f"{text}\n{line}"
    return text


def epoch_ms(at: dt.datetime) -> int:
    return (at - _EPOCH) // _MS
