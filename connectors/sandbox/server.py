"""Starting a sandbox's aiohttp application in the running event loop: what every HTTP sandbox shares."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass
class RunningSandbox:
    """A started sandbox; ``base_url`` goes into its provider adapter's ``base_url``."""

    runner: web.AppRunner
    base_url: str

    async def aclose(self) -> None:
        await self.runner.cleanup()


async def start(app: web.Application, host: str, port: int) -> RunningSandbox:
    """Serves ``app`` on ``host:port`` (port 0 picks a free port) and returns at once."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    shown_host = f"[{host}]" if ":" in host else host
    return RunningSandbox(runner, f"http://{shown_host}:{runner.addresses[0][1]}")
