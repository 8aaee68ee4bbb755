"""Message templates: per-locale texts rendered in a sandboxed Jinja2 environment.

Every template is compiled when this module loads, so a broken template fails at start-up, not at
2 a.m. Texts follow the seed articles (Hebrew, Polish, Dutch, Belarusian) and English.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from schemas.messages import WhatsAppTemplateRef
from schemas.types import Channel
from streams.errors import TemplateError, UnknownTemplateError

_ENV = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)

_HI = {
    "en": "Hi{% if first_name %} {{ first_name }}{% endif %}",
    "he": "שלום{% if first_name %} {{ first_name }}{% endif %}",
    "nl": "Hallo{% if first_name %} {{ first_name }}{% endif %}",
    "pl": "Cześć{% if first_name %} {{ first_name }}{% endif %}",
    "be": "Прывітанне{% if first_name %}, {{ first_name }}{% endif %}",
}

_HELP = {Channel.SMS: (None, "{{ help_text }}"), Channel.WHATSAPP: (None, "{{ help_text }}"),
         Channel.EMAIL: ("Help", "{{ help_text }}")}

# template -> locale -> channel -> (subject or None, body)
_SOURCES: dict[str, dict[str, dict[Channel, tuple[str | None, str]]]] = {
    # The help text itself is localised by streams.keywords (per store); the template only carries it.
    "help_reply": {"en": _HELP},
    # Double opt-in: the one message a pending marketing subscriber gets, asking for a YES.
    "optin_confirmation": {
        "en": {ch: (None, "Reply YES to confirm you want offers and news from us. Msg & data rates may apply. "
                          "Reply STOP to opt out.") for ch in (Channel.SMS, Channel.WHATSAPP)},
        "he": {ch: (None, "כדי לאשר קבלת מבצעים ועדכונים מאיתנו השיבו כן. להסרה השיבו הסר.")
               for ch in (Channel.SMS, Channel.WHATSAPP)},
        "nl": {ch: (None, "Antwoord JA om te bevestigen dat je aanbiedingen en nieuws van ons wilt ontvangen. "
                          "Antwoord STOP om je af te melden.") for ch in (Channel.SMS, Channel.WHATSAPP)},
        "pl": {ch: (None, "Odpowiedz TAK, aby potwierdzić zgodę na oferty i nowości od nas. "
                          "Odpowiedz STOP, aby zrezygnować.") for ch in (Channel.SMS, Channel.WHATSAPP)},
        "be": {ch: (None, "Адкажыце ТАК, каб пацвердзіць згоду на прапановы і навіны ад нас. "
                          "Адкажыце СТОП, каб адпісацца.") for ch in (Channel.SMS, Channel.WHATSAPP)},
    },
    # Abandoned cart (marketing). The Belarusian text is the seed article's own example.
    "cart_reminder": {
        "en": {
            Channel.SMS: (None, _HI["en"] + ", you left something in your cart. Finish your order: {{ cart_url }}"),
            Channel.WHATSAPP: (None, _HI["en"] + "! Your cart is waiting for you. Finish your order: {{ cart_url }}"),
            Channel.EMAIL: ("You left something in your cart",
                            _HI["en"] + ",\n\nThe items in your cart are still waiting.\nFinish your order: {{ cart_url }}\n"),
        },
        "he": {
            Channel.SMS: (None, _HI["he"] + ", שכחת משהו בעגלה. להשלמת ההזמנה: {{ cart_url }}"),
            Channel.WHATSAPP: (None, _HI["he"] + "! העגלה שלך מחכה לך. להשלמת ההזמנה: {{ cart_url }}"),
            Channel.EMAIL: ("שכחת משהו בעגלה", _HI["he"] + ",\n\nהמוצרים בעגלה שלך עדיין מחכים.\n"
                                               "להשלמת ההזמנה: {{ cart_url }}\n"),
        },
        "nl": {
            Channel.SMS: (None, _HI["nl"] + ", je hebt nog iets in je winkelwagen. Rond je bestelling af: {{ cart_url }}"),
            Channel.WHATSAPP: (None, _HI["nl"] + ", je winkelwagen wacht op je. Rond je bestelling af: {{ cart_url }}"),
            Channel.EMAIL: ("Je hebt nog iets in je winkelwagen",
                            _HI["nl"] + ",\n\nDe artikelen in je winkelwagen wachten nog.\nRond je bestelling af: {{ cart_url }}\n"),
        },
        "pl": {
            Channel.SMS: (None, _HI["pl"] + "! W Twoim koszyku coś zostało. Dokończ zamówienie: {{ cart_url }}"),
            Channel.WHATSAPP: (None, _HI["pl"] + "! Twój koszyk na Ciebie czeka. Dokończ zamówienie: {{ cart_url }}"),
            Channel.EMAIL: ("W Twoim koszyku coś zostało",
                            _HI["pl"] + ",\n\nProdukty w Twoim koszyku wciąż czekają.\nDokończ zamówienie: {{ cart_url }}\n"),
        },
        "be": {
            Channel.SMS: (None, "Здаецца, вы забыліся пра тавары ў вашым кошыку. Скончыце пакупку зараз! {{ cart_url }}"),
            Channel.WHATSAPP: (None, _HI["be"] + "! Здаецца, вы забыліся пра тавары ў вашым кошыку. "
                               "Скончыце пакупку зараз: {{ cart_url }}"),
            Channel.EMAIL: ("Тавары чакаюць у вашым кошыку",
                            _HI["be"] + ",\n\nЗдаецца, вы забыліся пра тавары ў вашым кошыку.\n"
                            "Скончыце пакупку зараз: {{ cart_url }}\n"),
        },
    },
    "shipping_update": {
        "en": {
            Channel.SMS: (None, _HI["en"] + ", your order #{{ order_id }} is on its way"
                          "{% if carrier is defined and carrier %} with {{ carrier }}{% endif %}. Track it: {{ tracking_url }}"),
            Channel.WHATSAPP: (None, _HI["en"] + "! Your order #{{ order_id }} has shipped"
                               "{% if carrier is defined and carrier %} with {{ carrier }}{% endif %}. Track your parcel: {{ tracking_url }}"),
            Channel.EMAIL: ("Your order #{{ order_id }} is on its way",
                            _HI["en"] + ",\n\nGood news: order #{{ order_id }} has shipped"
                            "{% if carrier is defined and carrier %} with {{ carrier }}{% endif %}.\nTrack it here: {{ tracking_url }}\n"),
        },
        "he": {
            Channel.SMS: (None, _HI["he"] + ", ההזמנה #{{ order_id }} נשלחה! עקוב אחר החבילה: {{ tracking_url }}"),
            Channel.WHATSAPP: (None, _HI["he"] + "! ההזמנה שלך #{{ order_id }} בדרך אליך. עקוב אחר החבילה: {{ tracking_url }}"),
            Channel.EMAIL: ("ההזמנה #{{ order_id }} בדרך אליך",
                            _HI["he"] + ",\n\nההזמנה #{{ order_id }} נשלחה.\nעקוב אחר החבילה: {{ tracking_url }}\n"),
        },
        "nl": {
            Channel.SMS: (None, _HI["nl"] + ", je bestelling #{{ order_id }} is onderweg! Volg je pakket: {{ tracking_url }}"),
            Channel.WHATSAPP: (None, _HI["nl"] + ", bedankt voor je bestelling #{{ order_id }}! Hij is verzonden. "
                               "Volg je pakket: {{ tracking_url }}"),
            Channel.EMAIL: ("Je bestelling #{{ order_id }} is onderweg",
                            _HI["nl"] + ",\n\nJe bestelling #{{ order_id }} is verzonden.\nVolg je pakket: {{ tracking_url }}\n"),
        },
        "pl": {
            Channel.SMS: (None, _HI["pl"] + "! Twoje zamówienie nr {{ order_id }} zostało wysłane. "
                          "Śledź przesyłkę: {{ tracking_url }}"),
            Channel.WHATSAPP: (None, _HI["pl"] + "! Zamówienie nr {{ order_id }} jest już w drodze. "
                               "Śledź przesyłkę: {{ tracking_url }}"),
            Channel.EMAIL: ("Zamówienie nr {{ order_id }} zostało wysłane",
                            _HI["pl"] + ",\n\nTwoje zamówienie nr {{ order_id }} zostało wysłane.\n"
                            "Śledź przesyłkę: {{ tracking_url }}\n"),
        },
        "be": {
            Channel.SMS: (None, _HI["be"] + "! Ваша замова №{{ order_id }} адпраўлена. Адсочвайце пасылку: {{ tracking_url }}"),
            Channel.WHATSAPP: (None, _HI["be"] + "! Ваша замова №{{ order_id }} ужо ў дарозе. "
                               "Адсочвайце пасылку: {{ tracking_url }}"),
            Channel.EMAIL: ("Замова №{{ order_id }} адпраўлена",
                            _HI["be"] + ",\n\nВаша замова №{{ order_id }} адпраўлена.\nАдсочвайце пасылку: {{ tracking_url }}\n"),
        },
    },
}

DEFAULT_LOCALE = "en"

# template -> (WhatsApp category, variables filling the approved template's {{1}}, {{2}} … in order).
# Business-initiated WhatsApp messages go out as these approved templates (never error 131047).
_WHATSAPP: dict[str, tuple[str, tuple[str, ...]]] = {
    "shipping_update": ("utility", ("first_name", "order_id", "tracking_url")),
    "optin_confirmation": ("utility", ()),
    "cart_reminder": ("marketing", ("first_name", "cart_url")),
}


@dataclass(frozen=True)
class Rendered:
    locale: str
    subject: str | None
    body: str


def _compile(source: str | None):
    try:
        return None if source is None else _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template does not compile: {exc}") from exc


_COMPILED = {
    name: {loc: {ch: (_compile(s), _compile(b)) for ch, (s, b) in chans.items()} for loc, chans in locales.items()}
    for name, locales in _SOURCES.items()
}


def template_names() -> list[str]:
    return sorted(_COMPILED)


def resolve_locale(template: str, locale: str) -> str:
    """Exact tag, else its language (``pl-PL`` -> ``pl``), else English."""
    locales = _COMPILED.get(template)
    if locales is None:
        raise UnknownTemplateError(template)
    for candidate in (locale, locale.split("-")[0].lower()):
        if candidate in locales:
            return candidate
    return DEFAULT_LOCALE


def render(template: str, locale: str, channel: Channel, variables: dict[str, str]) -> Rendered:
    resolved = resolve_locale(template, locale)
    try:
        subject_t, body_t = _COMPILED[template][resolved][Channel(channel)]
    except KeyError:
        raise UnknownTemplateError(f"{template} has no {Channel(channel).value} text") from None
    try:
        subject = subject_t.render(variables).strip() if subject_t else None
        return Rendered(resolved, subject, body_t.render(variables).strip())
    except (UndefinedError, SecurityError) as exc:
        raise TemplateError(f"{template}/{resolved}/{Channel(channel).value}: {exc}") from exc


def has_whatsapp_template(template: str) -> bool:
    return template in _WHATSAPP


def whatsapp_template(template: str, locale: str, variables: dict[str, str]) -> WhatsAppTemplateRef:
    """The approved WhatsApp template (name, language, category, parameters) for a message."""
    try:
        category, names = _WHATSAPP[template]
    except KeyError:
        raise UnknownTemplateError(f"{template} has no WhatsApp template") from None
    missing = [n for n in names if n not in variables]
    if missing:
        raise TemplateError(f"{template}: WhatsApp parameters missing: {', '.join(missing)}")
    return WhatsAppTemplateRef(name=template, language=resolve_locale(template, locale), category=category,
                               parameters=[variables[n] for n in names])


# Variables a template cannot do without; the others are optional and the texts must cope without them.
_REQUIRED: dict[str, set[str]] = {"shipping_update": {"first_name", "order_id", "tracking_url"},
                                  "help_reply": {"help_text"}, "optin_confirmation": set(),
                                  "cart_reminder": {"first_name", "cart_url"}}

_RTL = {"he", "ar", "fa", "yi"}


def email_html(text: str, locale: str) -> str:
    """The HTML part of an e-mail from its text: escaped, paragraphs kept, right-to-left where the language is."""
    paragraphs = [html.escape(p).replace("\n", "<br>\n") for p in text.strip().split("\n\n")]
    direction = "rtl" if locale.split("-")[0].lower() in _RTL else "ltr"
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return f'<!doctype html>\n<html lang="{html.escape(locale)}" dir="{direction}"><body>\n{body}\n</body></html>\n'


def _self_check() -> None:
    """Render every template with sample variables at import: fail loudly at start-up."""
    sample = {"first_name": "Ana", "order_id": "1001", "carrier": "DHL", "tracking_url": "https://t.example/1",
              "cart_url": "https://shop.example/cart/1", "help_text": "Reply STOP to unsubscribe."}
    for name, locales in _COMPILED.items():
        for loc, chans in locales.items():
            for ch in chans:
                render(name, loc, ch, sample)
                render(name, loc, ch, {k: v for k, v in sample.items() if k in _REQUIRED.get(name, sample)})
        if name in _WHATSAPP:
            whatsapp_template(name, DEFAULT_LOCALE, sample)


_self_check()
