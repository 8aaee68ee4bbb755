"""Several small httpx connection pools for one provider instead of one large pool.

httpcore looks at every connection of a pool whenever a request starts or ends (is it idle, has the
server closed it: a poll of its socket), so a single pool of 64 keep-alive connections costs some 64
socket polls per request: a py-spy profile of the SMS gateway at full speed put a fifth of its CPU
there. Requests go round-robin to clients keeping ``SHARD`` idle connections each: as many connections
in all, a few polls per request. Each client may still open up to ``connections`` at once, so a client
whose connections are busy with slow calls never makes a request wait for one of them (the gateway's
call slots bound the total).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import httpx

SHARD = 8  # idle keep-alive connections per client


class HttpClients:
    def __init__(self, connections: int, **client_args: Any) -> None:
        shards = max(1, math.ceil(connections / SHARD))
        keep = max(1, math.ceil(connections / shards))
        limits = httpx.Limits(max_connections=max(connections, 1), max_keepalive_connections=keep)
        self._clients = [httpx.AsyncClient(limits=limits, **client_args) for _ in range(shards)]
        self._turn = itertools.cycle(self._clients)

    @property
    def base_url(self) -> httpx.URL:
        return self._clients[0].base_url

    def next(self) -> httpx.AsyncClient:
        return next(self._turn)

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()
