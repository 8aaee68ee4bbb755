"""The HTTP servers a process runs: a public one and an admin one.

    public  provider webhooks or the preference pages, and ``/health``, on the process's public port.
            A client has ``http.header_timeout`` seconds to send a request's headers (from connecting, or
            from the previous response on a kept-alive connection) and ``http.body_timeout`` seconds for
            its body once the headers are in; then it is dropped (a slow body gets 408 first). Handlers
            find the body already read (``await request.read()`` returns it at once).
    admin   ``/metrics`` and ``/health`` on ``http.admin_host`` (loopback unless set), never the public port.

Neither has an access log: preference URLs are credentials and webhook URLs name customers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.metrics import Metrics
from streams.settings import HttpSettings

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def public_app(routes: Iterable[web.RouteDef], config: HttpSettings) -> web.Application:
    """``routes`` and ``/health``, each request's body read within ``config.body_timeout``."""

    @web.middleware
    async def read_body_in_time(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            try:
                async with asyncio.timeout(config.body_timeout):
                    await request.read()  # kept by the request: the handler's read() or post() gets it
            except TimeoutError:
                return web.Response(status=408, text="request body not received in time")  # then closed
        return await handler(request)

    app = web.Application(middlewares=[read_body_in_time])
    app.add_routes([*routes, web.get("/health", _health)])
    return app


def admin_app(metrics: Metrics) -> web.Application:
    async def metrics_page(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics_page), web.get("/health", _health)])
    return app


def runner(app: web.Application, config: HttpSettings) -> web.AppRunner:
    """An idle connection, or one whose headers are incomplete, is closed after ``header_timeout``
    (aiohttp's keep-alive timer runs from the connection's start and from each response; data does
    not reset it); no lingering to drain an unread body."""
    return web.AppRunner(app, access_log=None, keepalive_timeout=config.header_timeout, lingering_time=0)


@dataclass
class Servers:
    public: web.AppRunner
    admin: web.AppRunner

    async def aclose(self) -> None:
        await asyncio.gather(self.public.cleanup(), self.admin.cleanup())


async def serve(routes: Iterable[web.RouteDef], host: str, port: int, admin_port: int, metrics: Metrics,
                config: HttpSettings, name: str) -> Servers:
    """Starts the public server (``routes``) on ``host:port`` and the admin server on the admin address."""
    public, admin = runner(public_app(routes, config), config), runner(admin_app(metrics), config)
    await public.setup()
    await admin.setup()
    try:
        await web.TCPSite(public, host, port).start()
        await web.TCPSite(admin, config.admin_host, admin_port).start()
    except BaseException:
        await asyncio.gather(public.cleanup(), admin.cleanup())
        raise
    logger.info("%s on %s:%s; /metrics on %s:%s", name, host, port, config.admin_host, admin_port)
    return Servers(public, admin)
