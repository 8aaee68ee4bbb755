"""A webhook endpoint for the conformance tests: keeps every request's URL, params and headers, answers 204."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from connectors.webhooks.vonage_dlr import receipt_params


@dataclass
class Seen:
    url: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class Receiver:
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        params = receipt_params(request.method, request.query, request.content_type, await request.read())
        async with self.changed:
            self.seen.append(Seen(str(request.url), params, dict(request.headers)))
            self.changed.notify_all()
        return web.Response(status=204)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Seen]:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(self.seen) >= count), timeout)
        return list(self.seen)


@asynccontextmanager
async def receiving(path: str = "/hook") -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("*", path, receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}{path}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


