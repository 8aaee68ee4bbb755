"""Specs for streams.sms: GSM 03.38 encoding, segmentation, cost and smart encoding.

Known answers are counted by hand from the rules (160/153 septets, 70/67 UTF-16
units, extension characters cost 2 septets, a part never ends mid-character).
"""

import unicodedata

from hypothesis import example, given, settings
from hypothesis import strategies as st

from streams.sms import (
    DEFAULT_PRICES,
    GSM7_BASIC,
    GSM7_EXTENSION,
    SMART_ENCODING,
    UCS2_PER_PART,
    SmsInfo,
    country_of,
    encoding_of,
    estimate_cost,
    segment,
    smart_encode,
)

HEBREW_DELIVERY = "המשלוח שלך יגיע היום בין 14:00-16:00. עקוב אחר החבילה: [קישור]"
HEBREW_FLASH_SALE = "מבצע בזק! 30% הנחה על כל החנות למשך 3 שעות. השתמש בקוד: FLASH30"
DUTCH_RESTOCK = (
    "Je favoriete sneakers zijn weer op voorraad! Koop ze snel voordat ze weg zijn. "
    "Winkel nu op [store link]. 🛒✨"
)
POLISH_SHIPPED = "Twoje zamówienie zostało wysłane! Dziękujemy za zakupy."
BELARUSIAN_SHIPPED = "Ваша замова адпраўлена"
ENGLISH_SHIPPED = "Your order #1234 has shipped! Track it here: https://example.com/t/abc"

# Independent oracles, so the properties do not trust the module's own counting.
EXTENSION = "\f^{}\\[~]|€"


def septets(text: str) -> int:
    return sum(2 if ch in EXTENSION else 1 for ch in text)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def units(text: str, encoding: str) -> int:
    return septets(text) if encoding == "GSM-7" else utf16_units(text)


# --- encoding -------------------------------------------------------------


def test_gsm7_basic_table_is_exactly_gsm_03_38():
    table = (
        "@£$¥èéùìòÇ\nØø\rÅå"
        "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039eÆæßÉ"  # Greek capitals
        " !\"#¤%&'()*+,-./0123456789:;<=>?"
        "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
        "¿abcdefghijklmnopqrstuvwxyzäöñüà"
    )
    assert len(table) == 127  # 128 codes minus ESC
    assert GSM7_BASIC == frozenset(table)
    assert GSM7_EXTENSION == frozenset("^{}\\[~]|€\f")


def test_every_gsm_character_alone_is_gsm7():
    for ch in GSM7_BASIC | GSM7_EXTENSION:
        assert encoding_of(ch) == "GSM-7", repr(ch)


def test_look_alikes_outside_the_table_force_ucs2():
    look_alikes = [
        "ç",  # only capital Ç is in GSM 03.38
        "\u2126",  # OHM SIGN, not GREEK CAPITAL OMEGA
        "\u0391",  # GREEK CAPITAL ALPHA looks like A but is not in the table
        "\u0410",  # CYRILLIC CAPITAL A
        "ó",
        "á",
        "`",
        "\t",
        "\x1b",  # ESC is the escape code, not a user character
        "\u00a0",
        "’",
    ]
    for ch in look_alikes:
        assert encoding_of("Hello " + ch) == "UCS-2", repr(ch)


def test_plain_english_is_gsm7_single_segment():
    info = segment(ENGLISH_SHIPPED)
    assert info == SmsInfo("GSM-7", 70, 1, 70, (ENGLISH_SHIPPED,))


def test_hebrew_text_forces_ucs2():
    assert segment(HEBREW_DELIVERY) == SmsInfo("UCS-2", 62, 1, 62, (HEBREW_DELIVERY,))
    assert segment(HEBREW_FLASH_SALE) == SmsInfo("UCS-2", 63, 1, 63, (HEBREW_FLASH_SALE,))


def test_polish_o_acute_is_not_gsm7_although_o_grave_is():
    assert encoding_of("ò") == "GSM-7"
    for ch in "ąęśćżźńłó":
        assert encoding_of(ch) == "UCS-2", ch
    assert segment(POLISH_SHIPPED) == SmsInfo("UCS-2", 55, 1, 55, (POLISH_SHIPPED,))


def test_belarusian_cyrillic_forces_ucs2_even_though_greek_capitals_are_gsm7():
    assert segment(BELARUSIAN_SHIPPED) == SmsInfo("UCS-2", 22, 1, 22, (BELARUSIAN_SHIPPED,))
    assert segment("ΔΦΓΛΩΠΨΣΘΞ") == SmsInfo("GSM-7", 10, 1, 10, ("ΔΦΓΛΩΠΨΣΘΞ",))


