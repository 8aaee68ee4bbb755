"""``make bench``: the pipeline's figures on this machine, printed, charted and saved — never asserted.

Every phase runs in one go on one broker, so the ratios are fair on a noisy machine:

- **B**, a bare aiokafka consume → produce pass-through: the practical ceiling, records/s;
- **P**, the real ``switchboard worker`` process on a simulated shop's events, produced as fast as
  possible until the worker has drained them: sustained events/s, and P/B;
- event → send-command latency p50/p95/p99 with a paced feed at 50 % and 80 % of P;
- transactional latency while a campaign to a whole store saturates the worker;
- state ingest through the agents, table recovery on start, and the worker's resident memory with
  many customers in its tables;
- a py-spy profile of the worker under load.

Output: a table on the terminal, ``bench/results/latest.json`` (with the machine's description, and
the change since the previous run), ``bench/results/latest.png`` and ``bench/results/profile.svg``.
"""
