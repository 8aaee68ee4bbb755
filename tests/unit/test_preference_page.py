"""The preference page shows what a customer chose, masked; a submitted form becomes exactly the records
that make their state what they chose — nothing when they changed nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from connectors.errors import PreferenceFormError
from connectors.preferences.choices import Choices, Proof, changes, parse_form
from connectors.preferences.page import mask_contact, render_form, render_refusal, render_saved
from schemas.customers import ConsentSource, ConsentState
from schemas.types import Channel
from tests import factories as f

NOW = f.NOW
PROOF = Proof(ip="203.0.113.7", user_agent="Mozilla/5.0 test", disclosure_text="the words shown",
              disclosure_version="2026-05")
OPTED_IN_SMS = {"sms:marketing": ConsentState.OPTED_IN, "email:marketing": ConsentState.OPTED_OUT}


def customer(**overrides):
    values = dict(phone="+972501234567", whatsapp=None, email="ana@example.com",
                  channel_preferences=[Channel.SMS, Channel.EMAIL], locale="en")
    return f.profile("cust-1", **{**values, **overrides})


def form(**fields: str) -> dict[str, str]:
    return {"preferred": "sms", "language": "en", "pause": "0", **fields}


@pytest.mark.parametrize(("contact", "shown"), [("+972501234567", "+97250•••4567"), ("+48601234567", "+48601•••4567"),
                                                ("ana@example.com", "a•••@example.com"), ("+3161234", "+31•••34")])
def test_contact_points_are_masked(contact: str, shown: str) -> None:
    assert mask_contact(contact) == shown


def test_the_page_shows_masked_contacts_and_ticks_only_opted_in_channels() -> None:
    html = render_form(customer(), OPTED_IN_SMS, "tok", "/preferences/tok", NOW)

    assert "+97250•••4567" in html and "a•••@example.com" in html
    assert "+972501234567" not in html and "ana@example.com" not in html
    assert 'name="marketing_sms" value="yes"\n aria-describedby="marketing-hint disclosure" checked>' in html
    assert 'name="marketing_email" value="yes"\n aria-describedby="marketing-hint disclosure">' in html
    assert 'name="marketing_whatsapp"' in html  # reachable through the phone number
    assert '<label for="marketing_sms">' in html and '<label for="preferred">' in html
    assert 'dir="ltr"' in html and '<option value="sms" selected>' in html


def test_channels_without_a_contact_point_are_not_offered() -> None:
    html = render_form(customer(phone=None, whatsapp=None), {}, "tok", "/preferences/tok", NOW)

    assert "marketing_sms" not in html and "marketing_whatsapp" not in html and "marketing_email" in html


def test_a_hebrew_page_is_right_to_left_in_hebrew() -> None:
    html = render_form(customer(locale="he"), {}, "tok", "/preferences/tok", NOW)

    assert '<html lang="he" dir="rtl">' in html and "העדפות ההודעות שלך" in html


def test_what_the_page_shows_is_escaped() -> None:
    html = render_form(customer(email="<x>@example.com"), {}, 'a"b', "/preferences/x", NOW)

    assert "<x>" not in html and "&lt;•••@example.com" in html and 'value="a&#34;b"' in html


def test_a_running_pause_is_kept_unless_changed() -> None:
    html = render_form(customer(marketing_paused_until=NOW + dt.timedelta(days=3)), {}, "t", "/preferences/t", NOW)

    assert '<option value="keep" selected>Keep the pause until 2026-11-25</option>' in html


def test_refusals_carry_their_http_status_and_saved_speaks_the_chosen_language() -> None:
    assert render_refusal("tampered")[0] == 403 and render_refusal("expired")[0] == 410
    assert render_refusal("unknown")[0] == 404 and "expired" in render_refusal("expired")[1]
    assert 'id="saved"' in render_saved("nl", "/preferences/t") and "opgeslagen" in render_saved("nl", "/p/t")


def test_unticking_and_ticking_marketing_become_consent_changes_with_proof() -> None:
    profile = customer()
    choices = parse_form(form(marketing_email="yes"), profile)

    result = changes(profile, OPTED_IN_SMS, choices, PROOF, NOW)

    assert {(c.channel, c.state) for c in result.consent} == {("sms", "opted_out"), ("email", "opted_in")}
    for change in result.consent:
        assert change.purpose == "marketing" and change.source == ConsentSource.PREFERENCE_CENTRE
        assert change.occurred_at == NOW and change.customer_id == "cust-1" and change.store_id == "store-1"
        assert change.evidence.ip == "203.0.113.7" and change.evidence.user_agent == "Mozilla/5.0 test"
        assert change.evidence.disclosure_text == "the words shown" and change.evidence.disclosure_version == "2026-05"
    assert result.profile is None
    again = changes(profile, OPTED_IN_SMS, choices, PROOF, NOW)
    assert [c.change_id for c in again.consent] == [c.change_id for c in result.consent]  # deterministic


def test_a_form_that_changes_nothing_publishes_nothing() -> None:
    profile = customer()

    assert not changes(profile, OPTED_IN_SMS, parse_form(form(marketing_sms="yes"), profile), PROOF, NOW)


def test_preferred_channel_language_and_pause_make_a_new_profile() -> None:
    profile = customer()
    choices = Choices(marketing=frozenset({Channel.SMS}), preferred=Channel.WHATSAPP, language="nl", pause_days=30)

    new = changes(profile, OPTED_IN_SMS, choices, PROOF, NOW).profile

    assert new is not None and new.channel_preferences == ["whatsapp", "sms", "email"]
    assert new.locale == "nl" and new.marketing_paused_until == NOW + dt.timedelta(days=30)
    assert new.updated_at == NOW and new.model_dump(exclude={"channel_preferences", "locale",
                                                             "marketing_paused_until", "updated_at"}) == \
        profile.model_dump(exclude={"channel_preferences", "locale", "marketing_paused_until", "updated_at"})


def test_a_regional_locale_is_kept_when_its_language_is_kept() -> None:
    profile = customer(locale="pl-PL")

    assert changes(profile, {}, parse_form(form(language="pl"), profile), PROOF, NOW).profile is None


def test_no_pause_ends_a_running_pause_and_keep_keeps_it() -> None:
    profile = customer(marketing_paused_until=NOW + dt.timedelta(days=3))

    ended = changes(profile, {}, parse_form(form(pause="0"), profile), PROOF, NOW).profile
    assert ended is not None and ended.marketing_paused_until is None
    assert changes(profile, {}, parse_form(form(pause="keep"), profile), PROOF, NOW).profile is None


@pytest.mark.parametrize("bad", [{"preferred": "fax"}, {"language": "fr"}, {"pause": "365"},
                                 {"preferred": "whatsapp", "language": ""}])
def test_values_the_page_never_offered_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(PreferenceFormError):
        parse_form(form(**bad), customer(phone=None) if bad.get("preferred") == "whatsapp" else customer())
