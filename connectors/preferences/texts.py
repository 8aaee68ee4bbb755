"""The preference page's words, in the languages the shops serve (English, Hebrew, Dutch, Polish, Belarusian).

The disclosure is recorded word for word with every consent change it led to: change its wording only
together with ``SWITCHBOARD_PREFERENCES__DISCLOSURE_VERSION``. Refusal pages are English only: a refused
link tells us nothing about its reader.
"""

from __future__ import annotations

from schemas.types import Channel

LANGUAGE_NAMES = {"en": "English", "he": "עברית", "nl": "Nederlands", "pl": "Polski", "be": "Беларуская"}
RTL = frozenset({"he"})

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your message preferences",
        "intro": "Choose which offers and news you get from us, and where.",
        "marketing_legend": "Offers and news",
        "marketing_hint": "Order updates (shipping, delivery) are always sent; these choices are about marketing only.",
        "sms": "SMS", "whatsapp": "WhatsApp", "email": "E-mail",
        "marketing_label": "{channel} to {contact}",
        "no_channels": "We have no way to reach you by message.",
        "preferred": "Preferred channel", "no_preference": "No preference",
        "language": "Language",
        "pause": "Pause marketing", "no_pause": "No pause", "pause_days": "For {n} days",
        "keep_pause": "Keep the pause until {date}",
        "disclosure": "By ticking a channel you agree to receive marketing messages (offers and news) on it. "
                      "Message frequency varies; standard rates may apply. You can change this here at any time, "
                      "or reply STOP to any SMS or WhatsApp message.",
        "save": "Save",
        "saved_title": "Saved",
        "saved_body": "Your preferences are saved. It can take a minute before every message follows them.",
        "back": "Back to your preferences",
    },
    "he": {
        "title": "העדפות ההודעות שלך",
        "intro": "בחרו אילו מבצעים ועדכונים תקבלו מאיתנו, והיכן.",
        "marketing_legend": "מבצעים ועדכונים",
        "marketing_hint": "עדכוני הזמנה (משלוח, מסירה) נשלחים תמיד; הבחירות כאן נוגעות לדיוור שיווקי בלבד.",
        "sms": "SMS", "whatsapp": "WhatsApp", "email": "דוא״ל",
        "marketing_label": "{channel} אל {contact}",
        "no_channels": "אין לנו דרך לשלוח אליך הודעות.",
        "preferred": "ערוץ מועדף", "no_preference": "ללא העדפה",
        "language": "שפה",
        "pause": "השהיית דיוור שיווקי", "no_pause": "ללא השהיה", "pause_days": "ל-{n} ימים",
        "keep_pause": "להמשיך את ההשהיה עד {date}",
        "disclosure": "בסימון ערוץ אתם מסכימים לקבל בו הודעות שיווקיות (מבצעים ועדכונים). "
                      "תדירות ההודעות משתנה; ייתכנו עלויות הודעה רגילות. אפשר לשנות זאת כאן בכל עת, "
                      "או להשיב הסר לכל הודעת SMS או WhatsApp.",
        "save": "שמירה",
        "saved_title": "נשמר",
        "saved_body": "ההעדפות שלך נשמרו. ייתכן שיעבור רגע עד שכל ההודעות יתאימו להן.",
        "back": "חזרה להעדפות",
    },
    "nl": {
        "title": "Je berichtvoorkeuren",
        "intro": "Kies welke aanbiedingen en nieuws je van ons ontvangt, en waar.",
        "marketing_legend": "Aanbiedingen en nieuws",
        "marketing_hint": "Berichten over je bestelling (verzending, bezorging) sturen we altijd; "
                          "deze keuzes gaan alleen over marketing.",
        "sms": "Sms", "whatsapp": "WhatsApp", "email": "E-mail",
        "marketing_label": "{channel} naar {contact}",
        "no_channels": "We kunnen je via geen enkel kanaal bereiken.",
        "preferred": "Voorkeurskanaal", "no_preference": "Geen voorkeur",
        "language": "Taal",
        "pause": "Marketing pauzeren", "no_pause": "Niet pauzeren", "pause_days": "{n} dagen",
        "keep_pause": "Pauze houden tot {date}",
        "disclosure": "Door een kanaal aan te vinken ga je akkoord met marketingberichten (aanbiedingen en nieuws) "
                      "via dat kanaal. Het aantal berichten varieert; standaardtarieven kunnen gelden. Je kunt dit "
                      "hier altijd wijzigen, of STOP antwoorden op een sms- of WhatsApp-bericht.",
        "save": "Opslaan",
        "saved_title": "Opgeslagen",
        "saved_body": "Je voorkeuren zijn opgeslagen. Het kan even duren voordat alle berichten ze volgen.",
        "back": "Terug naar je voorkeuren",
    },
    "pl": {
        "title": "Twoje preferencje wiadomości",
        "intro": "Wybierz, jakie oferty i nowości od nas otrzymujesz i gdzie.",
        "marketing_legend": "Oferty i nowości",
        "marketing_hint": "Informacje o zamówieniu (wysyłka, doręczenie) wysyłamy zawsze; "
                          "te wybory dotyczą tylko marketingu.",
        "sms": "SMS", "whatsapp": "WhatsApp", "email": "E-mail",
        "marketing_label": "{channel} na {contact}",
        "no_channels": "Nie mamy jak wysyłać Ci wiadomości.",
        "preferred": "Preferowany kanał", "no_preference": "Bez preferencji",
        "language": "Język",
        "pause": "Wstrzymaj marketing", "no_pause": "Bez przerwy", "pause_days": "Na {n} dni",
        "keep_pause": "Zachowaj przerwę do {date}",
        "disclosure": "Zaznaczając kanał, zgadzasz się na otrzymywanie nim wiadomości marketingowych (oferty "
                      "i nowości). Częstotliwość wiadomości jest różna; mogą obowiązywać standardowe opłaty. "
                      "Możesz to zmienić tutaj w każdej chwili lub odpowiedzieć STOP na dowolny SMS albo "
                      "wiadomość WhatsApp.",
        "save": "Zapisz",
        "saved_title": "Zapisano",
        "saved_body": "Twoje preferencje zostały zapisane. Może minąć chwila, zanim wszystkie wiadomości "
                      "będą ich przestrzegać.",
        "back": "Wróć do preferencji",
    },
    "be": {
        "title": "Вашы налады паведамленняў",
        "intro": "Выберыце, якія прапановы і навіны вы атрымліваеце ад нас і дзе.",
        "marketing_legend": "Прапановы і навіны",
        "marketing_hint": "Паведамленні пра заказ (адпраўка, дастаўка) дасылаюцца заўсёды; "
                          "гэты выбар тычыцца толькі маркетынгу.",
        "sms": "SMS", "whatsapp": "WhatsApp", "email": "E-mail",
        "marketing_label": "{channel} на {contact}",
        "no_channels": "У нас няма спосабу дасылаць вам паведамленні.",
        "preferred": "Пераважны канал", "no_preference": "Без пераваг",
        "language": "Мова",
        "pause": "Прыпыніць маркетынг", "no_pause": "Без паўзы", "pause_days": "На {n} дзён",
        "keep_pause": "Пакінуць паўзу да {date}",
        "disclosure": "Адзначаючы канал, вы згаджаецеся атрымліваць праз яго маркетынгавыя паведамленні "
                      "(прапановы і навіны). Частата паведамленняў розная; можа спаганяцца стандартная плата. "
                      "Гэта можна змяніць тут у любы час або адказаць СТОП на любое SMS ці паведамленне WhatsApp.",
        "save": "Захаваць",
        "saved_title": "Захавана",
        "saved_body": "Вашы налады захаваны. Можа прайсці хвіліна, перш чым усе паведамленні будуць ім адпавядаць.",
        "back": "Назад да налад",
    },
}

