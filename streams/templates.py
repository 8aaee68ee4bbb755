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


def _opt(variable: str, text: str) -> str:
    """``text`` only when ``variable`` is given and not empty (the texts must cope without it)."""
    return f"{{% if {variable} is defined and {variable} %}}{text}{{% endif %}}"


def _chat(text: str) -> dict[Channel, tuple[str | None, str]]:
    """One text for SMS and WhatsApp (a question the customer answers in the same thread)."""
    return {Channel.SMS: (None, text), Channel.WHATSAPP: (None, text)}


# A coupon's value: "10%", or an amount ("5.00") followed by the step's ``currency`` variable when given
# (never after a percentage: a step may give a currency for its minimum order alone).
_VALUE = ("{{ coupon_value }}{% if currency is defined and currency and not coupon_value.endswith('%') %}"
          " {{ currency }}{% endif %}")


def _min_cart(text: str) -> str:
    """``text`` only for a coupon with a minimum order, ``{M}`` in it being that amount ("50.00", and the
    ``currency`` variable when given, as in a coupon's value). ``coupon_min_cart`` is set by the journey
    engine from the coupon's ``min_cart_minor`` (a campaign may give it as a variable)."""
    return _opt("coupon_min_cart", text.replace("{M}", "{{ coupon_min_cart }}" + _opt("currency", " {{ currency }}")))

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
    # --- journeys (deploy/journeys/*.yaml) -------------------------------------------------------
    # Order confirmation (transactional). The Dutch WhatsApp text is the seed article's own example.
    "order_confirmation": {
        "en": {
            Channel.SMS: (None, _HI["en"] + ", thank you for your order #{{ order_id }}!"
                          + _opt("order_url", " Details: {{ order_url }}")),
            Channel.WHATSAPP: (None, _HI["en"] + ", thank you for your order #{{ order_id }}!"
                               + _opt("products", " You ordered: {{ products }}.")
                               + _opt("order_url", " Here are the product and shipping details: {{ order_url }}")),
            Channel.EMAIL: ("Thank you for your order #{{ order_id }}",
                            _HI["en"] + ",\n\nThank you for your order #{{ order_id }}."
                            + _opt("products", "\nYou ordered: {{ products }}")
                            + _opt("order_url", "\nProduct and shipping details: {{ order_url }}") + "\n"),
        },
        "he": {
            Channel.SMS: (None, _HI["he"] + ", תודה על ההזמנה #{{ order_id }}!"
                          + _opt("order_url", " לפרטים: {{ order_url }}")),
            Channel.WHATSAPP: (None, _HI["he"] + ", תודה על ההזמנה #{{ order_id }}!"
                               + _opt("products", " הזמנת: {{ products }}.")
                               + _opt("order_url", " פרטי המוצרים והמשלוח: {{ order_url }}")),
            Channel.EMAIL: ("תודה על ההזמנה #{{ order_id }}",
                            _HI["he"] + ",\n\nתודה על ההזמנה #{{ order_id }}."
                            + _opt("products", "\nהזמנת: {{ products }}")
                            + _opt("order_url", "\nפרטי המוצרים והמשלוח: {{ order_url }}") + "\n"),
        },
        "nl": {
            Channel.SMS: (None, _HI["nl"] + ", bedankt voor je bestelling #{{ order_id }}!"
                          + _opt("order_url", " Details: {{ order_url }}")),
            Channel.WHATSAPP: (None, _HI["nl"] + ", bedankt voor je bestelling #{{ order_id }}!"
                               + _opt("products", " Je bestelde: {{ products }}.")
                               + _opt("order_url", " Hier zijn de product- en verzendgegevens: {{ order_url }}")),
            Channel.EMAIL: ("Bedankt voor je bestelling #{{ order_id }}",
                            _HI["nl"] + ",\n\nBedankt voor je bestelling #{{ order_id }}."
                            + _opt("products", "\nJe bestelde: {{ products }}")
                            + _opt("order_url", "\nHier zijn de product- en verzendgegevens: {{ order_url }}") + "\n"),
        },
        "pl": {
            Channel.SMS: (None, _HI["pl"] + "! Dziękujemy za zamówienie nr {{ order_id }}."
                          + _opt("order_url", " Szczegóły: {{ order_url }}")),
            Channel.WHATSAPP: (None, _HI["pl"] + "! Dziękujemy za zamówienie nr {{ order_id }}."
                               + _opt("products", " Zamówione produkty: {{ products }}.")
                               + _opt("order_url", " Szczegóły produktów i wysyłki: {{ order_url }}")),
            Channel.EMAIL: ("Dziękujemy za zamówienie nr {{ order_id }}",
                            _HI["pl"] + ",\n\nDziękujemy za zamówienie nr {{ order_id }}."
                            + _opt("products", "\nZamówione produkty: {{ products }}")
                            + _opt("order_url", "\nSzczegóły produktów i wysyłki: {{ order_url }}") + "\n"),
        },
        "be": {
            Channel.SMS: (None, _HI["be"] + "! Дзякуем за вашу замову №{{ order_id }}."
                          + _opt("order_url", " Падрабязнасці: {{ order_url }}")),
            Channel.WHATSAPP: (None, _HI["be"] + "! Дзякуем за вашу замову №{{ order_id }}."
                               + _opt("products", " Вы замовілі: {{ products }}.")
                               + _opt("order_url", " Падрабязнасці пра тавары і дастаўку: {{ order_url }}")),
            Channel.EMAIL: ("Дзякуем за замову №{{ order_id }}",
                            _HI["be"] + ",\n\nДзякуем за вашу замову №{{ order_id }}."
                            + _opt("products", "\nВы замовілі: {{ products }}")
                            + _opt("order_url", "\nПадрабязнасці пра тавары і дастаўку: {{ order_url }}") + "\n"),
        },
    },
    # Delivery feedback (transactional service questions). Dutch texts are the seed article's own;
    # the Belarusian review request is its seed's example, the Hebrew referral line ("נהניתם? ספרו
    # לחבריכם!") its seed's. Answers are read by the journey, so no text offers a keyword as an answer
    # that streams.keywords would act on (Polish NIE opts out: the Polish question names only TAK).
    "rate_us": {
        "en": _chat(_HI["en"] + ", your order #{{ order_id }} has arrived! How would you rate your shopping "
                    "experience from 1 to 5? Just reply with a number."),
        "he": _chat(_HI["he"] + ", ההזמנה #{{ order_id }} הגיעה! איך תדרגו את חוויית הקנייה שלכם מ-1 עד 5? "
                    "השיבו במספר."),
        "nl": _chat(_HI["nl"] + ", je bestelling #{{ order_id }} is gearriveerd! Beoordeel je winkelervaring van "
                    "1-5 sterren: antwoord met een cijfer."),
        "pl": _chat(_HI["pl"] + "! Zamówienie nr {{ order_id }} dotarło. Jak oceniasz zakupy u nas w skali od 1 do 5? "
                    "Odpowiedz cyfrą."),
        "be": _chat(_HI["be"] + "! Ваша замова №{{ order_id }} прыбыла. Ацаніце, калі ласка, вашы пакупкі "
                    "ад 1 да 5 — адкажыце лічбай."),
    },
    # After a 4 or 5: a review request, and a referral link when the event gives one. Without a
    # review_url the order page is linked (most shops let a customer review from there).
    "review_request": {
        loc: _chat(text.replace("{R}", "{{ review_url if review_url is defined and review_url else order_url }}")
                   .replace("{P}", "{{ products }}"))
        for loc, text in {
            "en": "We're glad you enjoyed shopping with us! Help others choose by reviewing "
                  + _opt("products", "{P}") + "{% if products is not defined or not products %}your order{% endif %}"
                  + ": {R}" + _opt("referral_url", " Enjoyed it? Tell a friend: {{ referral_url }}"),
            "he": "שמחים שנהניתם לקנות אצלנו! עזרו לאחרים לבחור ודרגו את "
                  + _opt("products", "{P}") + "{% if products is not defined or not products %}ההזמנה שלכם{% endif %}"
                  + ": {R}" + _opt("referral_url", " נהניתם? ספרו לחבריכם! {{ referral_url }}"),
            "nl": "We zijn blij dat je graag bij ons hebt gewinkeld! Help anderen te inspireren door "
                  + _opt("products", "{P}") + "{% if products is not defined or not products %}je bestelling{% endif %}"
                  + " te beoordelen: {R}" + _opt("referral_url", " Tevreden? Vertel het je vrienden: {{ referral_url }}"),
            "pl": "Cieszymy się, że zakupy u nas się udały! Pomóż innym w wyborze i oceń "
                  + _opt("products", "{P}") + "{% if products is not defined or not products %}swoje zamówienie{% endif %}"
                  + ": {R}" + _opt("referral_url", " Podobało się? Poleć nas znajomym: {{ referral_url }}"),
            "be": "Мы спадзяемся, што вам спадабаўся ваш заказ. Калі ласка, падзяліцеся сваім меркаваннем тут {R}"
                  + _opt("referral_url", " Спадабалася? Раскажыце сябрам: {{ referral_url }}"),
        }.items()
    },
    "what_went_wrong": {
        "en": _chat("We're sorry your experience fell short. What went wrong? Reply Shipping, Quality or Service."),
        "he": _chat("מצטערים שהחוויה לא הייתה טובה. מה השתבש? השיבו: משלוח, איכות או שירות."),
        "nl": _chat("We vinden het jammer dat je onze winkelervaring lager dan gemiddeld hebt beoordeeld. Kun je delen "
                    "wat je ervaring heeft beïnvloed? Antwoord Verzending, Productkwaliteit of Service."),
        "pl": _chat("Przykro nam, że zakupy nie spełniły oczekiwań. Co poszło nie tak? "
                    "Odpowiedz: Wysyłka, Jakość lub Obsługa."),
        "be": _chat("Нам шкада, што пакупкі вас расчаравалі. Што пайшло не так? "
                    "Адкажыце: Дастаўка, Якасць або Абслугоўванне."),
    },
    "talk_to_agent": {
        "en": _chat("Would you like to talk to one of our team to sort it out? Reply YES or NO."),
        "he": _chat("תרצו לדבר עם נציג שיעזור לפתור את זה? השיבו כן או לא."),
        "nl": _chat("Wil je met een medewerker praten om iets voor je op te lossen? Antwoord JA of NEE."),
        "pl": _chat("Chcesz porozmawiać z konsultantem, który pomoże to rozwiązać? Odpowiedz TAK."),
        "be": _chat("Хочаце пагаварыць з нашым супрацоўнікам, каб усё выправіць? Адкажыце ТАК або НЕ."),
    },
    # Reactivation (marketing): the Dutch SMS is the seed article's own example, with the issued code.
    "reactivation": {
        "en": {
            Channel.SMS: (None, _HI["en"] + ", you can now get " + _VALUE + " off your next order"
                          + _min_cart(" of {M} or more") + " with code "
                          "{{ coupon_code }}, valid until {{ coupon_expires }}." + _opt("shop_url", " Shop now: {{ shop_url }}")),
            Channel.EMAIL: (_VALUE + " off your next order",
                            _HI["en"] + ",\n\nWe miss you! Get " + _VALUE + " off your next order"
                            + _min_cart(" of {M} or more") + " with code "
                            "{{ coupon_code }}.\nThe code is valid until {{ coupon_expires }}."
                            + _opt("shop_url", "\nShop now: {{ shop_url }}") + "\n"),
        },
        "he": {
            Channel.SMS: (None, _HI["he"] + ", קבלו " + _VALUE + " הנחה על הרכישה הבאה" + _min_cart(" בסך {M} ומעלה")
                          + " עם הקוד {{ coupon_code }}, "
                          "בתוקף עד {{ coupon_expires }}." + _opt("shop_url", " לקנייה: {{ shop_url }}")),
            Channel.EMAIL: (_VALUE + " הנחה על הרכישה הבאה",
                            _HI["he"] + ",\n\nהתגעגענו! קבלו " + _VALUE + " הנחה על הרכישה הבאה"
                            + _min_cart(" בסך {M} ומעלה") + " עם הקוד {{ coupon_code }}.\n"
                            "הקוד בתוקף עד {{ coupon_expires }}." + _opt("shop_url", "\nלקנייה: {{ shop_url }}") + "\n"),
        },
        "nl": {
            Channel.SMS: (None, _HI["nl"] + ", je kunt nu " + _VALUE + " korting krijgen op je volgende aankoop met code "
                          "{{ coupon_code }}. Je code is geldig tot {{ coupon_expires }}"
                          + _min_cart(" bij een besteding vanaf {M}") + "."
                          + _opt("shop_url", " Winkel nu: {{ shop_url }}")),
            Channel.EMAIL: (_VALUE + " korting op je volgende aankoop",
                            _HI["nl"] + ",\n\nJe kunt nu " + _VALUE + " korting krijgen op je volgende aankoop met code "
                            "{{ coupon_code }}.\nJe code is geldig tot {{ coupon_expires }}"
                            + _min_cart(" bij een besteding vanaf {M}") + "."
                            + _opt("shop_url", "\nWinkel nu: {{ shop_url }}") + "\n"),
        },
        "pl": {
            Channel.SMS: (None, _HI["pl"] + "! Odbierz " + _VALUE + " rabatu na kolejne zakupy" + _min_cart(" od {M}")
                          + " z kodem {{ coupon_code }}, "
                          "ważnym do {{ coupon_expires }}." + _opt("shop_url", " Kupuj teraz: {{ shop_url }}")),
            Channel.EMAIL: (_VALUE + " rabatu na kolejne zakupy",
                            _HI["pl"] + ",\n\nTęsknimy! Odbierz " + _VALUE + " rabatu na kolejne zakupy"
                            + _min_cart(" od {M}") + " z kodem "
                            "{{ coupon_code }}.\nKod jest ważny do {{ coupon_expires }}."
                            + _opt("shop_url", "\nKupuj teraz: {{ shop_url }}") + "\n"),
        },
        "be": {
            Channel.SMS: (None, _HI["be"] + "! Атрымайце зніжку " + _VALUE + " на наступную пакупку"
                          + _min_cart(" ад {M}") + ". "
                          "Выкарыстайце код: {{ coupon_code }} (дзейнічае да {{ coupon_expires }})."
                          + _opt("shop_url", " Купіць: {{ shop_url }}")),
            Channel.EMAIL: ("Зніжка " + _VALUE + " на наступную пакупку",
                            _HI["be"] + ",\n\nМы сумуем! Атрымайце зніжку " + _VALUE + " на наступную пакупку"
                            + _min_cart(" ад {M}") + ".\n"
                            "Выкарыстайце код: {{ coupon_code }} (дзейнічае да {{ coupon_expires }})."
                            + _opt("shop_url", "\nКупіць: {{ shop_url }}") + "\n"),
        },
    },
    # Birthday greeting with a gift code (marketing): the Polish, Hebrew and Belarusian seeds all name it.
    "birthday_greeting": {
        loc: {Channel.SMS: (None, greeting + " " + gift), Channel.WHATSAPP: (None, greeting + " 🎉 " + gift),
              Channel.EMAIL: (subject, greeting + "\n\n" + gift + "\n")}
        for loc, (greeting, gift, subject) in {
            "en": (_HI["en"] + ", happy birthday!",
                   "Here's a gift from us: " + _VALUE + " off" + _min_cart(" orders of {M} or more")
                   + " with code {{ coupon_code }}, valid until {{ coupon_expires }}.",
                   "Happy birthday! A gift for you inside"),
            "he": (_HI["he"] + ", מזל טוב ליום ההולדת!",
                   "במתנה מאיתנו: " + _VALUE + " הנחה" + _min_cart(" בקנייה בסך {M} ומעלה")
                   + " עם הקוד {{ coupon_code }}, בתוקף עד {{ coupon_expires }}.",
                   "מזל טוב ליום ההולדת! מתנה מחכה לך"),
            "nl": (_HI["nl"] + ", gefeliciteerd met je verjaardag!",
                   "Als cadeau van ons: " + _VALUE + " korting" + _min_cart(" bij een besteding vanaf {M}")
                   + " met code {{ coupon_code }}, geldig tot {{ coupon_expires }}.",
                   "Gefeliciteerd met je verjaardag! Een cadeau voor jou"),
            "pl": (_HI["pl"] + "! Wszystkiego najlepszego z okazji urodzin!",
                   "W prezencie od nas kod promocyjny {{ coupon_code }}: " + _VALUE + " rabatu"
                   + _min_cart(" na zakupy od {M}") + ", ważny do {{ coupon_expires }}.",
                   "Wszystkiego najlepszego! Mamy dla Ciebie prezent"),
            "be": (_HI["be"] + "! Віншуем з днём нараджэння!",
                   "У падарунак ад нас — зніжка " + _VALUE + _min_cart(" на пакупку ад {M}")
                   + " з кодам {{ coupon_code }}, дзейнічае да {{ coupon_expires }}.",
                   "Віншуем з днём нараджэння! Падарунак для вас"),
        }.items()
    },
    # The SMS inviting a subscriber to the WhatsApp newsletter: the Dutch text is the seed's own, emoji included.
    "whatsapp_invite": {
        loc: {Channel.SMS: (None, text), Channel.EMAIL: (subject, text.replace("! ", "!\n\n", 1) + "\n")}
        for loc, (text, subject) in {
            "en": (_HI["en"] + "! Stay up to date with our newest products, campaigns and events! Subscribe to our "
                   "WhatsApp newsletter for exclusive content, VIP access to price drops and trend updates. "
                   "Sign up here: {{ signup_url }}", "Join our WhatsApp newsletter"),
            "he": (_HI["he"] + "! הישארו מעודכנים במוצרים, בקמפיינים ובאירועים החדשים שלנו! הצטרפו לניוזלטר שלנו "
                   "ב-WhatsApp לתוכן בלעדי, גישת VIP להורדות מחירים ועדכוני טרנדים. להרשמה: {{ signup_url }}",
                   "הצטרפו לניוזלטר שלנו ב-WhatsApp"),
            "nl": (_HI["nl"] + "! Blijf op de hoogte van onze nieuwste producten, campagnes en evenementen! Abonneer je "
                   "op onze WhatsApp-nieuwsbrief voor exclusieve content, VIP-toegang tot prijsverlagingen en trend "
                   "updates. Klik hier om je aan te melden: {{ signup_url }} 📲", "Abonneer je op onze WhatsApp-nieuwsbrief"),
            "pl": (_HI["pl"] + "! Bądź na bieżąco z naszymi nowościami, kampaniami i wydarzeniami! Zapisz się do "
                   "newslettera na WhatsAppie: ekskluzywne treści, dostęp VIP do obniżek i trendy. "
                   "Zapisz się tutaj: {{ signup_url }}", "Zapisz się do naszego newslettera na WhatsAppie"),
            "be": (_HI["be"] + "! Будзьце ў курсе нашых навінак, акцый і падзей! Падпішыцеся на нашу рассылку ў "
                   "WhatsApp: эксклюзіўныя навіны, VIP-доступ да зніжак і трэнды. Падпісацца: {{ signup_url }}",
                   "Падпішыцеся на нашу рассылку ў WhatsApp"),
        }.items()
    },
    # The WhatsApp welcome with a thank-you code: the Dutch text is the seed's own (its fixed "€5 … THANKYOU5"
    # becomes the issued code). No name: the approved template greets everyone alike.
    "whatsapp_welcome": {
        "en": {Channel.WHATSAPP: (None, "Hi there! 👋 Thanks for subscribing to our WhatsApp newsletter. As a token of "
                                        "our appreciation, here is a " + _VALUE + " discount code for your next order"
                                        + _min_cart(" of {M} or more") + ": "
                                        "{{ coupon_code }} (valid until {{ coupon_expires }}). Enjoy exclusive updates, "
                                        "offers and more. If you ever have a question or need help, just message us.")},
        "he": {Channel.WHATSAPP: (None, "היי! 👋 תודה שהצטרפתם לניוזלטר שלנו ב-WhatsApp. כהוקרה, קבלו קוד הנחה של "
                                        + _VALUE + " לרכישה הבאה" + _min_cart(" בסך {M} ומעלה")
                                        + ": {{ coupon_code }} (בתוקף עד {{ coupon_expires }}). "
                                        "תהנו מעדכונים ומבצעים בלעדיים. לכל שאלה או עזרה, פשוט כתבו לנו כאן.")},
        "nl": {Channel.WHATSAPP: (None, "Hallo daar! 👋 Bedankt voor je inschrijving voor onze WhatsApp-nieuwsbrief. "
                                        "Als blijk van onze waardering ontvang je een kortingscode van " + _VALUE +
                                        " voor je volgende aankoop" + _min_cart(" vanaf {M}")
                                        + ": {{ coupon_code }} (geldig tot {{ coupon_expires }}). "
                                        "Geniet van exclusieve updates, aanbiedingen en meer. Als je ooit vragen hebt of "
                                        "hulp nodig hebt, neem dan gerust contact met ons op.")},
        "pl": {Channel.WHATSAPP: (None, "Cześć! 👋 Dziękujemy za zapisanie się do naszego newslettera na WhatsAppie. "
                                        "W podziękowaniu masz kod rabatowy " + _VALUE + " na kolejne zakupy"
                                        + _min_cart(" od {M}") + ": "
                                        "{{ coupon_code }} (ważny do {{ coupon_expires }}). Czekają na Ciebie ekskluzywne "
                                        "nowości i oferty. Jeśli masz pytania lub potrzebujesz pomocy, po prostu napisz.")},
        "be": {Channel.WHATSAPP: (None, "Прывітанне! 👋 Дзякуем, што падпісаліся на нашу рассылку ў WhatsApp. У знак "
                                        "удзячнасці — код на зніжку " + _VALUE + " на наступную пакупку"
                                        + _min_cart(" ад {M}") + ": {{ coupon_code }} "
                                        "(дзейнічае да {{ coupon_expires }}). Чакайце эксклюзіўныя навіны і прапановы. "
                                        "Калі ў вас ёсць пытанні, проста напішыце нам.")},
    },
    # Cross-sell a few days after shipping (marketing): the Dutch text follows the seed's recommendation message.
    # A campaign's flash sale; the Hebrew text is the seed article's own ("מבצע בזק! …").
    "flash_sale": {
        "en": {
            Channel.SMS: (None, "Flash sale! {{ coupon_value }} off everything for 3 hours"
                          + _min_cart(" on orders of {M} or more") + ". Use code: {{ coupon_code }}"),
            Channel.WHATSAPP: (None, _HI["en"] + "! Flash sale: {{ coupon_value }} off everything for 3 hours"
                               + _min_cart(" on orders of {M} or more") + ". Use code {{ coupon_code }}"),
            Channel.EMAIL: ("Flash sale: {{ coupon_value }} off for 3 hours",
                            _HI["en"] + ",\n\nFor the next 3 hours everything is {{ coupon_value }} off"
                            + _min_cart(" on orders of {M} or more") + ".\n"
                            "Use code {{ coupon_code }} at checkout.\n"),
        },
        "he": {
            Channel.SMS: (None, "מבצע בזק! {{ coupon_value }} הנחה על כל החנות למשך 3 שעות"
                          + _min_cart(" בקנייה בסך {M} ומעלה") + ". השתמש בקוד: {{ coupon_code }}"),
            Channel.WHATSAPP: (None, _HI["he"] + "! מבצע בזק: {{ coupon_value }} הנחה על כל החנות למשך 3 שעות"
                               + _min_cart(" בקנייה בסך {M} ומעלה") + ". השתמש בקוד: {{ coupon_code }}"),
            Channel.EMAIL: ("מבצע בזק: {{ coupon_value }} הנחה ל-3 שעות",
                            _HI["he"] + ",\n\nמבצע בזק! {{ coupon_value }} הנחה על כל החנות למשך 3 שעות"
                            + _min_cart(" בקנייה בסך {M} ומעלה") + ".\n"
                            "השתמש בקוד: {{ coupon_code }}\n"),
        },
        "nl": {
            Channel.SMS: (None, "Flash sale! {{ coupon_value }} korting op alles, 3 uur lang"
                          + _min_cart(" bij een besteding vanaf {M}") + ". Gebruik code: {{ coupon_code }}"),
            Channel.WHATSAPP: (None, _HI["nl"] + "! Flash sale: {{ coupon_value }} korting op alles, 3 uur lang"
                               + _min_cart(" bij een besteding vanaf {M}") + ". Gebruik code {{ coupon_code }}"),
            Channel.EMAIL: ("Flash sale: {{ coupon_value }} korting, 3 uur lang",
                            _HI["nl"] + ",\n\nDe komende 3 uur krijg je {{ coupon_value }} korting op alles"
                            + _min_cart(" bij een besteding vanaf {M}") + ".\n"
                            "Gebruik code {{ coupon_code }} bij het afrekenen.\n"),
        },
        "pl": {
            Channel.SMS: (None, "Błyskawiczna wyprzedaż! {{ coupon_value }} zniżki na wszystko przez 3 godziny"
                          + _min_cart(" przy zakupach od {M}") + ". Kod: {{ coupon_code }}"),
            Channel.WHATSAPP: (None, _HI["pl"] + "! Błyskawiczna wyprzedaż: {{ coupon_value }} zniżki na wszystko "
                               "przez 3 godziny" + _min_cart(" przy zakupach od {M}") + ". Kod: {{ coupon_code }}"),
            Channel.EMAIL: ("Błyskawiczna wyprzedaż: {{ coupon_value }} zniżki przez 3 godziny",
                            _HI["pl"] + ",\n\nPrzez najbliższe 3 godziny wszystko {{ coupon_value }} taniej"
                            + _min_cart(" przy zakupach od {M}") + ".\n"
                            "Użyj kodu {{ coupon_code }} przy zamówieniu.\n"),
        },
        "be": {
            Channel.SMS: (None, "Маланкавы распродаж! Зніжка {{ coupon_value }} на ўсё на 3 гадзіны"
                          + _min_cart(" пры пакупцы ад {M}") + ". Код: {{ coupon_code }}"),
            Channel.WHATSAPP: (None, _HI["be"] + "! Маланкавы распродаж: зніжка {{ coupon_value }} на ўсё на 3 гадзіны"
                               + _min_cart(" пры пакупцы ад {M}") + ". Код: {{ coupon_code }}"),
            Channel.EMAIL: ("Маланкавы распродаж: зніжка {{ coupon_value }} на 3 гадзіны",
                            _HI["be"] + ",\n\nНаступныя 3 гадзіны на ўсё зніжка {{ coupon_value }}"
                            + _min_cart(" пры пакупцы ад {M}") + ".\n"
                            "Выкарыстайце код {{ coupon_code }} пры афармленні.\n"),
        },
    },
    # Back in stock; the Dutch text is the Spryng seed's own ("Je favoriete sneakers zijn weer op voorraad!").
    "back_in_stock": {
        "en": {
            Channel.SMS: (None, "Your favourite {{ product_name }} are back in stock! Get them before they're gone: "
                          "{{ product_url }} 🛒✨"),
            Channel.WHATSAPP: (None, _HI["en"] + "! Your favourite {{ product_name }} are back in stock. "
                               "Get them before they're gone: {{ product_url }}"),
            Channel.EMAIL: ("{{ product_name }}: back in stock", _HI["en"] + ",\n\nYour favourite {{ product_name }} "
                            "are back in stock. Get them before they're gone: {{ product_url }}\n"),
        },
        "he": {
            Channel.SMS: (None, "{{ product_name }} שאהבת חזרו למלאי! מהרו לפני שייגמרו: {{ product_url }} 🛒✨"),
            Channel.WHATSAPP: (None, _HI["he"] + "! {{ product_name }} שאהבת חזרו למלאי. מהרו לפני שייגמרו: "
                               "{{ product_url }}"),
            Channel.EMAIL: ("{{ product_name }} חזרו למלאי", _HI["he"] + ",\n\n{{ product_name }} שאהבת חזרו למלאי.\n"
                            "מהרו לפני שייגמרו: {{ product_url }}\n"),
        },
        "nl": {
            Channel.SMS: (None, "Je favoriete {{ product_name }} zijn weer op voorraad! Koop ze snel voordat ze weg "
                          "zijn. Winkel nu op {{ product_url }}. 🛒✨"),
            Channel.WHATSAPP: (None, _HI["nl"] + "! Je favoriete {{ product_name }} zijn weer op voorraad. Koop ze snel "
                               "voordat ze weg zijn: {{ product_url }}"),
            Channel.EMAIL: ("{{ product_name }} weer op voorraad", _HI["nl"] + ",\n\nJe favoriete {{ product_name }} "
                            "zijn weer op voorraad. Koop ze snel voordat ze weg zijn: {{ product_url }}\n"),
        },
        "pl": {
            Channel.SMS: (None, "Twoje ulubione {{ product_name }} znów są dostępne! Kup, zanim znikną: "
                          "{{ product_url }} 🛒✨"),
            Channel.WHATSAPP: (None, _HI["pl"] + "! Twoje ulubione {{ product_name }} znów są dostępne. Kup, zanim "
                               "znikną: {{ product_url }}"),
            Channel.EMAIL: ("{{ product_name }} znów dostępne", _HI["pl"] + ",\n\nTwoje ulubione {{ product_name }} "
                            "znów są dostępne. Kup, zanim znikną: {{ product_url }}\n"),
        },
        "be": {
            Channel.SMS: (None, "Вашы любімыя {{ product_name }} зноў у продажы! Купіце, пакуль не скончыліся: "
                          "{{ product_url }} 🛒✨"),
            Channel.WHATSAPP: (None, _HI["be"] + "! Вашы любімыя {{ product_name }} зноў у продажы. Купіце, пакуль не "
                               "скончыліся: {{ product_url }}"),
            Channel.EMAIL: ("{{ product_name }} зноў у продажы", _HI["be"] + ",\n\nВашы любімыя {{ product_name }} "
                            "зноў у продажы. Купіце, пакуль не скончыліся: {{ product_url }}\n"),
        },
    },
    "cross_sell": {
        loc: {Channel.SMS: (None, text), Channel.EMAIL: (subject, text.replace("! ", "!\n\n", 1) + "\n")}
        for loc, (text, subject) in {
            "en": (_HI["en"] + "! We hope you're enjoying your recent purchase! "
                   + _opt("products", "If you liked {{ products }}, you'll like {{ recommendation }}.")
                   + "{% if products is not defined or not products %}We think you'll like {{ recommendation }}.{% endif %}"
                   + _opt("recommendation_url", " Have a look: {{ recommendation_url }}"),
                   "You might also like {{ recommendation }}"),
            "he": (_HI["he"] + "! מקווים שאתם נהנים מהרכישה האחרונה! "
                   + _opt("products", "אהבתם את {{ products }}? בטוח תאהבו גם את {{ recommendation }}.")
                   + "{% if products is not defined or not products %}חשבנו שתאהבו את {{ recommendation }}.{% endif %}"
                   + _opt("recommendation_url", " הציצו כאן: {{ recommendation_url }}"),
                   "אולי תאהבו גם את {{ recommendation }}"),
            "nl": (_HI["nl"] + "! We hopen dat je geniet van je recente aankoop! "
                   + _opt("products", "Vond je {{ products }} leuk? Dan vind je {{ recommendation }} vast ook leuk.")
                   + "{% if products is not defined or not products %}Op basis van je bestelling dachten we dat je "
                     "{{ recommendation }} ook leuk zou vinden.{% endif %}"
                   + _opt("recommendation_url", " Meer informatie: {{ recommendation_url }}"),
                   "Misschien vind je {{ recommendation }} ook leuk"),
            "pl": (_HI["pl"] + "! Mamy nadzieję, że zakupy przypadły Ci do gustu! "
                   + _opt("products", "Osoby, które kupiły {{ products }}, wybierają też {{ recommendation }}.")
                   + "{% if products is not defined or not products %}Myślimy, że spodoba Ci się "
                     "{{ recommendation }}.{% endif %}"
                   + _opt("recommendation_url", " Zobacz: {{ recommendation_url }}"),
                   "Może spodoba Ci się też {{ recommendation }}"),
            "be": (_HI["be"] + "! Спадзяемся, што вам падабаецца ваша пакупка! "
                   + _opt("products", "Калі вам спадабаўся ваш заказ ({{ products }}), вам спадабаецца і {{ recommendation }}.")
                   + "{% if products is not defined or not products %}Мы думаем, вам спадабаецца "
                     "{{ recommendation }}.{% endif %}"
                   + _opt("recommendation_url", " Паглядзіце: {{ recommendation_url }}"),
                   "Вам можа спадабацца {{ recommendation }}"),
        }.items()
    },
}

