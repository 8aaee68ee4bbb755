"""Specs for streams.keywords: whole-message STOP/START/YES/HELP in every language our stores serve."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.keywords import (
    DEFAULT,
    HELP_TEXTS,
    HELP_WORDS,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    YES_WORDS,
    Keyword,
    KeywordConfig,
    classify,
    help_reply,
    normalize,
)

# Written out again here, so the tests do not trust the module's own lists.
OPT_OUTS = [
    "STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT",
    "STOPPEN", "AFMELDEN", "UITSCHRIJVEN", "NIE", "WYPISZ", "REZYGNUJĘ", "REZYGNUJE",
    "הסר", "הסרה", "הסירו אותי", "СТОП", "АДПІСАЦЦА", "ОТПИСАТЬСЯ", "ОТПИСКА",
]
OPT_INS = ["START", "UNSTOP"]
YESES = ["YES", "JA", "TAK", "כן", "ТАК", "ДА"]
HELPS = ["HELP", "INFO", "HULP", "POMOC", "עזרה", "ДАПАМОГА", "ПОМОЩЬ"]
EXPECTED = {**{w: Keyword.OPT_OUT for w in OPT_OUTS}, **{w: Keyword.OPT_IN for w in OPT_INS},
            **{w: Keyword.CONFIRM for w in YESES}, **{w: Keyword.HELP for w in HELPS}}


def variants(word: str) -> list[str]:
    return [word, word.lower(), word.title(), word.capitalize(), f"  {word}. ", f"{word}!", f"{word.lower()}!!!",
            f"*{word}*", f'"{word}"', f"{word} 🛑", f"🙏{word.lower()}🙏", f"\t{word}\n", f"‏{word}‏",
            word.replace(" ", "   "), word.replace(" ", "-")]


@pytest.mark.parametrize("word", sorted(EXPECTED))
def test_every_listed_word_is_recognised_in_any_casing_and_punctuation(word):
    expected = Keyword.OPT_IN if EXPECTED[word] == Keyword.CONFIRM else EXPECTED[word]
    for text in variants(word):
        assert classify(text) == expected, text


def test_the_test_lists_and_the_module_lists_agree():
    module = {normalize(w) for w in (*OPT_OUT_WORDS, *OPT_IN_WORDS, *YES_WORDS, *HELP_WORDS)}
    assert module == {normalize(w) for w in EXPECTED}


@pytest.mark.parametrize("text", ["STÓP", "stöp", "ŠTOP", "Stȯp", "ＳＴＯＰ", "ｓｔｏｐ", "  Stop. ", "stop!", "STOP\u200b",
                                  "ST\u200bOP", "UNSUB\u00adSCRIBE", "S\u200dTOP"])
def test_accents_full_width_letters_and_invisible_characters_do_not_hide_stop(text):
    assert classify(text) == Keyword.OPT_OUT


@pytest.mark.parametrize("text", ["rezygnuję", "REZYGNUJĘ", "Rezygnuje", "rezygnuje!", "wypisz", "Wypisz.", "nie"])
def test_polish_opt_outs_with_and_without_diacritics(text):
    assert classify(text) == Keyword.OPT_OUT


@pytest.mark.parametrize("text", ["הסר", " הסר ", "הסר.", "הָסֵר", "‏הסר‏", "הסרה", "הסירו אותי", "הסירו  אותי!"])
def test_hebrew_removal_word_from_the_seeds_opts_out_with_or_without_niqqud(text):
    assert classify(text) == Keyword.OPT_OUT


@pytest.mark.parametrize("text", ["СТОП", "стоп", "Стоп!", "адпісацца", "Отписаться", "отписка"])
def test_cyrillic_opt_outs(text):
    assert classify(text) == Keyword.OPT_OUT


def test_cyrillic_letters_are_kept_not_transliterated():
    assert normalize("Ёлка й ў") == "ёлка й ў"
    assert classify("STOP") == classify("СТОП") == Keyword.OPT_OUT
    assert normalize("СТОП") != normalize("STOP")


@pytest.mark.parametrize("text", ["stop please", "STOP PLEASE", "please stop", "Stopwatch", "stopped", "nonstop",
                                  "stop stop", "I want to cancel my order", "s t o p", "end of story", "yes please",
                                  "helpful", "opt", "", "   ", "🛑", "!!!", "הסר אותי מהרשימה בבקשה"])
def test_only_a_whole_message_keyword_counts_like_the_carriers(text):
    assert classify(text) is None


@pytest.mark.parametrize("word", YESES)
def test_yes_confirms_only_while_a_confirmation_is_pending(word):
    assert classify(word, awaiting_confirmation=True) == Keyword.CONFIRM
    assert classify(f"{word.lower()}!", awaiting_confirmation=True) == Keyword.CONFIRM
    assert classify(word, awaiting_confirmation=False) == Keyword.OPT_IN


@pytest.mark.parametrize("word", ["START", "UNSTOP", "start"])
def test_start_opts_in_even_while_a_confirmation_is_pending(word):
    assert classify(word, awaiting_confirmation=True) == Keyword.OPT_IN


def test_opt_out_and_help_do_not_depend_on_a_pending_confirmation():
    assert classify("stop", awaiting_confirmation=True) == Keyword.OPT_OUT
    assert classify("help", awaiting_confirmation=True) == Keyword.HELP


def test_normalisation_collapses_separators():
    assert normalize("  Opt--OUT!! ") == "opt out"
    assert normalize("Stop\u00a0\u00a0All") == "stop all"
    assert normalize("Łódź") == "lodz"


# Store configuration

def test_store_extra_words_per_keyword():
    store = KeywordConfig(extra={Keyword.OPT_OUT: ["BASTA", "genoeg"], Keyword.HELP: ["Pomoc prosze"],
                                 Keyword.OPT_IN: ["subscribe"], Keyword.CONFIRM: ["Jawohl"]})
    assert classify("basta!", store) == Keyword.OPT_OUT
    assert classify("GENOEG", store) == Keyword.OPT_OUT
    assert classify("pomoc, proszę", store) == Keyword.HELP
    assert classify("Subscribe", store) == Keyword.OPT_IN
    assert classify("jawohl", store) == Keyword.OPT_IN
    assert classify("jawohl", store, awaiting_confirmation=True) == Keyword.CONFIRM
    assert classify("basta") is None  # the default set is unchanged
    assert classify("stop", store) == Keyword.OPT_OUT


def test_store_can_remove_a_word_that_is_not_required_by_law():
    store = KeywordConfig(removed=["NIE", "info", "ja"])
    assert classify("nie", store) is None
    assert classify("INFO", store) is None
    assert classify("ja", store) is None
    assert classify("help", store) == Keyword.HELP
    assert classify("nie") == Keyword.OPT_OUT


@pytest.mark.parametrize("word", ["STOP", "quit", "End", "REVOKE", "opt out", "opt-out", "OPTOUT", "Cancel",
                                  "unsubscribe"])
def test_store_cannot_remove_an_fcc_revocation_word(word):
    with pytest.raises(ValueError, match="cannot be removed"):
        KeywordConfig(removed=[word])


def test_an_opt_out_word_cannot_be_turned_into_another_keyword():
    store = KeywordConfig(extra={Keyword.HELP: ["stop", "wypisz"], Keyword.OPT_IN: ["afmelden"]})
    assert classify("stop", store) == Keyword.OPT_OUT
    assert classify("wypisz", store) == Keyword.OPT_OUT
    assert classify("afmelden", store) == Keyword.OPT_OUT


def test_a_lone_string_is_one_word_not_a_list_of_letters():
    store = KeywordConfig(extra={Keyword.OPT_OUT: "BASTA"}, removed="NIE")
    assert classify("basta", store) == Keyword.OPT_OUT
    assert classify("a", store) is None
    assert classify("nie", store) is None
    assert classify("n", store) is None
    with pytest.raises(ValueError):
        KeywordConfig(removed="stop")


def test_empty_or_punctuation_only_extra_words_are_ignored():
    store = KeywordConfig(extra={Keyword.OPT_OUT: ["", "!!!", "🛑"]})
    assert classify("", store) is None
    assert classify("🛑", store) is None


def test_a_removed_word_can_be_moved_to_another_keyword():
    store = KeywordConfig(removed=["NIE"], extra={Keyword.HELP: ["nie"]})
    assert classify("nie", store) == Keyword.HELP


def test_a_word_listed_under_opt_out_and_another_keyword_opts_out():
    store = KeywordConfig(extra={Keyword.OPT_OUT: ["genoeg"], Keyword.CONFIRM: ["genoeg"]})
    assert classify("genoeg", store, awaiting_confirmation=True) == Keyword.OPT_OUT


# HELP replies

def test_help_reply_prefers_the_stores_text_for_the_locale_then_its_language_then_english():
    store = KeywordConfig(help_text={"en": "Acme: reply STOP to opt out. help@acme.test",
                                     "pl": "Acme: odpowiedz STOP. pomoc@acme.test", "pt-BR": "Acme BR"})
    assert help_reply(store, "pl") == "Acme: odpowiedz STOP. pomoc@acme.test"
    assert help_reply(store, "pl_PL") == "Acme: odpowiedz STOP. pomoc@acme.test"
    assert help_reply(store, "pt_br") == "Acme BR"
    assert help_reply(store, "nl-BE") == HELP_TEXTS["nl"]  # built-in Dutch before the store's English
    assert help_reply(store, "ja") == "Acme: reply STOP to opt out. help@acme.test"


@pytest.mark.parametrize("locale", ["en", "nl", "pl", "he", "be", "ru", "he-IL", "en_GB", "xx", ""])
def test_help_reply_always_has_an_answer(locale):
    reply = help_reply(DEFAULT, locale)
    assert reply and ("STOP" in reply or "СТОП" in reply or "הסר" in reply)


# Properties

WORDS = sorted(EXPECTED)
SURROUNDING = st.text(alphabet=" \t\n.,!?;:\"'()*-–—…¡¿«»🛑🙏✨❤️👍\u200f\u200b", max_size=5)


def scramble_case(word: str, flips: list[bool]) -> str:
    return "".join(ch.swapcase() if flip else ch for ch, flip in zip(word, flips + [False] * len(word)))


@settings(max_examples=200)
@given(word=st.sampled_from(WORDS), flips=st.lists(st.booleans(), max_size=20), before=SURROUNDING,
       after=SURROUNDING, awaiting=st.booleans())
def test_keywords_are_invariant_under_case_and_surrounding_whitespace_or_punctuation(word, flips, before, after,
                                                                                      awaiting):
    expected = classify(word, awaiting_confirmation=awaiting)
    assert expected is not None
    assert classify(before + scramble_case(word, flips) + after, awaiting_confirmation=awaiting) == expected


@settings(max_examples=200)
@given(text=st.text(max_size=30), before=SURROUNDING, after=SURROUNDING)
def test_any_text_is_invariant_under_case_and_surrounding_whitespace_or_punctuation(text, before, after):
    expected = classify(text)
    assert classify(text.upper()) == expected
    assert classify(text.lower()) == expected
    if text.strip():  # padding an empty message must not create a word
        assert classify(before + text + after) == expected


@settings(max_examples=200)
@given(text=st.text(max_size=30))
def test_normalisation_is_idempotent(text):
    assert normalize(normalize(text)) == normalize(text)


@settings(max_examples=100)
@given(word=st.sampled_from(WORDS), suffix=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6))
def test_a_longer_word_is_never_a_keyword_by_prefix(word, suffix):
    longer = word + suffix
    listed = {normalize(w): w for w in WORDS}
    if normalize(longer) in listed:  # e.g. STOP + all = STOPALL
        assert classify(longer) is not None
    else:
        assert classify(longer) is None


def test_marks_of_other_scripts_are_kept_but_stray_accents_and_emoji_selectors_go():
    assert normalize("Отписа́ться") == "отписаться"  # a dictionary stress mark
    assert classify("Отписа́ться") == Keyword.OPT_OUT
    assert normalize("стоп\ufe0f") == "стоп"
    assert normalize("ยกเลิก") == "ยกเลิก"  # Thai vowel marks are part of the word
    assert normalize("नमस्ते") == "नमस्ते"
    thai = KeywordConfig(extra={Keyword.OPT_OUT: ["ยกเลิก"]})
    assert classify(" ยกเลิก! ", thai) == Keyword.OPT_OUT
