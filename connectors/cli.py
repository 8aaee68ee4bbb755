"""``switchboard``: one console command for every process and chore.

    switchboard demo                     the whole pipeline on the embedded broker, with a summary
    switchboard broker start|stop|status the project's local Kafka (deploy/kafka/kafka.sh)
    switchboard topics create            create the catalog's topics
    switchboard worker                   the Faust decision worker
    switchboard gateway CHANNEL          a channel gateway: sms, whatsapp or email (provider calls, receipts, /metrics)
    switchboard sandbox PROVIDER         a local provider: twilio or vonage (SMS), whatsapp (Cloud API), smtp
    switchboard produce TOPIC            JSON lines on stdin -> validated, Avro-encoded records
    switchboard feed                     produce a realistic storefront into Kafka (customers, consents, orders)
    switchboard simulate FILE            replay a JSON-lines file through the journeys offline: what would be sent
    switchboard campaign FILE [--run N]  launch a campaign: one template to a segment, with an expiry
    switchboard status [--wait]          the worker's consumer group: lag per input topic (caught up or not)
    switchboard sms-info --json          encoding and segments of a JSON array of texts on stdin
    switchboard preferences              the customer preference centre (pages behind signed links)
    switchboard preference-link ID --store STORE   print a customer's signed preference link

``SWITCHBOARD_ENV=production`` makes the worker, the gateways, the preference centre and ``preference-link``
refuse to start on a development secret (streams/production.py), naming the settings to set; in development
they warn once. The sandboxes, the demo and ``simulate`` are development tools and are not checked.

Options every process command takes: ``--ports-from N`` (or ``SWITCHBOARD_PORTS_FROM``) moves every local
port of the stack to N + an offset (``streams.settings.PORT_OFFSETS``), and the processes' URLs with it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from streams.logs import configure_logging
from streams.settings import Settings

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT = ROOT / "deploy" / "kafka" / "kafka.sh"


def _broker(args: argparse.Namespace, settings: Settings) -> int:
    env = dict(os.environ)
    if settings.ports_from is not None:  # the script's own variable, when given, wins
        env.setdefault("SWITCHBOARD_KAFKA_PORT", settings.kafka.bootstrap_servers.rsplit(":", 1)[-1])
    return subprocess.call(["bash", str(KAFKA_SCRIPT), args.action], env=env)


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from streams.topics import create_topics

    created = create_topics(settings)
    print(f"{len(created)} topics created" + (f": {', '.join(created)}" if created else " (all existed)"))
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from kafka.errors import KafkaError

    from streams.app import create_app
    from streams.migrate import migrate

    logger.info("worker settings: %s", settings.redacted())  # secrets masked; the only form ever logged
    try:
        migrate(settings)  # state kept by a worker from before the core: one record per customer (a no-op after)
    except KafkaError as exc:
        logger.warning("could not look for state in the old layout (%s): starting without migrating",
                       type(exc).__name__)
    if settings.worker.uvloop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # before the app: mode takes the policy's loop
    app = create_app(settings)
    sys.argv = [sys.argv[0], "worker", "--loglevel", args.loglevel]
    app.main()
    return 0


def _gateway(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.gateways.service import run_gateway

    logger.info("%s gateway settings: %s", args.channel, settings.redacted())  # secrets masked
    asyncio.run(run_gateway(args.channel, settings))
    return 0


def _sandbox(args: argparse.Namespace, settings: Settings) -> int:
    box = settings.sandbox
    if args.provider == "smtp":
        from connectors.sandbox import smtp

        smtp.run(box.host, args.port or box.smtp_port, box.smtp_http_port)
        return 0
    if args.provider == "vonage":
        from connectors.sandbox import vonage

        sms = settings.sms
        secret = sms.vonage_signature_secret.get_secret_value() if sms.vonage_signature_secret else None
        vonage.run(box.host, args.port or box.vonage_port, api_key=sms.vonage_api_key,
                   api_secret=sms.vonage_api_secret.get_secret_value(), signature_secret=secret,
                   signature_method=sms.vonage_signature_method,
                   scenario=vonage.SandboxScenario(fail_rate=args.fail_rate, callback_delay=args.callback_delay))
        return 0
    if args.provider == "whatsapp":
        from connectors.sandbox import whatsapp

        wa = settings.whatsapp
        whatsapp.run(box.host, args.port or box.whatsapp_port, phone_number_id=wa.phone_number_id,
                     access_token=wa.access_token.get_secret_value(), app_secret=wa.app_secret.get_secret_value(),
                     webhook_url=wa.public_base_url.rstrip("/") + "/webhooks/whatsapp",
                     scenario=whatsapp.SandboxScenario(fail_rate=args.fail_rate, status_delay=args.callback_delay))
        return 0
    from connectors.sandbox.twilio import run
    from connectors.sandbox.twilio_scenario import SandboxScenario

    scenario = SandboxScenario(fail_rate=args.fail_rate, callback_delay=args.callback_delay)
    run(box.host, args.port or box.port, account_sid=settings.sms.account_sid,
        auth_token=settings.sms.auth_token.get_secret_value(), scenario=scenario,
        inbound_url=settings.sms.public_base_url.rstrip("/") + "/webhooks/twilio/inbound",
        from_number=settings.sms.from_number)
    return 0


def _produce(args: argparse.Namespace, settings: Settings) -> int:
    """Each bad line is its own error (not JSON, invalid, too large, not delivered): reported with its number,
    counted in the exit status; the lines after it still go."""
    from connectors.errors import DeliveryError, InvalidEventError
    from connectors.producer import EventProducer

    bad, undelivered = 0, []
    with EventProducer(settings.kafka.bootstrap_servers, settings.kafka.topic_prefix) as producer:
        for number, line in enumerate(sys.stdin, 1):
            if not line.strip():
                continue
            try:
                future = producer.send_json(args.topic, json.loads(line))
            except json.JSONDecodeError as exc:
                bad += 1
                print(f"line {number}: not JSON ({exc.msg})", file=sys.stderr)
            except InvalidEventError as exc:  # a record too large for a request among them
                bad += 1
                print(f"line {number}: {exc}", file=sys.stderr)
            else:
                future.add_errback(lambda exc, number=number: undelivered.append((number, exc)))
        try:
            producer.flush()
        except DeliveryError:  # each line the broker refused (one over its own size limit, say) is named below
            pass
    for number, exc in sorted(undelivered):
        print(f"line {number}: not delivered ({type(exc).__name__}: {exc})", file=sys.stderr)
    return 1 if bad or undelivered else 0


def _feed(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.demo.feed import feed_storefront

    feed_storefront(settings, customers=args.customers, seed=args.seed, rate=args.rate)
    return 0


def _sms_info(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from streams.sms import segment

    texts = json.load(sys.stdin)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        print("sms-info: stdin must be a JSON array of strings", file=sys.stderr)
        return 2
    infos = [asdict(segment(t)) for t in texts]
    if args.json:
        json.dump(infos, sys.stdout, ensure_ascii=False)
        print()
    else:
        for text, info in zip(texts, infos):
            print(f"{info['encoding']:6} {info['segments']:3} segment(s) {info['units']:5} units  {text[:40]!r}")
    return 0


def _preferences(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.preferences.service import run_preferences

    logger.info("preference centre settings: %s", settings.redacted())  # secrets masked
    asyncio.run(run_preferences(settings))
    return 0


def _preference_link(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.preferences.web import link_for
    from streams.clock import WallClock

    print(link_for(settings.preferences, args.customer_id, args.store, WallClock().now(), args.ttl))
    return 0


def _campaign(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.campaign import earlier_launches, launch, launch_record, launched_so_far
    from connectors.errors import InvalidEventError
    from streams.clock import WallClock

    kafka = settings.kafka
    try:
        record = launch_record(args.file.read_text(encoding="utf-8"), WallClock().now(), run=args.run)
    except InvalidEventError as exc:
        print(f"campaign: {args.file}: {exc}", file=sys.stderr)
        return 1
    earlier, next_run = earlier_launches(record, launched_so_far(kafka.bootstrap_servers, kafka.topic_prefix))
    if earlier:
        print(f"campaign {record.name} (store {record.store_id}, run {args.run}, id {record.campaign_id}) was "
              f"already launched at {', '.join(f'{e.launched_at:%Y-%m-%d %H:%M} UTC' for e in earlier)}.\n"
              f"Launching the same id again reaches nobody who was reached then: each customer's message id "
              f"derives from the campaign id, and every message is sent once.\n"
              f"  to run it again for its segment:  switchboard campaign {args.file} --run {next_run}\n"
              f"  to launch this id once more (a launch that failed half-way): add --again", file=sys.stderr)
        if not args.again:
            return 1
    launch(kafka.bootstrap_servers, kafka.topic_prefix, record)
    print(f"campaign {record.name} launched: run {args.run}, id {record.campaign_id}, expires "
          f"{record.expires_at.isoformat() if record.expires_at else 'never'}")
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.demo.run import run_demo

    return run_demo(settings, customers=args.customers, seed=args.seed, timeout=args.timeout, rate=args.rate,
                    verbose=args.verbose)


def _port(text: str) -> int:
    from streams.settings import PORT_OFFSETS

    value = int(text)
    if not 1024 <= value <= 65535 - len(PORT_OFFSETS):
        raise argparse.ArgumentTypeError(f"{value}: the ports from it must lie in 1024..65535")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="switchboard", description=__doc__.split("\n\n")[0])
    p.add_argument("--log-level", default="INFO")
    sub = p.add_subparsers(dest="command", required=True)
    ports = argparse.ArgumentParser(add_help=False)
    ports.add_argument("--ports-from", type=_port, metavar="N", default=argparse.SUPPRESS,
                       help="every local port counted from N: broker N (its controller N+1), worker N+2, gateways "
                            "N+3..N+5, sandboxes N+6..N+10, preference centre N+11, admin ports (/metrics) of the gateways "
                            "N+12..N+14 and of the preference centre N+15 (SWITCHBOARD_PORTS_FROM)")
    common = [ports]
    demo = sub.add_parser("demo", parents=common,
                          help="run the whole pipeline on the embedded broker and print a summary")
    demo.add_argument("--verbose", action="store_true",
                      help="show the Kafka clients' own log lines on the terminal too (always in the demo's logs)")
    demo.add_argument("--customers", type=int, default=3000)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--timeout", type=float, default=300.0)
    demo.add_argument("--rate", type=float, default=200.0, help="storefront events per second (0: unpaced)")
    demo.set_defaults(func=_demo)
    broker = sub.add_parser("broker", parents=common, help="the project's local Kafka")
    broker.add_argument("action", choices=["fetch", "start", "stop", "status", "wipe"])
    broker.set_defaults(func=_broker)
    topics = sub.add_parser("topics", parents=common, help="topic catalog chores")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(func=_topics)
    worker = sub.add_parser("worker", parents=common, help="the Faust decision worker")
    worker.add_argument("--loglevel", default="info", choices=["crit", "error", "warn", "info", "debug"])
    worker.set_defaults(func=_worker)
    gateway = sub.add_parser("gateway", parents=common, help="a channel gateway")
    gateway.add_argument("channel", choices=["sms", "whatsapp", "email"])
    gateway.set_defaults(func=_gateway)
    sandbox = sub.add_parser("sandbox", parents=common, help="a local provider sandbox")
    sandbox.add_argument("provider", choices=["twilio", "vonage", "whatsapp", "smtp"])
    sandbox.add_argument("--port", type=int, default=0,
                         help="where it listens (smtp: its SMTP port); default: the settings' port for it")
    sandbox.add_argument("--fail-rate", type=float, default=0.05)
    sandbox.add_argument("--callback-delay", type=float, default=0.2)
    sandbox.set_defaults(func=_sandbox)
    produce = sub.add_parser("produce", parents=common, help="JSON lines on stdin to a topic", epilog=(
        "Back in stock: the request (back_in_stock_requested, with customer_id, sku and the attributes "
        "product_name and product_url) and the restock (back_in_stock, sku, no customer_id, units in the "
        "attribute quantity) both go to storefront.events; the worker re-keys them by SKU onto stock.updates."))
    produce.add_argument("topic", choices=["storefront.events", "customers.profiles", "customers.consents",
                                           "customers.erasures"])
    produce.set_defaults(func=_produce)
    feed = sub.add_parser("feed", parents=common,
                          help="produce a realistic storefront into Kafka (customers, consents, orders)")
    feed.add_argument("--customers", type=int, default=1000)
    feed.add_argument("--seed", type=int, default=42)
    feed.add_argument("--rate", type=float, default=0.0, help="storefront events per second (0: unpaced)")
    feed.set_defaults(func=_feed)
    from connectors.simulate import add_parser as add_simulate  # its heavy imports wait until it runs

    add_simulate(sub)
    campaign = sub.add_parser("campaign", parents=common, help="launch a campaign (YAML: template, segment, expiry)")
    campaign.add_argument("file", type=Path)
    campaign.add_argument("--run", type=int, default=1, metavar="N",
                          help="the campaign's N-th run: a new id, so its segment is reached again (default 1)")
    campaign.add_argument("--again", action="store_true",
                          help="launch even if this id already ran (reaches only customers it did not reach)")
    campaign.set_defaults(func=_campaign)
    sms_info = sub.add_parser("sms-info", parents=common, help="SMS encoding and segments of texts on stdin")
    sms_info.add_argument("--json", action="store_true", help="print JSON")
    sms_info.set_defaults(func=_sms_info)
    preferences = sub.add_parser("preferences", parents=common, help="the customer preference centre")
    preferences.set_defaults(func=_preferences)
    link = sub.add_parser("preference-link", parents=common, help="print a customer's signed preference-centre link")
    link.add_argument("customer_id")
    link.add_argument("--store", required=True, help="the customer's store id")
    link.add_argument("--ttl", type=int, default=None, help="seconds the link stays valid (default: settings)")
    link.set_defaults(func=_preference_link)
    from connectors.status import add_parser as add_status

    add_status(sub, parents=common)
    return p


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from streams import production
    from streams.errors import DevelopmentSecretError

    args = parser().parse_args(argv)
    if getattr(args, "ports_from", None) is not None:
        os.environ["SWITCHBOARD_PORTS_FROM"] = str(args.ports_from)  # read by Settings, here and in every child
    configure_logging(args.log_level)
    try:
        settings = Settings()
    except ValidationError as exc:  # a setting that cannot work: said plainly, no traceback
        print(f"switchboard {args.command}: settings refused:\n{exc}", file=sys.stderr)
        return 2
    process = " ".join(filter(None, (args.command, getattr(args, "channel", None))))
    if process in production.SECRETS_OF:
        try:
            production.check(settings, process)
        except DevelopmentSecretError as exc:
            print(f"switchboard {process}: {exc}", file=sys.stderr)
            return 2
    return args.func(args, settings)


if __name__ == "__main__":
    sys.exit(main())
