"""Inbound SMS/WhatsApp keywords: STOP, START/YES, HELP, and YES answering a double opt-in.

Pure: no Faust, no I/O. Rules and their sources:

* Opt-out words act at once. The built-in set is the union of Twilio's default single-word
  opt-outs (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT), the FCC's per-se revocation words
  (47 CFR 64.1200(a)(10), FCC 24-24: stop, quit, end, revoke, opt out, cancel, unsubscribe),
  OPTOUT, and the words of the languages our stores serve (Dutch, Polish, Hebrew, Belarusian,
  Russian). The FCC words are protected: a store cannot remove them (``KeywordConfig`` raises).
* Like the carriers, a keyword must be the *whole* message: "STOP" and "Stop!" opt out,
  "STOP PLEASE", "please stop texting me" and "Stopwatch" do not. Free text that a reasonable
  person would read as a revocation is the job of a human-review route, not of this module.
  The few two-word phrases ("opt out", "stop all", "הסירו אותי") are matched as whole messages too.
* START, UNSTOP and YES (JA, TAK, כן, ТАК, ДА) opt in. A YES-word sent while a double opt-in
  confirmation is pending is CONFIRM instead; START and UNSTOP stay OPT_IN either way.
* HELP and INFO (HULP, POMOC, עזרה, ДАПАМОГА, ПОМОЩЬ) get ``help_reply``.

Normalisation (``normalize``), applied to the message and to every listed word alike:
Unicode NFKC (full-width letters, ligatures), casefold, diacritics dropped after Latin letters
("STÓP", "rezygnuję", and ł → l) and Hebrew niqqud/cantillation dropped; Cyrillic letters are
kept as they are (й, ё, ў stay; СТОП is not STOP), only stray marks such as stress accents go.
Invisible format characters (RLM, zero-width joiners, soft hyphens) are removed; any other run of
non-letters (spaces, punctuation, emoji) separates words, so "  Stop. 🛑" is "stop" and "opt-out"
is "opt out". Mixed-script look-alikes (Latin C in "CТОП") are not folded.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    CONFIRM = "confirm"


OPT_OUT_WORDS = (
    "STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT",
    "STOPPEN", "AFMELDEN", "UITSCHRIJVEN",  # nl
    "NIE", "WYPISZ", "REZYGNUJĘ",  # pl (STOP is shared)
    "הסר", "הסרה", "הסירו אותי",  # he
    "СТОП", "АДПІСАЦЦА", "ОТПИСАТЬСЯ", "ОТПИСКА",  # be, ru
)
OPT_IN_WORDS = ("START", "UNSTOP")
YES_WORDS = ("YES", "JA", "TAK", "כן", "ТАК", "ДА")  # OPT_IN, or CONFIRM while a confirmation is pending
HELP_WORDS = ("HELP", "INFO", "HULP", "POMOC", "עזרה", "ДАПАМОГА", "ПОМОЩЬ")

# FCC 24-24 per-se revocations (plus the one-word spelling of "opt out"): no store may remove them.
PROTECTED_OPT_OUTS = ("STOP", "QUIT", "END", "REVOKE", "OPT OUT", "OPTOUT", "CANCEL", "UNSUBSCRIBE")

HELP_TEXTS = {
    "en": "Reply STOP to unsubscribe, START to subscribe again. Msg & data rates may apply.",
    "nl": "Antwoord STOP om je af te melden, START om je weer aan te melden.",
    "pl": "Odpowiedz STOP, aby zrezygnować, START, aby ponownie się zapisać.",
    "he": "להסרה השיבו הסר. להרשמה מחדש השיבו START.",
    "be": "Адкажыце СТОП, каб адпісацца, START, каб падпісацца зноў.",
    "ru": "Ответьте СТОП, чтобы отписаться, START, чтобы подписаться снова.",
}

_FOLD = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ı": "i"})  # Latin letters with no decomposition


def _with_mark(base: str, mark: str) -> str:
    """``base`` after a combining ``mark``. Marks go after Latin and Hebrew letters (accents, niqqud) and
    after non-letters; elsewhere a mark that makes a precomposed letter stays (и + breve = й), and so
    do script-specific marks (Thai vowels, Devanagari signs), but not stray generic accents (Russian
    stress marks), enclosing marks (keycaps) or emoji variation selectors."""
    if unicodedata.category(base[0])[0] != "L" or unicodedata.name(base[0], "").startswith(("LATIN", "HEBREW")):
        return base
    composed = unicodedata.normalize("NFC", base + mark)
    if len(composed) < len(base) + 1:
        return composed
    generic = "\u0300" <= mark <= "\u036f" or unicodedata.name(mark, "").startswith("VARIATION SELECTOR")
    return base if generic or unicodedata.category(mark) == "Me" else base + mark


def normalize(text: str) -> str:
    """The comparable form of a message or keyword (see the module docstring)."""
    kept: list[str] = [" "]
    for ch in unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text).casefold()):
        category = unicodedata.category(ch)
        if category.startswith("M"):
            kept[-1] = _with_mark(kept[-1], ch)
        elif category != "Cf":
            kept.append(ch if category[0] in "LN" else " ")
    return " ".join(unicodedata.normalize("NFC", "".join(kept)).translate(_FOLD).split())


# When one word is listed under several keywords, the safest reading wins.
_RANK = (Keyword.OPT_OUT, Keyword.HELP, Keyword.OPT_IN, Keyword.CONFIRM)
_BUILT_IN = {Keyword.OPT_OUT: OPT_OUT_WORDS, Keyword.OPT_IN: OPT_IN_WORDS, Keyword.CONFIRM: YES_WORDS,
             Keyword.HELP: HELP_WORDS}


def _words(words: Iterable[str] | str) -> list[str]:
    """Normalised words; a lone string is one word, not a list of letters."""
    return [normalize(words)] if isinstance(words, str) else [normalize(word) for word in words]


def _table(words: Mapping[Keyword, Iterable[str] | str], removed: frozenset[str]) -> dict[str, Keyword]:
    table: dict[str, Keyword] = {}
    for keyword in reversed(_RANK):
        table.update((word, keyword) for word in _words(words.get(keyword, ())) if word and word not in removed)
    return table


@dataclass(frozen=True)
class KeywordConfig:
    """A store's changes to the built-in words, and its HELP texts by locale.

    ``extra`` words under CONFIRM behave like YES. Extras are added after ``removed`` is applied, so
    a store can move a word to another keyword; a word under OPT_OUT always wins.
    """

    extra: Mapping[Keyword, Iterable[str] | str] = field(default_factory=dict)
    removed: Iterable[str] | str = ()
    help_text: Mapping[str, str] = field(default_factory=dict)
    _lookup: dict[str, Keyword] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        removed = frozenset(_words(self.removed))
        protected = removed & set(_words(PROTECTED_OPT_OUTS))
        if protected:
            raise ValueError(f"opt-out words required by the FCC cannot be removed: {sorted(protected)}")
        lookup = _table(_BUILT_IN, removed)
        for word, keyword in _table(self.extra, frozenset()).items():
            if lookup.get(word) != Keyword.OPT_OUT:
                lookup[word] = keyword
        object.__setattr__(self, "_lookup", lookup)


DEFAULT = KeywordConfig()


def classify(text: str, store: KeywordConfig = DEFAULT, *, awaiting_confirmation: bool = False) -> Keyword | None:
    """The keyword the whole message is, or None for anything else (free text goes to a human)."""
    keyword = store._lookup.get(normalize(text))
    if keyword == Keyword.CONFIRM and not awaiting_confirmation:
        return Keyword.OPT_IN
    return keyword


def help_reply(config: KeywordConfig, locale: str) -> str:
    """The HELP answer: for the exact locale, then its language, then English; the store's text first."""
    exact = locale.replace("_", "-").lower()
    store = {key.replace("_", "-").lower(): text for key, text in config.help_text.items()}
    for key in (exact, exact.split("-")[0], "en"):
        for texts in (store, HELP_TEXTS):
            if key in texts:
                return texts[key]
    return HELP_TEXTS["en"]