DEFAULT_LOCALE = "en"

# template -> (WhatsApp category, variables filling the approved template's {{1}}, {{2}} … in order).
# Business-initiated WhatsApp messages go out as these approved templates (never error 131047).
# A parameter list is fixed (Meta approved a text with that many placeholders), so an optional variable such as
# a coupon's ``coupon_min_cart`` is never one: it shows in the free texts (SMS, e-mail, WhatsApp inside the
# 24-hour window) only. A journey whose coupon has a minimum order should not rely on WhatsApp templates.
_WHATSAPP: dict[str, tuple[str, tuple[str, ...]]] = {
    "back_in_stock": ("utility", ("first_name", "product_name", "product_url")),
    "flash_sale": ("marketing", ("first_name", "coupon_value", "coupon_code")),
    "shipping_update": ("utility", ("first_name", "order_id", "tracking_url")),
    "optin_confirmation": ("utility", ()),
    "cart_reminder": ("marketing", ("first_name", "cart_url")),
    # Journeys. Utility: tied to one order and not promotional (Meta: a template mixing in marketing content
    # is marketing). The questions' quick-reply buttons carry English payloads (Shipping/Quality/Service,
    # Yes/No), which deploy/journeys/delivery_feedback.yaml accepts alongside the localised answers.
    "order_confirmation": ("utility", ("first_name", "order_id", "order_url")),
    "rate_us": ("utility", ("first_name", "order_id")),
    "what_went_wrong": ("utility", ()),
    "talk_to_agent": ("utility", ()),
    "review_request": ("marketing", ("review_url",)),  # the referral ask makes it marketing
    "birthday_greeting": ("marketing", ("first_name", "coupon_value", "coupon_code", "coupon_expires")),
    "whatsapp_welcome": ("marketing", ("coupon_value", "coupon_code", "coupon_expires")),
}