def test_dutch_text_with_emoji_is_ucs2_and_splits_into_two_parts():
    info = segment(DUTCH_RESTOCK)
    assert info.encoding == "UCS-2"
    assert info.chars == 108  # code points
    assert info.units == 109  # 🛒 is a surrogate pair, ✨ is in the BMP
    assert info.parts == (
        "Je favoriete sneakers zijn weer op voorraad! Koop ze snel voordat z",
        "e weg zijn. Winkel nu op [store link]. 🛒✨",
    )
    assert info.segments == 2


def test_dutch_text_without_emoji_is_gsm7_and_brackets_cost_two_septets():
    text = DUTCH_RESTOCK.removesuffix(" 🛒✨")
    assert segment(text) == SmsInfo("GSM-7", 107, 1, 105, (text,))


def test_extension_characters_cost_two_septets():
    for ch in EXTENSION:
        assert segment(ch).units == 2, repr(ch)
    assert segment("Total: 5€ {incl. tax}").units == 24


def test_extension_characters_cost_one_unit_in_ucs2():
    assert segment("€ש").units == 2


def test_crlf_counts_as_two_gsm_characters():
    assert segment("Hi\r\nBye") == SmsInfo("GSM-7", 7, 1, 7, ("Hi\r\nBye",))


def test_empty_text_is_one_empty_segment():
    assert segment("") == SmsInfo("GSM-7", 0, 1, 0, ("",))


# --- GSM-7 boundaries -----------------------------------------------------


def test_160_gsm_characters_fit_one_sms():
    assert segment("a" * 160) == SmsInfo("GSM-7", 160, 1, 160, ("a" * 160,))


def test_161_gsm_characters_need_two_parts_of_153_and_8():
    assert segment("a" * 161).parts == ("a" * 153, "a" * 8)


def test_306_gsm_characters_fill_two_parts_and_307_need_three():
    assert segment("a" * 306).segments == 2
    assert segment("a" * 307).parts == ("a" * 153, "a" * 153, "a")


def test_80_euro_signs_fit_one_sms_but_81_do_not():
    assert segment("€" * 80) == SmsInfo("GSM-7", 160, 1, 80, ("€" * 80,))
    assert segment("€" * 81).parts == ("€" * 76, "€" * 5)  # 76 x 2 = 152 septets per part


def test_euro_straddling_the_153_boundary_moves_whole_to_the_next_part():
    info = segment("a" * 152 + "€" + "a" * 10)  # the escape would be septet 153, the code 154
    assert info.units == 164
    assert info.parts == ("a" * 152, "€" + "a" * 10)


def test_euro_ending_exactly_at_septet_153_stays_in_the_first_part():
    assert segment("a" * 151 + "€" + "a" * 10).parts == ("a" * 151 + "€", "a" * 10)


def test_euro_pushing_a_text_to_161_septets_makes_it_concatenated():
    info = segment("a" * 159 + "€")
    assert info.units == 161
    assert info.parts == ("a" * 153, "a" * 6 + "€")


# --- UCS-2 boundaries -----------------------------------------------------


def test_70_ucs2_units_fit_one_sms():
    assert segment("ש" * 70) == SmsInfo("UCS-2", 70, 1, 70, ("ש" * 70,))


def test_71_ucs2_units_need_two_parts_of_67_and_4():
    assert segment("ש" * 71).parts == ("ש" * 67, "ש" * 4)


def test_emoji_at_the_67_boundary_is_not_split_so_the_part_carries_66_units():
    info = segment("ש" * 66 + "🛒" + "ש" * 5)  # 🛒 would be units 67 and 68
    assert info.units == 73
    assert info.parts == ("ש" * 66, "🛒" + "ש" * 5)


def test_emoji_ending_exactly_at_unit_67_stays_in_the_first_part():
    assert segment("ש" * 65 + "🛒" + "ש" * 5).parts == ("ש" * 65 + "🛒", "ש" * 5)


def test_35_emoji_fit_one_sms_and_36_split_33_per_part():
    assert segment("🛒" * 35).segments == 1  # 70 units
    assert segment("🛒" * 36).parts == ("🛒" * 33, "🛒" * 3)


