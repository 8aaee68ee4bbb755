"""Double opt-in: a new SMS/WhatsApp marketing opt-in stays pending until the customer answers YES.

Pure: no Faust, no clock of its own. Where the store asks for it, an opt-in from a checkbox, an
import or the API is recorded as ``pending`` (its proof kept) and one confirmation message goes out
on that channel; the customer's YES (``streams.replies``) then records ``opted_in`` with the reply
as proof. A customer already opted in is not asked again, and opt-ins that are themselves a reply
from the handset (START, a confirming YES) need no confirmation.
"""

from __future__ import annotations

import datetime as dt

from schemas.customers import ConsentChange, ConsentSource, ConsentState
from schemas.messages import MessageIntent
from schemas.types import Channel, Purpose
from streams import ids
from streams.consent import ConsentMap, state_of
from streams.stores import StoreConfig

_FROM_HANDSET = {ConsentSource.KEYWORD, ConsentSource.DOUBLE_OPT_IN}
TEMPLATE = "optin_confirmation"


def needs_confirmation(change: ConsentChange, current: ConsentMap | None, store: StoreConfig) -> bool:
    return (change.state == ConsentState.OPTED_IN and change.purpose == Purpose.MARKETING
            and store.needs_confirmation(change.channel) and change.source not in _FROM_HANDSET
            and state_of(current, change.channel, change.purpose) != ConsentState.OPTED_IN)


def as_pending(change: ConsentChange) -> ConsentChange:
    """The change as recorded until confirmed: same proof, state pending."""
    return change.model_copy(update={"state": ConsentState.PENDING})


def confirmation(change: ConsentChange, received_at: dt.datetime | None = None,
                 now: dt.datetime | None = None) -> MessageIntent:
    """The one message asking for the YES, on the channel the opt-in was for (transactional: it is the
    subscription's own confirmation, not marketing). Its id derives from the change: asked once.
    ``received_at`` is when the change reached Kafka (latency is measured from there; an imported opt-in
    may have ``occurred_at`` months ago)."""
    return MessageIntent(
        message_id=ids.message_id(change.change_id, TEMPLATE), customer_id=change.customer_id,
        store_id=change.store_id, template=TEMPLATE, purpose=Purpose.TRANSACTIONAL,
        channels=[Channel(change.channel)], trigger_event_id=change.change_id,
        trigger_received_at=received_at or change.occurred_at, created_at=now or change.occurred_at,
    )