# Quick replies of the questions a journey branches on (the seeds' "[Shipping] [Quality] [Service]" and
# "[Yes] [No]"), sent as WhatsApp buttons inside the 24-hour window: template -> locale -> (payload, title).
# A press comes back as the payload (what the journeys' branches match); the text's own "Reply ..." stays,
# so typing still works, and on SMS the text is all there is. No title may be an opt-out keyword: the Polish
# "Nie" is one (streams.keywords), so the Polish question offers Tak alone, as its text does.
_BUTTONS: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    "what_went_wrong": {
        "en": (("shipping", "Shipping"), ("quality", "Quality"), ("service", "Service")),
        "he": (("shipping", "משלוח"), ("quality", "איכות"), ("service", "שירות")),
        "nl": (("shipping", "Verzending"), ("quality", "Productkwaliteit"), ("service", "Service")),
        "pl": (("shipping", "Wysyłka"), ("quality", "Jakość"), ("service", "Obsługa")),
        "be": (("shipping", "Дастаўка"), ("quality", "Якасць"), ("service", "Абслугоўванне")),
    },
    "talk_to_agent": {
        "en": (("yes", "Yes"), ("no", "No")),
        "he": (("yes", "כן"), ("no", "לא")),
        "nl": (("yes", "Ja"), ("no", "Nee")),
        "pl": (("yes", "Tak"),),
        "be": (("yes", "Так"), ("no", "Не")),
    },
}


