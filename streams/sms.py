"""SMS encoding, segmentation and cost estimation (pure: no Kafka, no faust).

Rules (GSM 03.38 / 3GPP TS 23.038 alphabet, 3GPP TS 23.040 concatenation),
written to agree with Twilio's segment calculator
(github.com/TwilioDevEd/message-segment-calculator):

* A text is GSM-7 when every character is in the GSM 03.38 default alphabet
  (1 septet) or its extension table (``^ { } \\ [ ~ ] | €`` and form feed,
  sent as ESC + code = 2 septets).  ESC itself is not a user character.
  Anything else (Hebrew, Cyrillic, ``ó ą ł``, lower-case ``ç``, emoji...)
  makes the *whole* text UCS-2, counted in UTF-16 code units.
* One SMS carries 140 octets: 160 septets or 70 UCS-2 units.  Longer texts
  are concatenated and each part loses 6 octets to the User Data Header:
  153 septets or 67 units per part.
* Parts are filled greedily and a part never ends mid-character: an
  extension character that would straddle the 153 boundary moves whole to
  the next part, and so does a surrogate pair (that part carries 66 units).
  Like Twilio, UCS-2 parts also keep grapheme clusters whole (emoji with a
  skin tone or variation selector, flags, ZWJ families, letters with
  combining accents).  ``_clusters`` approximates Unicode's cluster rules;
  Hangul jamo, prepended marks and emoji newer than Unicode 10 in ZWJ or
  skin-tone sequences may split differently than in Twilio's calculator.  A
  cluster too long for one part (only pathological stacks of combining
  marks) is split between code points instead.
* CR LF is two GSM characters (2 septets), as in the calculator's current
  source; its npm release 1.2.0 still wrongly makes any CR LF text UCS-2.
* The empty text is 1 segment of 0 units, as in Twilio's calculator
  (Twilio's API refuses a text-only message with an empty body anyway).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import phonenumbers

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet in code order 0x00-0x7F; 0x1B is ESC, not a character.
_GSM7_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # Greek capitals U+0393..U+03A9, not Latin look-alikes
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM7_BASIC = frozenset(_GSM7_TABLE) - {"\x1b"}
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
GSM7 = GSM7_BASIC | GSM7_EXTENSION

GSM7_SINGLE, GSM7_PER_PART = 160, 153  # septets
UCS2_SINGLE, UCS2_PER_PART = 70, 67  # UTF-16 code units


@dataclass(frozen=True)
class SmsInfo:
    encoding: Encoding
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    chars: int  # code points
    parts: tuple[str, ...]


def encoding_of(text: str) -> Encoding:
    """GSM-7 if every character is in the default or extension table, else UCS-2."""
    return "GSM-7" if all(ch in GSM7 for ch in text) else "UCS-2"


def _septets(piece: str) -> int:
    return sum(2 if ch in GSM7_EXTENSION else 1 for ch in piece)


def _utf16_units(piece: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in piece)


def _is_extend(ch: str) -> bool:
    cp = ord(ch)
    return (
        unicodedata.category(ch) in ("Mn", "Me", "Mc")  # combining marks, VS16
        or cp in (0x200C, 0x200D)  # ZWNJ, ZWJ
        or 0xE0020 <= cp <= 0xE007F  # emoji tag sequences
    )


def _is_control(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category in ("Cc", "Zl", "Zp", "Cs") or (category == "Cf" and not _is_extend(ch))


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _is_skin_tone(ch: str) -> bool:
    return 0x1F3FB <= ord(ch) <= 0x1F3FF


def _is_pictograph(ch: str) -> bool:
    cp = ord(ch)
    return 0x2600 <= cp <= 0x27BF or 0x1F000 <= cp <= 0x1FAFF


def _joins(cluster: str, ch: str) -> bool:
    last = cluster[-1]
    if _is_control(last) or _is_control(ch):  # includes CR and LF: CRLF is 2 clusters
        return False
    if _is_skin_tone(ch):  # modifies the emoji right before it, nothing else
        return _is_pictograph(last) and not _is_skin_tone(last)
    if _is_extend(ch):
        return True
    if _is_regional_indicator(ch):  # flags are pairs of regional indicators
        return len(cluster) == 1 and _is_regional_indicator(last)
    return last == "\u200d" and _is_pictograph(ch)


def _clusters(text: str) -> list[str]:
    clusters: list[str] = []
    for ch in text:
        if clusters and _joins(clusters[-1], ch):
            clusters[-1] += ch
        else:
            clusters.append(ch)
    pieces: list[str] = []
    for cluster in clusters:
        fits = _utf16_units(cluster) <= UCS2_PER_PART
        pieces.extend([cluster] if fits else list(cluster))
    return pieces


def segment(text: str) -> SmsInfo:
    """Encoding, size and the actual parts the text is sent as."""
    encoding = encoding_of(text)
    if encoding == "GSM-7":  # GSM characters never combine: each is its own piece
        pieces, size, single, per_part = list(text), _septets, GSM7_SINGLE, GSM7_PER_PART
    else:
        pieces, size, single, per_part = _clusters(text), _utf16_units, UCS2_SINGLE, UCS2_PER_PART
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


# Illustrative list prices per outbound segment, in micros of the currency,
# roughly in line with public CPaaS price lists; not a quote.  Pass your
# contract's table to estimate_cost to override.  "*" is the fallback.
DEFAULT_PRICES: Mapping[str, tuple[int, str]] = {
    "US": (8_300, "USD"),
    "GB": (40_000, "EUR"),
    "NL": (90_000, "EUR"),
    "DE": (80_000, "EUR"),
    "PL": (35_000, "EUR"),
    "IL": (150_000, "USD"),
    "BY": (120_000, "USD"),
    "*": (60_000, "USD"),
}


def estimate_cost(
    info: SmsInfo, country_code: str | None, price_table: Mapping[str, tuple[int, str]] = DEFAULT_PRICES
) -> tuple[int, str]:
    """(cost in micros, currency) = segments x per-segment price of the country, else of "*"."""
    per_segment, currency = price_table.get((country_code or "").upper()) or price_table["*"]
    return info.segments * per_segment, currency


def country_of(phone_e164: str) -> str | None:
    """ISO region ("NL", "IL", ...) of an E.164 number, None if unparseable or non-geographic.

    A number libphonenumber cannot place within a shared calling code (+1, +44,
    +7...) gets the code's main region, which is what carriers price by.
    """
    try:
        number = phonenumbers.parse(phone_e164, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
        number.country_code
    )
    return None if region in ("ZZ", "001") else region


# Typographic look-alikes -> GSM-7, after Twilio's Smart Encoding (where the
# calculator's map swaps ‹ ›, or turns a no-break space into two spaces and a
# tab into seven, we keep the plain look-alike).  Keys are never GSM-7 and
# values always are, so smart_encode leaves GSM-7 text alone and is idempotent.
# Letters (ó, ą, ç, Cyrillic) are never changed.
SMART_ENCODING: Mapping[str, str] = {
    **dict.fromkeys("‘’‛′`´", "'"),
    **dict.fromkeys("“”„‟″«»", '"'),
    "‚": ",", "‹": "<", "›": ">",
    **dict.fromkeys("‐‑‒–—―−•", "-"),
    "…": "...", "‼": "!!", "÷": "/", "ˆ": "^", "˜": "~",
    **dict.fromkeys("\t\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
                    "\u202f\u205f\u3000\u2028\u2029", " "),
    **dict.fromkeys("\u200b\u2060\ufeff\u00ad", ""),  # invisible: zero-width, BOM, soft hyphen
    # Fullwidth ASCII (！ ＄ Ａ ...), where the ASCII character is GSM-7.
    **{chr(cp + 0xFEE0): chr(cp) for cp in range(0x21, 0x7F) if chr(cp) in GSM7},
}


def smart_encode(text: str) -> str:
    """Replace typographic look-alikes by GSM-7 characters; only for stores that allow it."""
    return "".join(SMART_ENCODING.get(ch, ch) for ch in text)
