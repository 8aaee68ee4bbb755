"""``python -m bench`` (``make bench``): prints the pipeline's figures; see bench/__init__.py."""

from __future__ import annotations

import argparse
import logging
import sys

from rich.console import Console

from bench.run import Options, run, run_decision_only


def parse(argv: list[str]) -> Options:
    d = Options()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--customers", type=int, default=d.customers,
                        help="customers whose profiles and consents the throughput worker holds")
    parser.add_argument("--events", type=int, default=d.events, help="events of the unpaced throughput run")
    parser.add_argument("--baseline-records", type=int, default=d.baseline_records,
                        help="records the pass-through moves")
    parser.add_argument("--faust-records", type=int, default=d.faust_records,
                        help="records the bare Faust agent (F) moves")
    parser.add_argument("--decision-events", type=int, default=d.decision_events,
                        help="events of the decision-code loop, per repetition")
    parser.add_argument("--decision-repetitions", type=int, default=d.decision_repetitions)
    parser.add_argument("--decision-only", action="store_true",
                        help="only the decision code in a plain loop (no broker, no worker): quick to iterate on")
    parser.add_argument("--latency-seconds", type=float, default=d.latency_seconds, help="length of each paced run")
    parser.add_argument("--ingest-customers", type=int, default=d.ingest_customers,
                        help="new customers ingested through the agents")
    parser.add_argument("--profile-seconds", type=float, default=d.profile_seconds, help="py-spy sampling (0: none)")
    parser.add_argument("--campaign-seconds", type=float, default=d.campaign_seconds,
                        help="transactional latency while a campaign to a whole store runs, this long (0: skip)")
    parser.add_argument("--memory-customers", type=int, default=d.memory_customers,
                        help="customers in the memory run (0: skip); 1000000 takes about 10 minutes more on 2 cores")
    parser.add_argument("--gateway-commands", type=int, default=d.gateway_commands,
                        help="gateway phase: backlog per channel (0: skip the phase)")
    parser.add_argument("--gateway-only", action="store_true",
                        help="only the gateway phase, on a broker of its own: quick to iterate on")
    parser.add_argument("--partitions", type=int, default=d.partitions)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--label", default=d.label,
                        help="results go to bench/results/LABEL.json/.png and compare with that file's last run")
    parser.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of the worker, e.g. FAUST_LOOP=uvloop or PRODUCER_LINGER=0.005 "
                             "(Faust reads its settings from such variables); repeatable")
    args = parser.parse_args(argv)
    bad = [pair for pair in args.worker_env if "=" not in pair]
    if bad:
        parser.error(f"--worker-env wants NAME=VALUE, not {bad[0]!r}")
    return Options(customers=args.customers, events=args.events, baseline_records=args.baseline_records,
                   faust_records=args.faust_records, decision_events=args.decision_events,
                   decision_repetitions=args.decision_repetitions, decision_only=args.decision_only,
                   latency_seconds=args.latency_seconds, ingest_customers=args.ingest_customers,
                   profile_seconds=args.profile_seconds, campaign_seconds=args.campaign_seconds,
                   memory_customers=args.memory_customers,
                   gateway_commands=args.gateway_commands, gateway_only=args.gateway_only,
                   partitions=args.partitions, seed=args.seed,
                   worker_env=dict(pair.split("=", 1) for pair in args.worker_env), label=args.label)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.ERROR)  # kafka-python's reconnect chatter while topics appear
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # "coordinator not available" while a new broker settles
    options = parse(sys.argv[1:] if argv is None else argv)
    if options.gateway_only:
        from bench.gateway import run_gateway_only

        run_gateway_only(options.gateway_commands, options.partitions, options.label, Console())
        return 0
    (run_decision_only if options.decision_only else run)(options, Console())
    return 0


if __name__ == "__main__":
    sys.exit(main())
