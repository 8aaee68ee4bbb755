"""Scenario 3: the Kafka broker stopped and started again mid-run; the pipeline resumes by itself.

The scenario runs a broker of its own (``deploy/kafka/kafka.sh`` on a free port pair with its own data
directory), so the session's broker and every other test are undisturbed. On it: the whole pipeline as
real processes, as ``make demo`` runs it (worker, the SMS, WhatsApp and e-mail gateways, and the Twilio,
WhatsApp Cloud API and SMTP sandboxes, without failing numbers).

The customers' state goes in first; then the storefront events, paced at :data:`RATE` per second
through the project's producer library (the shop keeps selling through the outage). Once the worker
has committed a third of the events and the providers have had some calls, the broker is stopped
cleanly (SIGTERM, ``kafka.sh stop``) and started again on the same data at once, a restart: about 10-20 s
without a broker on a 2-core machine, longer than the worker's 6 s session. No process is restarted by
the scenario.

A second case leaves the broker down :data:`LONG_OUTAGE` seconds longer, beyond aiokafka's 40 s request
timeout. It guards a bug fixed here: every gateway used to exit with ``LeaderNotAvailableError`` once a
write of its own had waited 40 s for a partition leader; the gateways' publisher now retries a retriable
broker error with backoff for as long as the outage lasts (``connectors/gateways/kafka_io.py``).

Asserted, as counts: every process is still running at the end; every message id the events must lead to
has a command or a suppression (none lost); every command has a gateway's verdict (sent, ambiguous,
failed or suppressed); a provider call repeated for a message id happened only for a send flagged
ambiguous. Printed, not asserted: SMS and WhatsApp messages sent but never given a delivery receipt (a
receipt posted while the gateway cannot write to Kafka is answered 500; the sandboxes, like Twilio, retry
a few times within seconds, then give up).
"""

from __future__ import annotations

import time

import pytest

from schemas.catalog import STOREFRONT_EVENTS, TopicNames
from schemas.messages import OutcomeStatus
from schemas.types import Channel
from streams.topics import create_topics
from tests.chaos.scenarios import (
    Decisions,
    Feeder,
    OwnBroker,
    Pipeline,
    Shop,
    Stopwatch,
    chaos_settings,
    produce_records,
    report,
    routed_topics,
    state_topics,
    unanswered_commands,
    wait_drained,
    wait_for_progress,
)
from tests.support import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

EVENTS = 4_000
RATE = 100.0  # storefront events per second: the worker and the gateways are busy when the broker stops
RECEIPTS = {OutcomeStatus.DELIVERED, OutcomeStatus.READ, OutcomeStatus.UNDELIVERED, OutcomeStatus.FAILED}
LONG_OUTAGE = 45.0  # seconds between stop and start in the second case: beyond aiokafka's 40 s request timeout


@pytest.mark.timeout(1200)
def test_the_pipeline_resumes_by_itself_after_the_broker_is_restarted(tmp_path) -> None:
    outage(tmp_path, 0.0, "Scenario 3 — broker stopped and started again at once, mid-run")


@pytest.mark.timeout(1200)
def test_the_pipeline_resumes_by_itself_after_a_long_broker_outage(tmp_path) -> None:
    outage(tmp_path, LONG_OUTAGE, f"Scenario 3b — broker down {LONG_OUTAGE:.0f} s more than a restart, mid-run")


