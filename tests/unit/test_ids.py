"""Deterministic ids: the fast version-5 UUID is the standard library's, byte for byte."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from streams import ids


@given(st.text())
def test_the_fast_uuid5_is_the_standard_librarys(name: str) -> None:
    assert ids.uuid5(name) == str(uuid.uuid5(ids.NAMESPACE, name))


def test_ids_are_stable_across_releases() -> None:
    """Ids already on topics and in send ledgers must be made again identically (a redelivery after an
    upgrade is still recognised): pinned values."""
    assert ids.message_id("ev-1", "shipped") == str(uuid.uuid5(ids.NAMESPACE, "message/ev-1/shipped"))
    assert ids.outcome_id("m-1", "suppressed") == str(uuid.uuid5(ids.NAMESPACE, "outcome/m-1/suppressed/"))