def buttons(template: str, locale: str) -> tuple[tuple[str, str], ...]:
    """The quick replies (payload, title) of ``template`` in ``locale`` (a resolved locale); none for most."""
    return _BUTTONS.get(template, {}).get(locale, ())


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


def whatsapp_template_names() -> frozenset[str]:
    """The approved WhatsApp templates the product sends (registered with Meta under these names)."""
    return frozenset(_WHATSAPP)


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
_REQUIRED: dict[str, set[str]] = {"back_in_stock": {"first_name", "product_name", "product_url"},
                                  "flash_sale": {"first_name", "coupon_value", "coupon_code"},
                                  "shipping_update": {"first_name", "order_id", "tracking_url"},
                                  "help_reply": {"help_text"}, "optin_confirmation": set(),
                                  "cart_reminder": {"first_name", "cart_url"},
                                  "order_confirmation": {"first_name", "order_id", "order_url"},
                                  "rate_us": {"first_name", "order_id"}, "review_request": {"order_url"},
                                  "what_went_wrong": set(), "talk_to_agent": set(),
                                  "reactivation": {"first_name", "coupon_code", "coupon_value", "coupon_expires"},
                                  "birthday_greeting": {"first_name", "coupon_code", "coupon_value", "coupon_expires"},
                                  "whatsapp_invite": {"first_name", "signup_url"},
                                  "whatsapp_welcome": {"coupon_code", "coupon_value", "coupon_expires"},
                                  "cross_sell": {"first_name", "recommendation"}}