def test_skin_tone_emoji_is_not_separated_from_its_modifier():
    assert segment("ש" * 65 + "👍🏽" + "ש" * 5).parts == ("ש" * 65, "👍🏽" + "ש" * 5)


def test_flag_is_not_split_between_its_two_regional_indicators():
    assert segment("ש" * 64 + "🇳🇱" + "ש" * 5).parts == ("ש" * 64, "🇳🇱" + "ש" * 5)


def test_family_emoji_zwj_sequence_moves_whole():
    family = "👨\u200d👩\u200d👧"  # 8 units
    assert segment("ש" * 60 + family + "ש" * 5).parts == ("ש" * 60, family + "ש" * 5)


def test_combining_accent_stays_with_its_letter():
    assert segment("ש" * 66 + "e\u0301" + "ש" * 5).parts == ("ש" * 66, "e\u0301" + "ש" * 5)


# --- cost and country -----------------------------------------------------


def test_cost_is_segments_times_the_country_price():
    table = {"NL": (50_000, "EUR"), "*": (10_000, "USD")}
    assert estimate_cost(segment(DUTCH_RESTOCK), "NL", table) == (100_000, "EUR")
    assert estimate_cost(segment(DUTCH_RESTOCK), "nl", table) == (100_000, "EUR")


def test_unknown_or_missing_country_uses_the_default_price():
    table = {"NL": (50_000, "EUR"), "*": (10_000, "USD")}
    assert estimate_cost(segment(HEBREW_DELIVERY), "IL", table) == (10_000, "USD")
    assert estimate_cost(segment("a" * 161), None, table) == (20_000, "USD")


def test_default_price_table_covers_the_shop_countries_and_a_fallback():
    assert {"US", "GB", "NL", "PL", "IL", "BY", "DE", "*"} <= set(DEFAULT_PRICES)
    for micros, currency in DEFAULT_PRICES.values():
        assert micros > 0 and currency in {"EUR", "USD"}
    assert estimate_cost(segment("hi"), "US") == DEFAULT_PRICES["US"]


def test_country_of_e164_numbers():
    assert country_of("+972501234567") == "IL"
    assert country_of("+375291234567") == "BY"
    assert country_of("+31 6 1234 5678") == "NL"
    assert country_of("+48512345678") == "PL"
    assert country_of("+4915123456789") == "DE"
    assert country_of("+16502530000") == "US"
    assert country_of("+442079460958") == "GB"


def test_country_of_unparseable_or_non_geographic_is_none():
    for raw in ["", "not a number", "0612345678", "+999123", "+80012345678"]:
        assert country_of(raw) is None, raw


# --- smart encoding -------------------------------------------------------


def test_smart_encoding_replaces_typographic_look_alikes():
    assert smart_encode("“Sale” – 50%\u00a0off… ‘today’ — «now» ‹1›") == (
        "\"Sale\" - 50% off... 'today' - \"now\" <1>"
    )


def test_smart_encoding_turns_typographic_english_into_one_gsm_segment():
    text = "We’re back! Your favourite sneakers are in stock again – grab them before they’re gone… Shop now."
    assert (segment(text).encoding, segment(text).units, segment(text).segments) == ("UCS-2", 97, 2)
    assert (segment(smart_encode(text)).encoding, segment(smart_encode(text)).units) == ("GSM-7", 99)
    assert segment(smart_encode(text)).segments == 1


def test_smart_encoding_never_touches_letters():
    assert smart_encode(BELARUSIAN_SHIPPED) == BELARUSIAN_SHIPPED
    assert smart_encode(POLISH_SHIPPED) == POLISH_SHIPPED
    assert smart_encode(HEBREW_FLASH_SALE) == HEBREW_FLASH_SALE
    assert smart_encode("„Dziękujemy”") == '"Dziękujemy"'  # quotes yes, ę no


def test_smart_encoding_map_only_turns_non_gsm_into_gsm():
    gsm = GSM7_BASIC | GSM7_EXTENSION
    for source, target in SMART_ENCODING.items():
        assert source not in gsm, repr(source)
        assert all(ch in gsm for ch in target), repr(target)


# --- properties -----------------------------------------------------------

GSM_TEXT = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=400)
EXT_HEAVY_TEXT = st.text(alphabet=["a", " ", "€", "[", "]", "\f"], max_size=400)
PIECES = ["a", " ", "€", "ש", "Ж", "ó", "🛒", "✨", "👍🏽", "🏽", "🇳🇱", "🇵", "❤️", "\u200d", "\u0301", "\r\n", "👨\u200d👩\u200d👧"]
MIXED_TEXT = st.lists(st.sampled_from(PIECES), max_size=250).map("".join)
ANY_TEXT = st.one_of(st.text(max_size=400), GSM_TEXT, EXT_HEAVY_TEXT, MIXED_TEXT)


