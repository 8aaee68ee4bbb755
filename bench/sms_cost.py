"""What an SMS body costs to decide on (issue #12): ``.venv/bin/python -m bench.sms_cost``.

Times ``streams.sms`` on a mix of shop texts of 50–400 characters cut from the seed articles
(Hebrew, Polish, Belarusian) and English ones, plain or with typographic quotes and dashes as a CMS
writes them; one body in five ends with an emoji, as some templates do. It compares three versions:
the character-by-character reference kept in tests/unit/test_sms.py (what ``segment`` was before),
the fast code with its caches cleared before every pass (every text is new), and the fast code with
its caches warm (the same texts again, as a campaign sends one text to many customers).

"Per SMS command" is what ``streams.policy`` does for each SMS: smart-encode the body if the store
allows it and that makes it GSM-7, segment it, find the number's country and price the segments.

Prints a table; asserts nothing, and is not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import time
import timeit
from collections.abc import Callable

from streams import sms

# Cut from /work/shared/seeds (Hebrew 000, Polish 001, Belarusian 003); the English one is written
# in the same vein.
HEBREW = (
    "בעידן הדיגיטלי, תקשורת יעילה עם לקוחות היא המפתח להצלחה בעולם ה-e-commerce. שני ערוצים מובילים "
    "בתחום הם SMS ו-WhatsApp. הבה נעמיק בהשוואה ביניהם ונבחן כיצד כל אחד מהם יכול לתרום לעסקי e-commerce. "
    "נגישות רחבה: כמעט כל טלפון נייד יכול לקבל SMS, ללא תלות בחכמת המכשיר או בגרסת מערכת ההפעלה. "
    "קריאה מיידית: מחקרים מראים כי 90% מהודעות ה-SMS נקראות תוך 3 דקות מקבלתן. פשטות: אין צורך באפליקציה "
    "נוספת או בחיבור לאינטרנט, מה שהופך אותו לאידיאלי לקהלים מבוגרים או פחות טכנולוגיים. "
    "המשלוח שלך יגיע היום בין 14:00-16:00. עקוב אחר החבילה: [קישור] מבצע בזק! 30% הנחה על כל החנות "
    "למשך 3 שעות. השתמש בקוד: FLASH30 הסל שלך מחכה לך! השלם את הרכישה עכשיו וקבל משלוח חינם: [קישור]"
)
POLISH = (
    "Wiadomości SMS-owe przestają być odbierane jako nachalny sposób na komunikację marki z klientem. "
    "SMS w e-commerce znowu zyskuje na popularności, ponieważ dobrze zintegrowany system ich wysyłki może "
    "stanowić skuteczny element w strategii sprzedażowej sklepu internetowego. Jeszcze do niedawna "
    "standardowe wiadomości SMS były uznawane przez większość marketerów za przestarzały sposób komunikacji "
    "z klientem. Nic bardziej mylnego. Daje to między innymi możliwość poinformowania klienta o statusie "
    "zamówienia w e-sklepie lub informacji o promocjach wynikających z dokonanego zakupu. Klient dowie się o "
    "zamówieniu lub zasadach reklamacji w ciągu kilku sekund, do czego nie potrzebuje połączenia z internetem."
)
BELARUSIAN = (
    "Эфектыўнасць SMS-маркетынгу значна павышаецца, калі выкарыстоўваецца сегментацыя кліенцкай базы. "
    "Замест таго, каб адпраўляць адно і тое ж паведамленне ўсім падпісчыкам, электронная камерцыя можа "
    "дзяліць сваю аўдыторыю на групы на аснове розных крытэрыяў. Гэтыя крытэрыі могуць уключаць гісторыю "
    "пакупак, частату візітаў на сайт, геаграфічнае размяшчэнне, узрост, пол і нават пакінутыя кошыкі. "
    "Напрыклад, кліентам, якія куплялі электроніку, можна дасылаць інфармацыю пра новыя гаджэты, а тым, хто "
    "набываў адзенне, — пра новыя калекцыі. Такі падыход дазваляе ствараць персаналізаваныя і рэлевантныя "
    "паведамленні, якія значна больш верагодна прывядуць да пакупкі."
)
ENGLISH = (  # plain: GSM-7, some of it with extension characters ({ } [ ] €)
    "Hi Sam, your order #48213 is on its way! Track it here: https://shop.example.com/t/8f2k1. "
    "Good news: your favourite sneakers are back in stock. Grab them before they are gone! "
    "Flash sale: 30% off everything for 3 hours, use code FLASH30 at checkout. "
    "You left something in your cart. Finish your order and get free delivery: https://shop.example.com/c/91x. "
    "Thank you for your order! We will send you a message as soon as it ships. Reply STOP to opt out. "
    "Your VIP coupon is waiting: 15€ off orders over 50€ [valid until Sunday]. "
    "Questions? Call us on +44 20 7946 0958, Monday to Friday 9:00-17:00."
)
ENGLISH_TYPOGRAPHIC = (  # as a CMS writes it: UCS-2 unless smart encoding turns ’ “ ” – … into GSM-7
    "We’re back! Your favourite sneakers are in stock again – grab them before they’re gone… "
    "Your “VIP” coupon is waiting: 15 EUR off orders over 50 EUR – valid until Sunday. "
    "Thank you for your order! We’ll send you a message as soon as it ships – reply STOP to opt out. "
    "You’ve left something in your cart… finish your order today and we’ll deliver it for free. "
    "Questions? We’re here Monday–Friday, 9:00–17:00: just reply to this message."
)
PHONES = {"he": "+97250{:07d}", "pl": "+48512{:06d}", "be": "+37529{:07d}", "en": "+4477009{:05d}",
          "en’": "+1650253{:04d}"}
EMOJI_TAILS = [" 🛒✨", " 🎉", " ❤️", " 👍🏽", " 🇵🇱"]


def corpus(count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` distinct (body, phone) pairs: 50–400 characters from a word boundary of one text."""
    rng = random.Random(seed)
    sources = {"he": HEBREW, "pl": POLISH, "be": BELARUSIAN, "en": ENGLISH, "en’": ENGLISH_TYPOGRAPHIC}
    bodies: dict[str, str] = {}
    while len(bodies) < count:
        language = rng.choice(list(sources))
        words = sources[language].split(" ")
        first = rng.randrange(len(words))
        length = rng.randint(50, 400)
        body = " ".join(words[first:] + words[:first])[:length].rstrip()
        if rng.random() < 0.2:
            body = body[: length - 4].rstrip() + rng.choice(EMOJI_TAILS)
        bodies.setdefault(body, PHONES[language].format(rng.randrange(10**4)))
    return list(bodies.items())