_RTL = {"he", "ar", "fa", "yi"}


def email_html(text: str, locale: str) -> str:
    """The HTML part of an e-mail from its text: escaped, paragraphs kept, right-to-left where the language is."""
    paragraphs = [html.escape(p).replace("\n", "<br>\n") for p in text.strip().split("\n\n")]
    direction = "rtl" if locale.split("-")[0].lower() in _RTL else "ltr"
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return f'<!doctype html>\n<html lang="{html.escape(locale)}" dir="{direction}"><body>\n{body}\n</body></html>\n'


SAMPLE_VARIABLES = {
    "first_name": "Ana", "order_id": "1001", "carrier": "DHL", "tracking_url": "https://t.example/1",
    "order_url": "https://shop.example/o/1001", "cart_url": "https://shop.example/cart/1",
    "help_text": "Reply STOP to unsubscribe.", "products": "Sneakers, T-shirt", "sku": "SNK-42",
    "product_name": "Sneakers", "product_url": "https://shop.example/p/SNK-42", "coupon_code": "SB-7K2M9Q4X",
    "coupon_value": "10%", "coupon_expires": "2026-12-31", "coupon_min_cart": "50.00",
    "review_url": "https://shop.example/review/1001",
    "referral_url": "https://shop.example/r/ana", "signup_url": "https://shop.example/whatsapp",
    "recommendation": "Running socks", "recommendation_url": "https://shop.example/p/SOCK-1",
    "shop_url": "https://shop.example",
}


def sample_variables(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Every variable a template may use, with sample values (load-time checks render with these)."""
    return {**SAMPLE_VARIABLES, **(extra or {})}


def template_locales(template: str) -> list[str]:
    """The locales a template has texts for."""
    if template not in _COMPILED:
        raise UnknownTemplateError(template)
    return sorted(_COMPILED[template])


def _self_check() -> None:
    """Render every template with sample variables at import: fail loudly at start-up."""
    sample = SAMPLE_VARIABLES
    for name, locales in _COMPILED.items():
        for loc, chans in locales.items():
            for ch in chans:
                render(name, loc, ch, sample)
                render(name, loc, ch, {k: v for k, v in sample.items() if k in _REQUIRED.get(name, sample)})
        if name in _WHATSAPP:
            whatsapp_template(name, DEFAULT_LOCALE, sample)


_self_check()
