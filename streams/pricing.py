"""WhatsApp per-message prices, as data: by template category and the recipient's country.

Meta charges business-initiated template messages per delivered message by category (marketing,
utility, authentication) and market; service replies inside the 24-hour window are free. The figures
below are illustrative list prices in micro-USD (mid-2025 rate cards, rounded), to be overridden by a
store's own rate card; unknown markets use the "*" row.
"""

from __future__ import annotations

from collections.abc import Mapping

CURRENCY = "USD"

# country -> category -> micro-USD per message
WHATSAPP_PRICES: Mapping[str, Mapping[str, int]] = {
    "US": {"marketing": 25_000, "utility": 4_000, "authentication": 13_500},
    "GB": {"marketing": 52_900, "utility": 22_000, "authentication": 35_800},
    "NL": {"marketing": 159_700, "utility": 50_000, "authentication": 72_300},
    "PL": {"marketing": 73_100, "utility": 26_500, "authentication": 41_900},
    "IL": {"marketing": 35_300, "utility": 5_300, "authentication": 21_500},
    "BY": {"marketing": 60_400, "utility": 21_200, "authentication": 41_700},
    "DE": {"marketing": 136_500, "utility": 55_000, "authentication": 76_800},
    "*": {"marketing": 60_400, "utility": 21_200, "authentication": 41_700},
}


def whatsapp_cost(country: str | None, category: str | None,
                  prices: Mapping[str, Mapping[str, int]] = WHATSAPP_PRICES) -> tuple[int, str]:
    """(micros, currency) of one WhatsApp message; free-form replies in the window (no category) are free."""
    if category is None:
        return 0, CURRENCY
    row = prices.get((country or "").upper()) or prices["*"]
    return row.get(category, prices["*"][category]), CURRENCY
