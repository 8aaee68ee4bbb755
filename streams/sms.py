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

Cost (issue #12): nothing here walks a text character by character in Python.
Compiled regexes decide the encoding and count extension characters, UTF-16
units come from ``str.encode``, parts are cut by arithmetic (a slice of 153 or
67 characters, shortened by its few double-width characters), and grapheme
clusters are worked out only around a cut that could fall inside one.
``segment`` keeps the last results in an LRU cache: a campaign sends one text
to many customers.  The character-by-character rules above remain the
definition; tests/unit/test_sms.py keeps them as the reference this code must
equal on every input.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from collections.abc import Callable, Mapping
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


def _char_class(chars: frozenset[str], *, negated: bool = False) -> str:
    return ("[^" if negated else "[") + "".join(re.escape(ch) for ch in sorted(chars)) + "]"


_NOT_GSM7 = re.compile(_char_class(GSM7, negated=True))
_GSM7_EXTENSION_CHAR = re.compile(_char_class(GSM7_EXTENSION))


def encoding_of(text: str) -> Encoding:
    """GSM-7 if every character is in the default or extension table, else UCS-2."""
    return "GSM-7" if _NOT_GSM7.search(text) is None else "UCS-2"


def _septets(piece: str) -> int:
    """Septets of a GSM-7 text: extension characters are sent as ESC + code."""
    return len(piece) + len(_GSM7_EXTENSION_CHAR.findall(piece))


def _utf16_units(piece: str) -> int:
    """UTF-16 code units: 2 for a character beyond the BMP, 1 for any other (a lone surrogate too)."""
    return len(piece.encode("utf-16-le", "surrogatepass")) >> 1


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


@functools.cache
def _bmp_may_join() -> re.Pattern[str]:
    """Matches a BMP character that _joins could attach to the one before: a combining mark (read
    from unicodedata, as _is_extend does), ZWNJ or ZWJ.  Built on first use, in 10-30 ms.

    One character class, so that re scans for it as fast as for a plain set (with astral members or
    in an alternation re would test every range in turn: 60 times slower).
    """
    category = unicodedata.category
    ranges: list[list[int]] = []
    for cp in range(0x10000):
        if category(chr(cp))[0] == "M" or cp in (0x200C, 0x200D):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    return re.compile("[" + "".join(f"\\u{first:04x}-\\u{last:04x}" for first, last in ranges) + "]")


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


@functools.lru_cache(maxsize=4096)
def _astral_may_join(ch: str) -> bool:
    return _is_extend(ch) or _is_skin_tone(ch) or _is_regional_indicator(ch)


def _may_join(text: str, astral: bool) -> set[int]:
    """Positions where _joins could be true: at a mark, ZWNJ/ZWJ, tag, skin tone or regional
    indicator, or right after a ZWJ.  Everywhere else a cluster starts afresh, whatever came before.
    ``astral``: whether the text has characters beyond the BMP (else they are not looked for)."""
    soft = set()
    for match in _bmp_may_join().finditer(text):
        soft.add(match.start())
        if match.group() == "\u200d":
            soft.add(match.end())
    if astral:
        soft.update(match.start() for match in _ASTRAL.finditer(text) if _astral_may_join(match.group()))
    return soft


def _cut(text: str, per_part: int, size: Callable[[str], int] | None, wide: Callable[[str], bool],
         boundary: Callable[[int, int], int] | None = None) -> list[str]:
    """Greedy parts of at most ``per_part`` units, each as long as the next piece allows.

    A slice of ``per_part`` characters is at least ``per_part`` units (``size``; None when every
    character of the text is 1 unit); its double-width characters (``wide``) are dropped from its end
    until it fits, then ``boundary`` moves the cut back to where a piece (a grapheme cluster) starts.
    """
    parts: list[str] = []
    start, length = 0, len(text)
    while start < length:
        end = min(start + per_part, length)
        over = 0 if size is None else size(text[start:end]) - per_part
        while over > 0:
            end -= 1
            over -= 2 if wide(text[end]) else 1
        if boundary is not None and end < length:
            end = boundary(start, end)
        parts.append(text[start:end])
        start = end
    return parts


def _cluster_boundary(text: str, astral: bool) -> Callable[[int, int], int] | None:
    """For _cut on a UCS-2 text: the last piece boundary at or before a cut; None when every code
    point is its own piece (no character of the text can join the one before it).

    At a position outside _may_join a new cluster starts whatever came before, so the pieces between
    two such positions are what _clusters gives for that run alone: only the run around a cut is
    clustered, once.
    """
    soft = _may_join(text, astral)
    if not soft:
        return None
    length = len(text)
    runs: dict[int, list[int]] = {}  # start of a run of possibly joined characters -> piece starts in it

    def boundary(start: int, end: int) -> int:
        if end not in soft:
            return end
        first = end
        while first > 0 and first in soft:
            first -= 1
        starts = runs.get(first)
        if starts is None:
            stop = end + 1
            while stop < length and stop in soft:
                stop += 1
            starts = [first]
            for piece in _clusters(text[first:stop]):
                starts.append(starts[-1] + len(piece))
            runs[first] = starts
        return starts[bisect.bisect_right(starts, end) - 1]  # past ``start``: no piece is longer than a part

    return boundary


@functools.lru_cache(maxsize=1024)  # SmsInfo is immutable; 1024 texts of a few parts are a few MB at most
def segment(text: str) -> SmsInfo:
    """Encoding, size and the actual parts the text is sent as."""
    if _NOT_GSM7.search(text) is None:  # GSM characters never combine: each is its own piece
        units = _septets(text)
        if units <= GSM7_SINGLE:
            return SmsInfo("GSM-7", units, 1, len(text), (text,))
        size = _septets if units > len(text) else None
        parts = _cut(text, GSM7_PER_PART, size, GSM7_EXTENSION.__contains__)
        return SmsInfo("GSM-7", units, len(parts), len(text), tuple(parts))
    units = _utf16_units(text)
    if units <= UCS2_SINGLE:
        return SmsInfo("UCS-2", units, 1, len(text), (text,))
    astral = units > len(text)
    size = _utf16_units if astral else None
    parts = _cut(text, UCS2_PER_PART, size, "\uffff".__lt__, _cluster_boundary(text, astral))
    return SmsInfo("UCS-2", units, len(parts), len(text), tuple(parts))


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


@functools.lru_cache(maxsize=4096)  # a customer's number is looked up for every message (twice for quiet hours)
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


_LOOK_ALIKE = re.compile(_char_class(frozenset(SMART_ENCODING)))


def _smart_replacement(match: re.Match[str]) -> str:
    return SMART_ENCODING[match.group()]


def smart_encode(text: str) -> str:
    """Replace typographic look-alikes by GSM-7 characters; only for stores that allow it."""
    return _LOOK_ALIKE.sub(_smart_replacement, text)