def outage(tmp_path, down_for: float, title: str) -> None:
    clock = Stopwatch()
    broker = OwnBroker(tmp_path / "kafka")
    broker.start()
    pipeline: Pipeline | None = None
    failure: AssertionError | None = None
    try:
        settings = chaos_settings(broker.bootstrap, tmp_path)
        names = TopicNames(settings.kafka.topic_prefix)
        create_topics(settings)
        shop = Shop.generate(EVENTS, seed=3)
        expected = shop.expected_ids()
        pipeline = Pipeline(settings, tmp_path / "logs").start()
        produce_records(settings, shop.state)
        wait_drained(settings, state_topics(settings), 600, *pipeline.procs.values())
        feeder = Feeder(settings, shop.events, RATE).start()

        at_stop = wait_for_progress(settings, names(STOREFRONT_EVENTS), EVENTS, 1 / 3, pipeline.procs["worker"])
        wait_until(lambda: sum(sum(c.values()) for c in pipeline.provider_calls().values()) > 0, 120,
                   "the first provider calls", pipeline.procs["worker"])
        calls_at_stop = sum(sum(c.values()) for c in pipeline.provider_calls().values())
        broker.stop()
        stopped = time.monotonic()
        while time.monotonic() - stopped < down_for:
            time.sleep(0.5)  # the outage itself
        broker.start()
        down = time.monotonic() - stopped
        try:
            feeder.join()
            # The worker drains whatever happened to the gateways (they are checked next).
            wait_drained(settings, [names(STOREFRONT_EVENTS), *routed_topics(settings)], 900,
                         pipeline.procs["worker"])

            def answered() -> bool:
                pipeline.check()
                return not unanswered_commands(Decisions.read(settings))

            wait_until(answered, 600, "a gateway verdict for every command")
            wait_drained(settings, routed_topics(settings), 300, *pipeline.procs.values())
        except AssertionError as exc:  # still count what happened, then fail with it
            failure = exc
        decisions = Decisions.read(settings)
        calls = pipeline.provider_calls()
        dead = {name: _last_error(pipeline.procs[name].output()) for name in pipeline.dead()}
    finally:
        if pipeline is not None:
            pipeline.stop()
        broker.stop()

    ambiguous = decisions.with_status(OutcomeStatus.AMBIGUOUS)
    lost = expected - decisions.decided()
    repeated = {(channel, m) for channel, counter in calls.items() for m, n in counter.items() if n > 1}
    repeated_unflagged = {(channel, m) for channel, m in repeated if m not in ambiguous}
    commanded = decisions.commanded()
    sent = {(o.message_id, o.channel) for o in decisions.outcomes if o.status == OutcomeStatus.SENT
            and o.channel in (Channel.SMS, Channel.WHATSAPP)}
    receipted = {(o.message_id, o.channel) for o in decisions.outcomes if o.status in RECEIPTS}
    unreceipted = sent - receipted
    report(title, [
        ("storefront events (paced)", f"{EVENTS:,} at {RATE:.0f}/s"),
        ("worker progress when the broker stopped", f"{at_stop:.1%}"),
        ("provider calls when the broker stopped", calls_at_stop),
        ("no broker for (stop → start done)", f"{down:.0f} s"),
        ("processes that died", "; ".join(f"{n} ({e})" for n, e in dead.items()) or "none"),
        ("expected message ids", len(expected)),
        ("ids with a command", len(commanded)),
        ("duplicate command records", sum(commanded.values()) - len(commanded)),
        ("ids suppressed by the worker", len(decisions.by_worker(OutcomeStatus.SUPPRESSED))),
        ("provider calls (sms / whatsapp / email)", " / ".join(str(sum(calls[c].values())) for c in calls)),
        ("sent outcomes (ids)", len(decisions.with_status(OutcomeStatus.SENT))),
        ("ambiguous outcomes (ids)", len(ambiguous)),
        ("SMS + WhatsApp sent without any delivery receipt", len(unreceipted)),
        ("provider calls repeated / of which not flagged", f"{len(repeated)} / {len(repeated_unflagged)}"),
        ("LOST ids (no command, no suppression)", len(lost)),
        ("commands without a gateway verdict", len(unanswered_commands(decisions))),
    ], clock.seconds)

    if failure is not None:
        raise failure
    assert dead == {}
    assert lost == set()
    assert unanswered_commands(decisions) == set()
    assert repeated_unflagged == set()


def _last_error(log: str) -> str:
    """The exception that ended a process, from its log (a Kafka error before any CancelledError of the
    clean-up that followed it)."""
    lines = [line for line in log.splitlines() if "Error" in line and not line.startswith((" ", "20"))]
    kafka = [line for line in lines if line.startswith(("aiokafka.errors.", "kafka.errors."))]
    return (kafka or lines or ["no error logged"])[-1][-120:]
