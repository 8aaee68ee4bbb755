"""A gateway's HTTP side: its channel's provider webhooks, plus ``/metrics`` and ``/health``."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.metrics import Metrics


def create_http_app(routes: Iterable[web.RouteDef], metrics: Metrics) -> web.Application:
    async def metrics_page(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.add_routes([*routes, web.get("/metrics", metrics_page), web.get("/health", health)])
    return app
