"""The worker's core: one customer's state, the inputs that change it, and what each step asks for.

    step(state, input, context) -> Step(state', effects)

No Faust, no I/O, no clock of its own: the worker (``streams/app.py``) and the simulator
(``streams/simulation.py``) both drive it, so there is one decision code. See DESIGN.md, "the worker's
shape", and each module: ``state`` (the record), ``inputs``, ``effects``, ``context``, ``steps``.
"""

from streams.core.context import Context
from streams.core.effects import ConsentNote, Effect, Emit, Erased, Ignored, JourneyNote, Report, Send
from streams.core.inputs import (
    CampaignInput,
    ConsentInput,
    ErasureInput,
    EventInput,
    Input,
    IntentInput,
    OutcomeInput,
    ProfileInput,
    ReplyInput,
    TimerInput,
)
from streams.core.state import JOURNEY_WAKE, RECEIPT_TIMEOUT, SCHEDULED_SEND, CustomerState, Timer
from streams.core.steps import Step, step

__all__ = [
    "JOURNEY_WAKE", "RECEIPT_TIMEOUT", "SCHEDULED_SEND",
    "CampaignInput", "ConsentInput", "ConsentNote", "Context", "CustomerState", "Effect", "Emit", "Erased",
    "ErasureInput", "EventInput", "Ignored", "Input", "IntentInput", "JourneyNote", "OutcomeInput",
    "ProfileInput", "ReplyInput", "Report", "Send", "Step", "Timer", "TimerInput", "step",
]
