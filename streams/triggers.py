"""What a storefront event starts at once: the journeys' immediate sends for a customer with no state.

A view over :mod:`streams.journeys.engine` for callers that need the message ids an event yields
(the demo's tally, tests, the chaos suite) without running a worker. Journeys that wait first
(an abandoned cart's first hour) start nothing at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from functools import cache

from schemas.events import StorefrontEvent
from schemas.messages import MessageIntent
from streams.journeys import engine
from streams.journeys.definitions import Journey
from streams.journeys.loader import load_dir


@cache
def default_journeys() -> Mapping[str, Journey]:
    return load_dir()


def intents_for(event: StorefrontEvent, received_at: dt.datetime, now: dt.datetime,
                journeys: Mapping[str, Journey] | None = None) -> list[MessageIntent]:
    if event.customer_id is None:
        return []
    context = engine.Context(journeys=journeys if journeys is not None else default_journeys(), now=now)
    return engine.on_event(None, event, received_at, context).intents
