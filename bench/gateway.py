"""The gateway phase: one gateway process per channel draining a backlog against its sandbox.

Per channel (SMS through the Twilio sandbox, WhatsApp through the Cloud API sandbox, e-mail through the SMTP
sandbox): a backlog of marketing commands on the ``.bulk`` topic and some transactional ones on the
transactional topic, the sender's rate limit lifted, then a real ``switchboard gateway CHANNEL`` process
(production's code path, its own consumer group and topics) against the sandbox in a process of its own,
with the sandbox's ordinary delay and error behaviour (receipts come back to the gateway's webhooks).
While the backlog drains, order updates arrive on the transactional topic at ``PROBE_RATE`` a second.

Figures:
- ``rate`` (SMS), ``whatsapp_rate``, ``email_rate``: provider calls per second of the gateway process, from
  the ``sent`` outcomes' broker timestamps, between the 5th and the 95th percentile of them (start-up and the
  tail left out);
- ``transactional_p99_ms``: for the order updates, the command's timestamp on its topic to its ``sent``
  outcome's (written right after the provider accepted the call and the ledger has it: an upper bound of
  command → provider call); the worst channel's p99, each channel's in ``channels``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.broker import ROOT, free_port
from schemas.catalog import MESSAGE_OUTCOMES, TopicNames, commands_topic
from schemas.codec import codec_for, encode
from schemas.messages import MessageOutcome, SendCommand, SmsSegments, WhatsAppTemplateRef
from schemas.types import Channel, Purpose
from streams.settings import Settings
from streams.topics import create_topics

PROBE_RATE = 20.0  # order updates a second while the backlog drains
TRANSACTIONAL_SHARE = 0.1  # of the backlog, on the transactional topic
LIFTED = 1_000_000  # rate and burst: the sender's limit out of the way
DEADLINE = 180.0  # seconds a channel may take to drain its backlog; after that what was sent is measured
NOW = dt.datetime.now(dt.timezone.utc)


def _command(channel: Channel, purpose: Purpose, n: int) -> SendCommand:
    uid = str(uuid.uuid4())
    common = dict(message_id=uid, customer_id=f"c-{uid}", store_id="store-1", channel=channel, purpose=purpose,
                  template="shipping_update", trigger_event_id=uid, trigger_received_at=NOW, created_at=NOW)
    match channel:
        case Channel.SMS:
            return SendCommand(**common, to=f"+4860{n % 10_000_000:07d}", locale="en",
                               body=f"Hi! Your order {n} has shipped.",
                               sms=SmsSegments(encoding="GSM-7", segments=1, units=30, cost_micros=40_000,
                                               currency="EUR"))
        case Channel.WHATSAPP:
            template = WhatsAppTemplateRef(name="shipping_update", language="nl", category="utility",
                                           parameters=["Sara", str(n), "https://t.example/1"])
            return SendCommand(**common, to=f"+3161{n % 10_000_000:07d}", locale="nl", whatsapp_template=template,
                               body=f"Hallo Sara, je bestelling #{n} is verzonden.")
        case Channel.EMAIL:
            return SendCommand(**common, to=f"customer{n}@example.com", locale="en", subject=f"Order {n} shipped",
                               body=f"Hello,\n\nyour order {n} has shipped.\nTrack it: https://t.example/{n}")
    raise ValueError(channel)


def _settings(bootstrap: str, run_id: str, channel: Channel, partitions: int) -> tuple[Settings, dict[str, str]]:
    s = Settings()
    s.kafka.bootstrap_servers = bootstrap
    s.kafka.topic_prefix = f"bench-{run_id}-gw-{channel.value}."
    s.kafka.partitions = partitions
    port, sandbox = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    key = channel.value.upper()
    env = {"SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS": bootstrap, "SWITCHBOARD_KAFKA__TOPIC_PREFIX": s.kafka.topic_prefix,
           "SWITCHBOARD_KAFKA__PARTITIONS": str(partitions),
           f"SWITCHBOARD_{key}__WEBHOOK_PORT": str(port), f"SWITCHBOARD_{key}__PUBLIC_BASE_URL": base,
           f"SWITCHBOARD_{key}__RATE_PER_SECOND": str(LIFTED), f"SWITCHBOARD_{key}__BURST": str(LIFTED)}
    match channel:
        case Channel.SMS:
            env |= {"SWITCHBOARD_SANDBOX__PORT": str(sandbox), "SWITCHBOARD_SMS__API_BASE_URL": f"http://127.0.0.1:{sandbox}"}
        case Channel.WHATSAPP:
            env |= {"SWITCHBOARD_SANDBOX__WHATSAPP_PORT": str(sandbox),
                    "SWITCHBOARD_WHATSAPP__API_BASE_URL": f"http://127.0.0.1:{sandbox}"}
        case Channel.EMAIL:
            env |= {"SWITCHBOARD_SANDBOX__SMTP_PORT": str(sandbox), "SWITCHBOARD_EMAIL__PORT": str(sandbox),
                    "SWITCHBOARD_SANDBOX__SMTP_HTTP_PORT": str(free_port())}
    env["_SANDBOX_PORT"] = str(sandbox)
    return s, env


def _sandbox_name(channel: Channel) -> str:
    return {Channel.SMS: "twilio", Channel.WHATSAPP: "whatsapp", Channel.EMAIL: "smtp"}[channel]


# The WhatsApp sandbox as ``switchboard sandbox whatsapp`` runs it (the CLI's defaults: 5 % failures, 0.2 s
# statuses), but at the throughput tier Meta upgrades a number to (1,000/s) instead of the default 80/s: the
# sender's limit lifted, on the provider's side too.
WHATSAPP_SANDBOX = """
from connectors.sandbox import whatsapp
from streams.settings import Settings
s = Settings()
wa = s.whatsapp
whatsapp.run(s.sandbox.host, s.sandbox.whatsapp_port, phone_number_id=wa.phone_number_id,
             access_token=wa.access_token.get_secret_value(), app_secret=wa.app_secret.get_secret_value(),
             webhook_url=wa.public_base_url.rstrip("/") + "/webhooks/whatsapp",
             scenario=whatsapp.SandboxScenario(fail_rate=0.05, status_delay=0.2, rate_limit_per_second=1000))
