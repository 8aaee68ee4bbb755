"""Falling back across channels: which outcomes move a message to its next channel, and which end it."""

from __future__ import annotations

import datetime as dt

from schemas.codec import encode
from schemas.messages import MessageOutcome
from schemas.types import Channel
from streams import fallback
from streams.ids import outcome_id
from tests import factories as f


def outcome(message_id: str, channel: Channel | None, status: str) -> MessageOutcome:
    return MessageOutcome(outcome_id=outcome_id(message_id, status), message_id=message_id, customer_id="c",
                          store_id="s", channel=channel, status=status, occurred_at=f.NOW)


def sent_on_sms():
    intent = f.intent()
    return intent, fallback.remember(None, intent.message_id, encode(intent), Channel.SMS, f.NOW)


def test_an_undelivered_sms_asks_for_the_next_channel_without_sms() -> None:
    intent, state = sent_on_sms()
    state, retry = fallback.on_outcome(state, outcome(intent.message_id, Channel.SMS, "undelivered"))
    assert retry is not None and retry.tried == (Channel.SMS,)
    assert retry.narrowed(intent).channels == [Channel.WHATSAPP, Channel.EMAIL]
    assert fallback.finish(state, intent.message_id) == {}  # when the policy finds no channel left


def test_a_second_failure_skips_both_channels_tried() -> None:
    intent, state = sent_on_sms()
    state, _ = fallback.on_outcome(state, outcome(intent.message_id, Channel.SMS, "failed"))
    state = fallback.remember(state, intent.message_id, encode(intent), Channel.WHATSAPP, f.NOW)
    _, retry = fallback.on_outcome(state, outcome(intent.message_id, Channel.WHATSAPP, "failed"))
    assert retry.narrowed(intent).channels == [Channel.EMAIL]


def test_delivery_ends_the_message() -> None:
    intent, state = sent_on_sms()
    state, retry = fallback.on_outcome(state, outcome(intent.message_id, Channel.SMS, "delivered"))
    assert retry is None and state == {}


def test_an_accepted_email_ends_the_message_but_an_accepted_sms_does_not() -> None:
    intent = f.intent()
    email = fallback.remember(None, intent.message_id, encode(intent), Channel.EMAIL, f.NOW)
    assert fallback.on_outcome(email, outcome(intent.message_id, Channel.EMAIL, "sent"))[0] == {}
    _, sms = sent_on_sms()
    mid = next(iter(sms))
    assert fallback.on_outcome(sms, outcome(mid, Channel.SMS, "sent"))[0] == sms


def test_a_late_receipt_about_an_earlier_channel_changes_nothing() -> None:
    intent, state = sent_on_sms()
    state, _ = fallback.on_outcome(state, outcome(intent.message_id, Channel.SMS, "failed"))
    state = fallback.remember(state, intent.message_id, encode(intent), Channel.EMAIL, f.NOW)
    assert fallback.on_outcome(state, outcome(intent.message_id, Channel.SMS, "undelivered")) == (state, None)


def test_ambiguous_and_suppressed_outcomes_never_fall_back() -> None:
    intent, state = sent_on_sms()
    for status, channel in (("ambiguous", Channel.SMS), ("suppressed", None)):
        assert fallback.on_outcome(state, outcome(intent.message_id, channel, status)) == (state, None)


def test_entries_older_than_the_keep_period_are_forgotten() -> None:
    intent, state = sent_on_sms()
    later = f.NOW + fallback.KEEP + dt.timedelta(minutes=1)
    other = f.intent()
    state = fallback.remember(state, other.message_id, encode(other), Channel.SMS, later)
    assert set(state) == {other.message_id}


def test_a_silent_channel_is_overdue_after_its_timeout_only() -> None:
    intent, state = sent_on_sms()
    timeouts = {"sms": 600.0}
    assert fallback.due_timeouts(state, f.NOW + dt.timedelta(seconds=599), timeouts) == []
    [(message_id, channel, due)] = fallback.due_timeouts(state, f.NOW + dt.timedelta(seconds=600), timeouts)
    assert (message_id, channel, due) == (intent.message_id, Channel.SMS, f.NOW + dt.timedelta(seconds=600))
    assert fallback.due_timeouts(state, f.NOW + dt.timedelta(days=1), {"whatsapp": 1.0}) == []  # no SMS timeout


def test_a_fired_timeout_applies_only_while_the_message_still_waits_on_that_channel() -> None:
    intent, state = sent_on_sms()
    retry = fallback.on_timeout(state, intent.message_id, Channel.SMS)
    assert retry is not None and retry.narrowed(intent).channels == [Channel.WHATSAPP, Channel.EMAIL]
    moved_on = fallback.remember(state, intent.message_id, encode(intent), Channel.WHATSAPP, f.NOW)
    assert fallback.on_timeout(moved_on, intent.message_id, Channel.SMS) is None
    delivered, _ = fallback.on_outcome(state, outcome(intent.message_id, Channel.SMS, "delivered"))
    assert fallback.on_timeout(delivered, intent.message_id, Channel.SMS) is None