# The footer of every marketing e-mail and the unsubscribe pages (connectors/preferences/unsubscribe.py).
UNSUBSCRIBE: dict[str, dict[str, str]] = {
    "en": {
        "unsubscribe": "Unsubscribe from these e-mails", "preferences": "Your message preferences",
        "confirm_title": "Unsubscribe from offers by e-mail?",
        "confirm_body": "You will no longer get offers and news from us by e-mail. Order updates are still sent.",
        "confirm_button": "Unsubscribe",
        "done_title": "You are unsubscribed",
        "done_body": "You will get no more offers and news from us by e-mail. It can take a minute before every "
                     "message follows this.",
    },
    "he": {
        "unsubscribe": "הסרה מרשימת הדיוור", "preferences": "העדפות ההודעות שלך",
        "confirm_title": "להסיר אותך מדיוור שיווקי במייל?",
        "confirm_body": "לא תקבלו מאיתנו עוד מבצעים ועדכונים במייל. עדכוני הזמנה ימשיכו להישלח.",
        "confirm_button": "הסרה",
        "done_title": "הוסרת מרשימת הדיוור",
        "done_body": "לא תקבלו מאיתנו עוד מבצעים ועדכונים במייל. ייתכן שיעבור רגע עד שכל ההודעות יתעדכנו.",
    },
    "nl": {
        "unsubscribe": "Afmelden voor deze e-mails", "preferences": "Je berichtvoorkeuren",
        "confirm_title": "Afmelden voor aanbiedingen per e-mail?",
        "confirm_body": "Je ontvangt dan geen aanbiedingen en nieuws meer van ons per e-mail. Berichten over je "
                        "bestellingen blijven komen.",
        "confirm_button": "Afmelden",
        "done_title": "Je bent afgemeld",
        "done_body": "Je ontvangt geen aanbiedingen en nieuws meer van ons per e-mail. Het kan een minuut duren "
                     "voordat elk bericht zich daaraan houdt.",
    },
    "pl": {
        "unsubscribe": "Wypisz się z tych e-maili", "preferences": "Twoje preferencje wiadomości",
        "confirm_title": "Wypisać się z ofert e-mailem?",
        "confirm_body": "Nie będziesz już otrzymywać od nas ofert i nowości e-mailem. Informacje o zamówieniach "
                        "nadal będą wysyłane.",
        "confirm_button": "Wypisz mnie",
        "done_title": "Wypisano",
        "done_body": "Nie będziesz już otrzymywać od nas ofert i nowości e-mailem. Może minąć chwila, zanim "
                     "wszystkie wiadomości będą tego przestrzegać.",
    },
    "be": {
        "unsubscribe": "Адпісацца ад гэтых лістоў", "preferences": "Вашы налады паведамленняў",
        "confirm_title": "Адпісацца ад прапаноў па электроннай пошце?",
        "confirm_body": "Вы больш не будзеце атрымліваць ад нас прапановы і навіны па электроннай пошце. "
                        "Паведамленні пра заказы будуць дасылацца і далей.",
        "confirm_button": "Адпісацца",
        "done_title": "Вы адпісаліся",
        "done_body": "Вы больш не будзеце атрымліваць ад нас прапановы і навіны па электроннай пошце. Можа прайсці "
                     "хвіліна, перш чым усе паведамленні будуць гэтаму адпавядаць.",
    },
}

# Refusals and failures: (HTTP status, title, message).
REFUSALS: dict[str, tuple[int, str, str]] = {
    "tampered": (403, "This link is not valid",
                 "This link has been altered or is incomplete. Please use the link exactly as we sent it."),
    "expired": (410, "This link has expired",
                "For your security, preference links only work for a limited time. Please ask us for a new one."),
    "unknown": (404, "We could not find your preferences",
                "There is no customer record for this link any more."),
    "form": (400, "Something was wrong with the form",
             "Please go back to your preferences page and try again."),
    "not_one_click": (400, "This is not an unsubscribe request",
                      "Please open the unsubscribe link from our e-mail and confirm there."),
    "mismatch": (403, "This form does not belong to this link",
                 "Please open your preferences from the link we sent you and try again."),
    "unavailable": (503, "We could not save your preferences",
                    "Nothing was changed. Please try again in a minute."),
}


def channel_name(language: str, channel: Channel) -> str:
    return TEXTS[language][channel.value]