@given(ANY_TEXT)
def test_parts_join_back_to_the_text(text):
    assert "".join(segment(text).parts) == text


@given(ANY_TEXT)
def test_every_part_fits_its_segment(text):
    info = segment(text)
    single, per_part = (160, 153) if info.encoding == "GSM-7" else (70, 67)
    assert info.segments == len(info.parts)
    assert info.units == units(text, info.encoding)
    assert info.chars == len(text)
    if info.segments == 1:
        assert info.units <= single
    else:
        assert info.units > single
        assert all(0 < units(part, info.encoding) <= per_part for part in info.parts)


@given(GSM_TEXT)
def test_gsm7_text_of_at_most_160_septets_is_one_segment(text):
    info = segment(text)
    assert info.encoding == "GSM-7"
    assert (info.segments == 1) == (septets(text) <= 160)


@given(st.one_of(GSM_TEXT, EXT_HEAVY_TEXT))
def test_gsm7_parts_are_filled_as_far_as_the_next_character_allows(text):
    parts = segment(text).parts
    for part, following in zip(parts, parts[1:]):
        assert septets(part) + septets(following[0]) > 153


@given(ANY_TEXT, st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from(PIECES)))
def test_appending_a_character_never_reduces_segments(text, extra):
    assert segment(text + extra).segments >= segment(text).segments


@given(ANY_TEXT)
def test_smart_encoding_is_idempotent(text):
    once = smart_encode(text)
    assert smart_encode(once) == once


@given(GSM_TEXT)
def test_smart_encoding_never_changes_gsm7_text(text):
    assert smart_encode(text) == text


# --- the fast path equals the character-by-character reference (issue #12) -------------------
#
# streams.sms counts with regexes, str.encode and slices.  What follows is the module as it was
# before, walking the text one character at a time: it is the definition, and the fast code must
# give the very same SmsInfo, encoding and smart-encoded text for every input.

_REFERENCE_GSM7 = GSM7_BASIC | GSM7_EXTENSION


def _reference_encoding_of(text: str) -> str:
    return "GSM-7" if all(ch in _REFERENCE_GSM7 for ch in text) else "UCS-2"


def _reference_septets(piece: str) -> int:
    return sum(2 if ch in GSM7_EXTENSION else 1 for ch in piece)


def _reference_utf16_units(piece: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in piece)


def _reference_is_extend(ch: str) -> bool:
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or cp in (0x200C, 0x200D)
        or 0xE0020 <= cp <= 0xE007F
    )