def per_call_us(run: Callable[[], object], calls: int, repeat: int, before: Callable[[], object] = lambda: None
                ) -> float:
    """Best of ``repeat`` passes, in microseconds per call; ``before`` runs untimed before each pass."""
    best = float("inf")
    for _ in range(repeat):
        before()
        best = min(best, timeit.timeit(run, number=1))
    return best / calls * 1e6


def clear_caches() -> None:
    sms.segment.cache_clear()
    sms.country_of.cache_clear()


def commands(pairs: list[tuple[str, str]], smart: bool, segment, country_of, smart_encode, encoding_of) -> None:
    """streams.policy's SMS steps (decide, _sms_info, _cost) for every (body, phone), with these functions."""
    for body, phone in pairs:
        if smart and encoding_of(smart_encode(body)) == "GSM-7":
            body = smart_encode(body)
        sms.estimate_cost(segment(body), country_of(phone) or "NL")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sms_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=600, help="distinct bodies in the mix (at most 1024, the cache)")
    parser.add_argument("--repeat", type=int, default=5, help="passes over the mix; the best is reported")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args(argv)
    if not 0 < args.texts <= 1024:
        parser.error("--texts must be between 1 and 1024 (the segment cache's size), or warm would mean cold")
    try:
        from tests.unit.test_sms import (
            _reference_encoding_of,
            _reference_segment,
            _reference_smart_encode,
        )
    except ImportError as exc:  # the tests need hypothesis: pip install -e ".[test]"
        sys.exit(f"the reference lives in tests/unit/test_sms.py and could not be imported: {exc}")

    pairs = corpus(args.texts, args.seed)
    mismatches = [body for body, _ in pairs if sms.segment(body) != _reference_segment(body)]
    if mismatches:
        sys.exit(f"the fast segment differs from the reference on {len(mismatches)} bodies, e.g. {mismatches[0]!r}")

    started = time.perf_counter()
    sms._bmp_may_join.cache_clear()
    sms._bmp_may_join()
    table_ms = (time.perf_counter() - started) * 1e3

    def path(info: sms.SmsInfo, body: str) -> str:
        joins = info.encoding == "UCS-2" and info.segments > 1 and bool(sms._may_join(body, astral=True))
        return f"{info.encoding}, {'1 part' if info.segments == 1 else '2+ parts'}" + (", emoji/marks" if joins else "")

    groups: dict[str, list[str]] = {}
    for body, _ in pairs:
        groups.setdefault(path(_reference_segment(body), body), []).append(body)
    groups["all (the mix)"] = [body for body, _ in pairs]

    uncached = sms.segment.__wrapped__
    print(f"segment(): µs per call, best of {args.repeat} passes over {len(pairs)} distinct bodies "
          f"of 50–400 characters (he/pl/be/en, 1 in 5 with an emoji)\n")
    header = f"{'path':<32}{'bodies':>7}{'chars':>7}{'reference':>11}{'fast':>9}{'cached':>9}{'ref/fast':>10}"
    print(header)
    print("-" * len(header))
    for name, bodies in sorted(groups.items(), key=lambda item: (item[0].startswith("all"), item[0])):
        n = len(bodies)
        reference = per_call_us(lambda: [_reference_segment(b) for b in bodies], n, args.repeat)
        fast = per_call_us(lambda: [uncached(b) for b in bodies], n, args.repeat)
        for b in bodies:
            sms.segment(b)
        cached = per_call_us(lambda: [sms.segment(b) for b in bodies], n, args.repeat)
        chars = sum(map(len, bodies)) // n
        speed_up = f"{reference / fast:.0f}x"
        print(f"{name:<32}{n:>7}{chars:>7}{reference:>11.1f}{fast:>9.1f}{cached:>9.2f}{speed_up:>10}")

    bodies = [body for body, _ in pairs]
    phones = [phone for _, phone in pairs]
    n = len(pairs)
    print("\nthe rest of an SMS command, µs per call over the mix (fast: caches cleared before each pass)\n")
    header = f"{'step':<40}{'reference':>11}{'fast':>9}{'cached':>9}"
    print(header)
    print("-" * len(header))
    rows = [  # (step, the reference, the fast code, whether it has a cache)
        ("encoding_of", lambda: [_reference_encoding_of(b) for b in bodies],
         lambda: [sms.encoding_of(b) for b in bodies], False),
        ("smart_encode", lambda: [_reference_smart_encode(b) for b in bodies],
         lambda: [sms.smart_encode(b) for b in bodies], False),
        ("country_of (phonenumbers)", lambda: [sms.country_of.__wrapped__(p) for p in phones],
         lambda: [sms.country_of(p) for p in phones], True),
    ]
    for smart in (False, True):
        rows.append((
            f"per SMS command, smart encoding {'on' if smart else 'off'}",
            functools.partial(commands, pairs, smart, _reference_segment, sms.country_of.__wrapped__,
                              _reference_smart_encode, _reference_encoding_of),
            functools.partial(commands, pairs, smart, sms.segment, sms.country_of, sms.smart_encode,
                              sms.encoding_of),
            True,
        ))
    for step, reference_run, fast_run, cached_too in rows:
        reference = per_call_us(reference_run, n, args.repeat)
        fast = per_call_us(fast_run, n, args.repeat, before=clear_caches)
        cached = f"{per_call_us(fast_run, n, args.repeat):9.2f}" if cached_too else f"{'-':>9}"
        print(f"{step:<40}{reference:>11.1f}{fast:>9.1f}{cached}")
    print(f"\none-off: the table of characters that may join a grapheme cluster, built on the first "
          f"multi-part UCS-2 text: {table_ms:.0f} ms")

if __name__ == "__main__":
    main()
