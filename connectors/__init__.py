"""Connectors: the edges where Switchboard talks to the outside world.

- ``connectors.providers``: outbound SMS provider adapters (plain httpx, no faust).
- ``connectors.webhooks``: verification and parsing of provider callbacks.
- ``connectors.sandbox``: local fake providers that speak the real wire protocols.
- ``connectors.errors``: the package's single error tree.
"""