def _reference_is_control(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category in ("Cc", "Zl", "Zp", "Cs") or (category == "Cf" and not _reference_is_extend(ch))


def _reference_is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _reference_is_skin_tone(ch: str) -> bool:
    return 0x1F3FB <= ord(ch) <= 0x1F3FF


def _reference_is_pictograph(ch: str) -> bool:
    cp = ord(ch)
    return 0x2600 <= cp <= 0x27BF or 0x1F000 <= cp <= 0x1FAFF


def _reference_joins(cluster: str, ch: str) -> bool:
    last = cluster[-1]
    if _reference_is_control(last) or _reference_is_control(ch):
        return False
    if _reference_is_skin_tone(ch):
        return _reference_is_pictograph(last) and not _reference_is_skin_tone(last)
    if _reference_is_extend(ch):
        return True
    if _reference_is_regional_indicator(ch):
        return len(cluster) == 1 and _reference_is_regional_indicator(last)
    return last == "\u200d" and _reference_is_pictograph(ch)


def _reference_clusters(text: str) -> list[str]:
    clusters: list[str] = []
    for ch in text:
        if clusters and _reference_joins(clusters[-1], ch):
            clusters[-1] += ch
        else:
            clusters.append(ch)
    pieces: list[str] = []
    for cluster in clusters:
        fits = _reference_utf16_units(cluster) <= 67
        pieces.extend([cluster] if fits else list(cluster))
    return pieces


def _reference_segment(text: str) -> SmsInfo:
    encoding = _reference_encoding_of(text)
    if encoding == "GSM-7":
        pieces, size, single, per_part = list(text), _reference_septets, 160, 153
    else:
        pieces, size, single, per_part = _reference_clusters(text), _reference_utf16_units, 70, 67
    units = sum(size(piece) for piece in pieces)
    if units <= single:
        parts = [text]
    else:
        parts, used = [""], 0
        for piece in pieces:
            if used + size(piece) > per_part:
                parts.append("")
                used = 0
            parts[-1] += piece
            used += size(piece)
    return SmsInfo(encoding, units, len(parts), len(text), tuple(parts))


def _reference_smart_encode(text: str) -> str:
    return "".join(SMART_ENCODING.get(ch, ch) for ch in text)


# Alphabets of the texts the shops send, and of the characters that make segmentation hard.
_GSM_BASIC = sorted(GSM7_BASIC)
_GSM_EXTENSION = sorted(GSM7_EXTENSION)
_HEBREW = [chr(cp) for cp in range(0x05D0, 0x05EB)] + list(" ,.!?:-\"'0123456789") + ["\u05be", "\u05f3", "\u05f4"]
_NIQQUD = [chr(cp) for cp in range(0x05B0, 0x05C8)]  # vowel points and cantillation: combining marks
_POLISH = list("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ") + list("abcdefghijklmnoprstuwyzABCDEFGHIJKLMNOPRSTUWYZ .,!?")
_BELARUSIAN = (list("абвгдеёжзійклмнопрстуўфхцчшыьэюяАБВГДЕЁЖЗІЙКЛМНОПРСТУЎФХЦЧШЫЬЭЮЯ")
               + ["\u02bc", "'", "’", "«", "»", "—", " ", ",", ".", "№"])
_EMOJI = ["🛒", "✨", "🎉", "❤", "\ufe0f", "👍", "🏻", "🏽", "🏿", "\u200d", "\u200c", "👨", "👩", "👧", "🇳", "🇱",
          "🇵", "🇮", "🏴", "\U000e0067", "\U000e0062", "\U000e007f", "😀", "🤌", "🫶", "\u20e3", "#", "1"]
_LOOK_ALIKES = sorted(SMART_ENCODING) + ["ç", "\u2126", "\u0391", "\u0410", "á", "\x1b", "\u0301", "\u0308", "Ω"]
_AWKWARD = ["\r", "\n", "\t", "\x00", "\ud83d", "\ude00", "\udfff", "\u2028", "\u0488", "\u0903", "\U00020000",
            "\U0010fffd", "\uffff", "\U00010000", "\U000e0100", "\u20dd", "\u0bbe"]
# Whole clusters (and would-be clusters) to put right at a cut: marks of each kind (Mn, Mc, Me),
# variation selectors in both planes, skin tones, flags, tag sequences, ZWJ sequences, keycaps.
CLUSTERS = ["e\u0301", "ש\u05b8\u05bc", "\u0915\u0903", "\u0b95\u0bbe", "\u0430\u0488", "1\u20dd", "❤\ufe0f",
            "\u845b\U000e0100", "👍🏽", "🏽", "👍🏽🏽", "🇳🇱", "🇳🇱🇵", "🇳\u0301🇱", "🏴\U000e0067\U000e0062\U000e007f",
            "👨\u200d👩\u200d👧", "a\u200d🛒", "\u200d", "\u200c", "1\ufe0f\u20e3", "\r\n", "\r\u0301", "\ud83d", "🛒",
            "€", "[]", "\x1b"]

ALPHABETS = {
    "gsm7 basic": _GSM_BASIC,
    "gsm7 extension": _GSM_EXTENSION + ["a", " "],
    "hebrew": _HEBREW,
    "hebrew with niqqud": _HEBREW + _NIQQUD,
    "polish": _POLISH,
    "belarusian": _BELARUSIAN,
    "emoji": _EMOJI + ["a", " ", "ש"],
    "look-alikes": _LOOK_ALIKES + ["a", " "],
}
_ALL = sorted({ch for alphabet in ALPHABETS.values() for ch in alphabet} | set(_AWKWARD))

ONE_LANGUAGE = st.one_of([st.text(alphabet=alphabet, max_size=500) for alphabet in ALPHABETS.values()])
# Mixtures: runs of one alphabet after another (a Hebrew text with an English link and an emoji...).
MIXTURE = st.lists(st.one_of([st.text(alphabet=alphabet, max_size=60) for alphabet in ALPHABETS.values()]),
                   max_size=12).map("".join)
SCATTERED = st.text(alphabet=_ALL, max_size=500)
ANYTHING = st.text(st.characters(codec=None), max_size=400)  # every code point, lone surrogates included
# Stacks and runs longer than a part: a cluster too long for one part is split between code points.
PATHOLOGICAL = st.lists(st.sampled_from(["e" + "\u0301" * 70, "ש" + "\u05b8" * 40, "🇳" * 75, "👍" + "🏽" * 40,
                                         "👨\u200d" * 30, "\u200d" * 80, "❤\ufe0f" * 40, "ש"]),
                        max_size=6).map("".join)


@st.composite
def near_boundaries(draw) -> str:
    """A text whose size is around 1-4 parts' worth, with awkward characters put right at the cut."""
    gsm = draw(st.booleans())
    filler = draw(st.sampled_from(["a", " €"] if gsm else ["ש", "ж", "ó", "a"]))
    single, per_part = (160, 153) if gsm else (70, 67)
    size = draw(st.sampled_from([single, per_part, 2 * per_part, 3 * per_part, 4 * per_part]))
    size += draw(st.integers(-3, 3))
    text = list((filler * size)[:max(size, 0)])
    spice = _GSM_EXTENSION if gsm else _ALL + CLUSTERS
    for _ in range(draw(st.integers(0, 6))):
        cut = draw(st.sampled_from([single, per_part, 2 * per_part, 3 * per_part]))
        at = min(max(cut + draw(st.integers(-4, 2)), 0), len(text))
        text.insert(at, draw(st.sampled_from(spice)))
    return "".join(text)


ANY_SMS = st.one_of(ONE_LANGUAGE, MIXTURE, SCATTERED, near_boundaries(), PATHOLOGICAL, ANYTHING)


def assert_like_reference(text: str) -> None:
    assert segment(text) == _reference_segment(text)
    assert encoding_of(text) == _reference_encoding_of(text)
    assert smart_encode(text) == _reference_smart_encode(text)


@settings(max_examples=500)
@given(ANY_SMS)
@example("")
@example("a" * 160)
@example("a" * 152 + "€" + "a" * 10)
@example("ש" * 66 + "🛒" + "ש" * 5)
@example("ש" * 65 + "👍🏽" + "ש" * 5)
@example("ש" * 64 + "🇳🇱🇵" + "ש" * 5)
@example("🇳" * 140)
@example("ש" * 66 + "e" + "\u0301" * 80)
@example("ש" * 60 + "👨\u200d👩\u200d👧" + "ש" * 5)
@example("\u0301" * 71)
@example("ש" * 70 + "\ud83d\ude00")
def test_fast_segment_encoding_and_smart_encoding_equal_the_reference(text):
    assert_like_reference(text)


def test_every_cluster_at_every_offset_around_a_cut_segments_like_the_reference():
    for cluster in CLUSTERS + ["🛒🛒", "e" + "\u0301" * 70]:
        for filler, cuts in (("ש", (67, 134)), ("a", (153, 306))):
            for cut in cuts:
                for before in range(cut - 8, cut + 3):
                    assert_like_reference(filler * before + cluster + filler * 90)


@settings(max_examples=300)
@given(near_boundaries())
def test_fast_segment_equals_the_reference_around_part_boundaries(text):
    assert_like_reference(text)


CLUSTERED = st.lists(st.sampled_from(PIECES + _EMOJI + _NIQQUD + CLUSTERS + ["ש", "ж"]), min_size=60, max_size=300)


@settings(max_examples=150)
@given(CLUSTERED.map("".join))
def test_fast_segment_equals_the_reference_on_emoji_and_marks_across_cuts(text):
    assert_like_reference(text)


@given(st.sampled_from(sorted(ALPHABETS)), st.data())
def test_smart_encoded_text_segments_like_the_reference(name, data):
    text = smart_encode(data.draw(st.text(alphabet=ALPHABETS[name] + _LOOK_ALIKES, max_size=400)))
    assert segment(text) == _reference_segment(text)


def test_a_cached_result_is_the_result_for_an_equal_text():
    text = "Twoje zamówienie zostało wysłane! " * 4
    first = segment(text)
    assert segment("".join(list(text))) is first  # another str object, equal: the cache answers
    assert first == _reference_segment(text)


def test_no_piece_is_longer_than_a_part_in_the_reference_either():
    # The fast cut relies on this: the greedy reference never leaves a part empty.
    assert all(len(piece.encode("utf-16-le", "surrogatepass")) // 2 <= UCS2_PER_PART
               for piece in _reference_clusters("e" + "\u0301" * 80 + "🇳" * 3))