"""


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "wb")  # noqa: SIM115 - the child's log for its lifetime
    command = args if args[0] == "-c" else ["-m", "connectors.cli", *args]
    return subprocess.Popen([sys.executable, *command], cwd=ROOT, stdout=out,
                            stderr=subprocess.STDOUT, env={**os.environ, **env})


def _wait_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sandbox exited with {process.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)  # polling a port another process opens
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


def _stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)] if ordered else float("nan")


async def _drain(settings: Settings, channel: Channel, backlog: int, gateway: subprocess.Popen,
                 progress) -> dict:
    names = TopicNames(settings.kafka.topic_prefix)
    bootstrap = settings.kafka.bootstrap_servers
    urgent_topic, bulk_topic = (names(commands_topic(channel, p)) for p in (Purpose.TRANSACTIONAL, Purpose.MARKETING))
    consumer = AIOKafkaConsumer(names(MESSAGE_OUTCOMES), bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await consumer.start()
    await producer.start()
    sent: dict[str, int] = {}  # message id -> its sent outcome's timestamp (ms)
    probes: dict[str, int] = {}  # order update -> its command's timestamp (ms)
    expected = backlog
    decode = codec_for(MessageOutcome).decode
    done = asyncio.Event()

    async def trickle() -> None:
        n = 0
        while not done.is_set() and len(sent) < 0.9 * backlog and n < PROBE_RATE * DEADLINE / 2:
            if sent:  # the gateway is draining: order updates arrive meanwhile
                command = _command(channel, Purpose.TRANSACTIONAL, 10_000_000 + n)
                meta = await producer.send_and_wait(urgent_topic, encode(command), key=command.customer_id.encode())
                probes[command.message_id] = meta.timestamp
                n += 1
            await asyncio.sleep(1 / PROBE_RATE)  # the probes' pace

    async def collect() -> None:
        shown = 0
        deadline = time.monotonic() + DEADLINE
        while not (len(sent) >= backlog and probes.keys() <= sent.keys() and trickler.done()):
            if time.monotonic() > deadline:  # a slow gateway is measured on what it sent by then
                return
            if gateway.poll() is not None:
                raise RuntimeError(f"{channel.value} gateway exited with {gateway.returncode}")
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    outcome = decode(record.value)
                    if outcome.status == "sent" and outcome.message_id not in sent:
                        sent[outcome.message_id] = record.timestamp
            progress(len(sent) - shown)
            shown = len(sent)
        done.set()

    trickler = asyncio.create_task(trickle())
    try:
        await collect()
    finally:
        done.set()
        await trickler
        await consumer.stop()
        await producer.stop()
    times = sorted(sent.values())
    low, high = int(0.05 * len(times)), int(0.95 * len(times)) - 1
    rate = ((high - low) / ((times[high] - times[low]) / 1000) if len(times) >= 20 and times[high] > times[low]
            else float("nan"))
    latencies = [sent[m] - t for m, t in probes.items() if m in sent]
    trace = Path(os.environ.get("BENCH_GATEWAY_TRACE", "")) if os.environ.get("BENCH_GATEWAY_TRACE") else None
    if trace is not None:  # the order updates' ids and times, to follow them through the gateway's log
        import json
        trace.write_text(json.dumps({m: [t, sent.get(m)] for m, t in probes.items()}), encoding="utf-8")
    del expected, bulk_topic
    return {"rate": round(rate, 1), "sent": len(sent), "drained": len(sent) >= backlog,
            "order_updates": len(probes), "order_updates_sent": len(latencies),
            "transactional_p50_ms": round(_percentile(latencies, 0.5), 1),
            "transactional_p99_ms": round(_percentile(latencies, 0.99), 1),
            "transactional_max_ms": max(latencies, default=float("nan"))}


def measure_channel(bootstrap: str, run_dir: Path, channel: Channel, backlog: int, partitions: int,
                    progress) -> dict:
    settings, env = _settings(bootstrap, run_dir.name, channel, partitions)
    create_topics(settings)
    names = TopicNames(settings.kafka.topic_prefix)
    urgent = int(backlog * TRANSACTIONAL_SHARE)
    commands = [(Purpose.TRANSACTIONAL if i < urgent else Purpose.MARKETING, _command(
        channel, Purpose.TRANSACTIONAL if i < urgent else Purpose.MARKETING, i)) for i in range(backlog)]

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
        await producer.start()
        try:
            futures = [await producer.send(names(commands_topic(channel, purpose)), encode(c),
                                           key=c.customer_id.encode()) for purpose, c in commands]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(produce())
    sandbox_port = int(env.pop("_SANDBOX_PORT"))
    sandbox = gateway = None
    try:
        sandbox = _spawn(["-c", WHATSAPP_SANDBOX] if channel == Channel.WHATSAPP else
                         ["sandbox", _sandbox_name(channel), "--port", str(sandbox_port)], env,
                         run_dir / f"sandbox-{channel.value}.log")
        _wait_port(sandbox_port, sandbox)
        gateway = _spawn(["gateway", channel.value], env, run_dir / f"gateway-{channel.value}.log")
        started = time.monotonic()
        figures = asyncio.run(_drain(settings, channel, backlog, gateway, progress))
        figures["seconds"] = round(time.monotonic() - started, 1)
    finally:
        _stop(gateway)
        _stop(sandbox)
    return {"backlog": backlog, "transactional_backlog": urgent, **figures}


def run_gateway_phase(bootstrap: str, run_dir: Path, backlog: int, partitions: int, progress) -> dict:
    """Every channel in turn; the bench JSON's ``gateway`` section."""
    channels = {channel.value: measure_channel(bootstrap, run_dir, channel, backlog, partitions, progress)
                for channel in (Channel.SMS, Channel.WHATSAPP, Channel.EMAIL)}
    return {"rate": channels["sms"]["rate"], "whatsapp_rate": channels["whatsapp"]["rate"],
            "email_rate": channels["email"]["rate"],
            "transactional_p99_ms": max(c["transactional_p99_ms"] for c in channels.values()),
            "probe_rate": PROBE_RATE, "channels": channels}


def run_gateway_only(backlog: int, partitions: int, label: str, console) -> dict:
    """``python -m bench --gateway-only``: this phase alone on a broker of its own; ``results/<label>-gateway.json``."""
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bench.broker import Broker

    run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = ROOT / ".switchboard" / "bench" / run_id
    broker = Broker.acquire(run_dir)
    console.print(f"[bold]Switchboard bench, gateway phase[/] {run_id} on {broker.describe()}")
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            task = progress.add_task(f"gateways: {backlog:,} commands per channel, 3 channels", total=3 * backlog)
            found = run_gateway_phase(broker.bootstrap_servers, run_dir, backlog, partitions,
                                      lambda n: progress.advance(task, n))
    finally:
        if broker.owned:
            broker.release()
    console.print(f"gateway: SMS {found['rate']:,.0f}/s, WhatsApp {found['whatsapp_rate']:,.0f}/s, "
                  f"e-mail {found['email_rate']:,.0f}/s provider calls per process; transactional p99 "
                  f"{found['transactional_p99_ms']:,.0f} ms while the bulk backlog drains")
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{label}-gateway.json").write_text(json.dumps({"run": {"id": run_id}, "gateway": found}, indent=2),
                                                   encoding="utf-8")
    return found
