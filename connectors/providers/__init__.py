"""Outbound SMS provider adapters.

Each adapter implements :class:`connectors.providers.base.SmsProvider` over plain
httpx and raises only :mod:`connectors.errors`. Adapters never import faust.
"""
